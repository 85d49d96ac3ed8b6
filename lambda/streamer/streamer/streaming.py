"""Serving one generation over HTTP: the status waits for the first text, the text never waits.

`RelayResponse` is the ASGI side of `RelayPump`. It opens the upstream and pulls from it in worker
threads (boto3 blocks; an `async def` generator doing blocking reads would hold every piece until
the end), and sends each piece the moment it arrives. It commits the HTTP status only when the
first visible text or the end of the answer arrives, so a failure before any text is a real HTTP
error (422, 502, 503, 504) with a JSON body; a failure after that can only be written in the body.
Meanwhile it listens for the client leaving, and then stops reading and closes the upstream at
once rather than paying for tokens nobody will read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final, TypeVar

import anyio
import anyio.to_thread
from anyio.lowlevel import RunVar
from aws_lambda_powertools import Logger
from starlette.types import Message, Receive, Scope, Send

from .errors import ApiError, error_payload, render_json
from .formats import StreamWriter
from .model_text import TextTransform
from .observability import RequestRecord
from .relay import Ended, Failed, Piece, RelayPump, Text
from .upstream import Upstream, UpstreamError

__all__ = ["RelayResponse", "error_response_messages"]

_T = TypeVar("_T")

# Each open stream holds a worker thread while it waits for its next part. anyio's default pool
# (40) would make the 41st concurrent stream wait for a thread, so the relay has its own.
UPSTREAM_THREADS: Final = 256
# How long a finished response waits for the upstream to close before leaving it to its thread.
_CLOSE_WAIT_SECONDS: Final = 2.0

_limiter: RunVar[anyio.CapacityLimiter] = RunVar("jumpstream_upstream_threads")


def _upstream_limiter() -> anyio.CapacityLimiter:
    """One pool per event loop, like anyio's default (a limiter belongs to its loop)."""
    try:
        return _limiter.get()
    except LookupError:
        limiter = anyio.CapacityLimiter(UPSTREAM_THREADS)
        _limiter.set(limiter)
        return limiter


async def _in_thread(function: Callable[[], _T]) -> _T:
    """Run a blocking call in a worker thread; on cancellation, stop waiting for it at once."""
    return await anyio.to_thread.run_sync(
        function, abandon_on_cancel=True, limiter=_upstream_limiter()
    )


def error_response_messages(error: ApiError) -> list[dict[str, object]]:
    """The ASGI messages of a complete JSON error response."""
    body = render_json(error_payload(error.message, error.kind))
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode("ascii")),
        *(
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in error.headers().items()
        ),
    ]
    return [
        {"type": "http.response.start", "status": error.status, "headers": headers},
        {"type": "http.response.body", "body": body, "more_body": False},
    ]


class _ClientGoneError(Exception):
    """`send` failed because the client left (servers of ASGI spec 2.4+ raise OSError)."""


class RelayResponse:
    """An ASGI response that relays one generation in the chosen format."""

    def __init__(
        self,
        *,
        upstream: Upstream,
        body: bytes,
        writer: StreamWriter,
        transform: TextTransform,
        record: RequestRecord | None,
        logger: Logger,
    ) -> None:
        self._upstream = upstream
        self._body = body
        self._writer = writer
        self._transform = transform
        self._record = record
        self._logger = logger
        self._pump: RelayPump | None = None
        self._complete = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(self._watch_disconnect, receive, task_group.cancel_scope)
            try:
                await self._relay(_SafeSend(send))
            except _ClientGoneError:
                if self._record is not None:
                    self._record.client_disconnected = True
            finally:
                self._complete = True
                task_group.cancel_scope.cancel()
                await self._close_upstream()

    async def _watch_disconnect(self, receive: Receive, scope: anyio.CancelScope) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                # Servers also report a disconnect once the response is complete: not a leaver.
                if not self._complete and self._record is not None:
                    self._record.client_disconnected = True
                scope.cancel()
                return

    async def _relay(self, send: Send) -> None:
        try:
            pump = await _in_thread(self._open)
        except UpstreamError as error:
            await self._send_error(send, error)
            return

        # Until the first text or the end, nothing is committed: a failure is still a status.
        pending: list[Piece] = []
        while not pending:
            pending = await _in_thread(pump.pull)
        first = pending[0]
        if isinstance(first, Failed):
            await self._send_error(send, first.error)
            return

        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", self._writer.content_type.encode("ascii")),
                    (b"cache-control", b"no-cache"),
                    (b"x-accel-buffering", b"no"),
                ],
            }
        )
        if self._record is not None:
            self._record.status = 200
        try:
            await self._send_pieces(send, pending)
            while not pump.finished:
                await self._send_pieces(send, await _in_thread(pump.pull))
        except (anyio.get_cancelled_exc_class(), _ClientGoneError):
            raise
        except Exception as error:
            # The status is sent: the only way left to say something broke is the body.
            self._logger.exception("relay failed mid-stream")
            if self._record is not None:
                self._record.error_type = "internal_error"
                self._record.error_detail = repr(error)
            chunk = self._writer.error(
                message="The relay failed unexpectedly; the answer is incomplete.",
                kind="internal_error",
            )
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        self._complete = True
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    def _open(self) -> RelayPump:
        """Runs in a worker thread. If the client left while SageMaker was answering, nobody
        waits for this any more: close the stream here, or it would stay open until collected.
        Either this check or `_close_upstream` sees the other's write, so one of them closes it.
        """
        pump = RelayPump(self._upstream.open(self._body), transform=self._transform)
        self._pump = pump
        if self._complete:
            pump.close()
        return pump

    async def _send_pieces(self, send: Send, pieces: Sequence[Piece]) -> None:
        """One body message per pull: pieces that arrived together leave together."""
        chunks: list[bytes] = []
        for piece in pieces:
            if isinstance(piece, Text):
                chunks.append(self._writer.text(piece.text))
                if self._record is not None:
                    self._record.text_sent()
            elif isinstance(piece, Ended):
                chunks.append(
                    self._writer.done(
                        finish_reason=piece.finish_reason,
                        generated_tokens=piece.generated_tokens,
                    )
                )
                if self._record is not None:
                    self._record.finish_reason = piece.finish_reason
                    self._record.generated_tokens = piece.generated_tokens
            else:
                chunks.append(
                    self._writer.error(message=piece.error.message, kind=piece.error.kind)
                )
                self._note_error(piece.error)
        body = b"".join(chunks)
        if body:
            await send({"type": "http.response.body", "body": body, "more_body": True})

    async def _send_error(self, send: Send, error: UpstreamError) -> None:
        self._note_error(error)
        self._complete = True
        for message in error_response_messages(error):
            await send(message)

    def _note_error(self, error: UpstreamError) -> None:
        if self._record is not None:
            self._record.error_type = error.kind
            self._record.error_detail = error.detail

    async def _close_upstream(self) -> None:
        """Close the upstream without ever blocking the event loop on it.

        Shielded, so it runs even when the client left and this task is being cancelled;
        bounded, so a close that blocks (an old urllib3 that cannot shut a socket down) is
        left to its thread instead of holding up the end of the response.
        """
        pump = self._pump
        if pump is None:
            return
        with anyio.move_on_after(_CLOSE_WAIT_SECONDS, shield=True):
            await _in_thread(pump.close)


class _SafeSend:
    """`send`, with a client that left turned into one exception the relay can tell apart."""

    def __init__(self, send: Send) -> None:
        self._send = send

    async def __call__(self, message: Message) -> None:
        try:
            await self._send(message)
        except OSError as error:
            raise _ClientGoneError from error
