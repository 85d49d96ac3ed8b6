"""Serving one generation over HTTP: the status waits for the first text, the text never waits.

`AnswerResponse` is the ASGI side of `AnswerPump`; a `Responder`, made once per app with what
every generating route shares, makes one per request. It opens the upstream and pulls from it on
the event loop (the upstream is asynchronous: no thread, no hop per part), and sends what each
read completed the moment it arrives. It commits the HTTP status only when the first visible
text or the end of the answer arrives, so a failure before any text is a real HTTP error (422,
502, 503, 504) with a JSON body; a failure after that can only be written in the body.
Meanwhile it listens for the client leaving, and then stops reading and closes the upstream at
once rather than paying for tokens nobody will read.

One read, one write: when the client keeps up, each token goes out as it comes. Once the status is
sent, that happens in the upstream connection's own callback where the server offers a body writer
(`_pushed`, body_writer.py): the bytes are decoded and written there, with no wake-up of this task
per token, and only the end or a failure (with any text that came with them) or text the client
could not take yet come back to the task and `send`. When the client is slower than the model,
`send` waits (the server's write buffer is full), nothing is read meanwhile, the PayloadParts pile
up in the upstream connection, and the reads that follow find them there without waiting (parts
that came in one chunk leave in one write). What the relay holds is bounded by what a connection to
SageMaker buffers (network.py: 64 KiB and one socket read) plus the server's write buffer, and a
client that stops reading stops the reading from SageMaker, as TCP's flow control then tells the
model's side to wait.

In Lambda, every wait on the upstream also ends a little before the invocation's deadline: Lambda
stops the function there without a word to the caller, so the relay stops first and says why.
A complete answer's stream is read to its end before it is closed, which lets the HTTP client
keep the connection to SageMaker for the next request.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Final, TypeVar

import anyio
from aws_lambda_powertools import Logger
from starlette.requests import Request
from starlette.types import Message, Receive, Scope, Send

from .body_writer import ChunkedBodyWriter, body_writer
from .engines import StreamFormat, engine_named
from .errors import UpstreamError, error_response
from .formats import StreamWriter
from .http_types import MustAwait
from .invocation import seconds_left_from
from .model_text import TextTransform, transform_for
from .observability import RequestRecord, current_record
from .prompt_tokens import PromptCounter
from .pump import AnswerPump, EndPiece, ErrorPiece, Piece, TextPiece, max_line_bytes_for
from .refusals import Render
from .upstream import Upstream
from .validation import GenerateRequest

if TYPE_CHECKING:
    from .settings import Settings

__all__ = ["DEADLINE_MARGIN_SECONDS", "AnswerResponse", "Responder"]

_T = TypeVar("_T")

# How long a finished response waits for the upstream to close.
_CLOSE_WAIT_SECONDS: Final = 2.0
# How long the end of an answer waits for the prompt's token count (a tokenizer's first load
# reads and parses a few MB).
_COUNT_WAIT_SECONDS: Final = 10.0
# How long a complete answer's stream may take to reach its end before it is closed anyway.
_DRAIN_WAIT_SECONDS: Final = 1.0
# The relay gives up this long before Lambda's deadline: time to write the error, close the
# upstream and let the Web Adapter pass the end of the body on before Lambda freezes the function.
DEADLINE_MARGIN_SECONDS: Final = 1.5


def _deadline_error(*, text_sent: bool) -> UpstreamError:
    detail = (
        f"stopped {DEADLINE_MARGIN_SECONDS:g} s before the invocation's deadline "
        "while waiting for SageMaker"
    )
    if text_sent:
        return UpstreamError(
            kind="upstream_timeout",
            message=(
                "The function's time limit ended the answer before the model finished it; "
                "ask for fewer max_new_tokens to get a complete answer."
            ),
            detail=detail,
        )
    return UpstreamError(
        kind="upstream_timeout",
        message=(
            "The function's time limit was reached before the model answered; "
            "try again, or ask for fewer max_new_tokens."
        ),
        detail=detail,
    )


class Responder:
    """Makes the response that streams one answer: what every generating route shares (the
    upstream, the logger, the model's engine and prompt template, the decoder's line limit); the
    body, the text transform and the deadline are made per request."""

    def __init__(
        self,
        settings: Settings,
        *,
        upstream: Upstream,
        logger: Logger,
        counter: PromptCounter | None = None,
    ) -> None:
        """`counter` counts prompt tokens where the model's engine does not report them."""
        self._upstream = upstream
        self._engine = engine_named(settings.serving_engine)
        self._logger = logger
        self._counter = counter
        self._template = settings.prompt_template
        self._log_prompts = settings.log_prompts
        self._max_line_bytes = max_line_bytes_for(
            max_body_bytes=settings.max_body_bytes,
            max_new_tokens_limit=settings.max_new_tokens_limit,
        )

    def respond(
        self,
        request: Request,
        generate_request: GenerateRequest,
        *,
        writer: StreamWriter,
        stop_sequences: Sequence[str],
        collect: bool = False,
        render_error: Render = error_response,
    ) -> AnswerResponse:
        """The answer to `generate_request`, written by `writer`; refusals by `render_error`.

        Raises ApiError (422) for a parameter the model's engine cannot honour."""
        route = self._engine.route(generate_request)
        record = current_record()
        if record is not None:
            record.prompt_chars = len(generate_request.prompt_text)
            if self._log_prompts:
                record.prompt = generate_request.prompt_text
        count_prompt = None
        # A chat the engine lays out is longer than its messages by what the model's template
        # adds, which only the engine knows: its prompt tokens are the engine's to report.
        if self._counter is not None and not generate_request.messages:
            counter, inputs = self._counter, generate_request.inputs
            truncate = generate_request.parameters.get("truncate")

            def count_prompt() -> asyncio.Future[int | None]:
                return counter.counting(
                    inputs, truncate=truncate if type(truncate) is int else None
                )

        return AnswerResponse(
            upstream=self._upstream,
            body=route.body(generate_request),
            stream_format=route.stream,
            count_prompt=count_prompt,
            writer=writer,
            transform=transform_for(
                self._template,
                stop_sequences=stop_sequences,
                chat_turn=generate_request.chat_turn,
            ),
            record=record,
            logger=self._logger,
            max_line_bytes=self._max_line_bytes,
            stop_at=_stop_time(request),
            collect=collect,
            render_error=render_error,
        )


def _cancelling(future: asyncio.Future[_T]) -> bool:
    """A task told to stop that has yet to (a plain future is cancelled at once)."""
    return isinstance(future, asyncio.Task) and future.cancelling() > 0


def _stop_time(request: Request) -> float | None:
    """When, on the event loop's clock, the relay must give up so it can still answer in time.

    Lambda ends an invocation at its deadline whatever the function is doing: the caller would
    get a cut-off body with no error in it. Read on arrival, the deadline minus a margin is the
    last moment the relay can still say why the answer stopped. None outside Lambda.
    """
    seconds_left = seconds_left_from(request.headers, now=time.time())
    if seconds_left is None:
        return None
    return anyio.current_time() + seconds_left - DEADLINE_MARGIN_SECONDS


class _ClientGoneError(Exception):
    """`send` failed because the client left (servers of ASGI spec 2.4+ raise OSError)."""


class _DeadlineReachedError(Exception):
    """The invocation's deadline, less the margin, came while the relay waited for SageMaker."""


class AnswerResponse:
    """An ASGI response that streams one answer in the chosen format."""

    def __init__(
        self,
        *,
        upstream: Upstream,
        body: bytes,
        stream_format: StreamFormat,
        writer: StreamWriter,
        transform: TextTransform,
        record: RequestRecord | None,
        logger: Logger,
        max_line_bytes: int,
        stop_at: float | None = None,
        collect: bool = False,
        render_error: Render = error_response,
        count_prompt: Callable[[], asyncio.Future[int | None]] | None = None,
    ) -> None:
        """`stop_at` is when to give up waiting for SageMaker, on the event loop's clock
        (`anyio.current_time()`); None waits as long as the upstream read timeout allows.

        `collect` holds the status until the answer is complete, for callers that asked for one
        whole document (OpenAI's `stream: false`): a failure at any point is then an HTTP error.
        `render_error` writes such an error in the caller's dialect. `count_prompt` starts
        counting the prompt's tokens alongside the generation, for a model that does not report
        them."""
        self._upstream = upstream
        self._body = body
        self._stream_format = stream_format
        self._writer = writer
        self._transform = transform
        self._record = record
        self._logger = logger
        self._max_line_bytes = max_line_bytes
        self._stop_at = stop_at
        self._collect = collect
        self._render_error = render_error
        self._count_prompt = count_prompt
        self._prompt_count: asyncio.Future[int | None] | None = None
        self._pump: AnswerPump | None = None
        # The deadline's one timer cancels the task only while it waits on SageMaker.
        self._waiting_upstream = False
        self._cancelled_at_deadline = False
        self._complete = False
        self._answered = False  # the model's final event went out: the stream may be drained
        # Text the upstream's callback made into a chunk but left to the task (`_pushed`), and
        # whether the upstream can tell when a read is at hand at all.
        self._unsent = b""
        self._pull_only = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Stream the answer; if the client leaves meanwhile, cancel it.

        The server's body writer says when the client leaves, from its own callback
        (body_writer.py). Where there is none, a plain asyncio task awaits `receive` for it
        (the relay runs on asyncio) and at the end is simply cancelled: an anyio task group did
        the same for ~40 us more per request (it waits for the watcher to end, and cancelling
        its scope builds a description of every task in it).
        """
        with anyio.CancelScope() as answer:
            loop = asyncio.get_running_loop()
            writer = body_writer(scope)
            watcher = None
            if writer is None:
                watcher = loop.create_task(self._watch_disconnect(receive, answer))
            else:
                writer.on_disconnect(functools.partial(self._client_left, answer))
            if self._count_prompt is not None:
                self._prompt_count = self._count_prompt()
            deadline = (
                None
                if self._stop_at is None
                else loop.call_at(self._stop_at, self._deadline_passed, asyncio.current_task())
            )
            try:
                await self._stream(scope, receive, _SafeSend(send), writer)
            except _ClientGoneError:
                if self._record is not None:
                    self._record.client_disconnected = True
            finally:
                self._complete = True
                if watcher is not None:
                    watcher.cancel()
                elif writer is not None:
                    writer.on_disconnect(None)
                if deadline is not None:
                    deadline.cancel()
                await self._close_upstream()
                # A client that left still used the prompt: its usage counts it.
                await self._settle_prompt_count()

    async def _watch_disconnect(self, receive: Receive, scope: anyio.CancelScope) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self._client_left(scope)
                return

    def _client_left(self, scope: anyio.CancelScope) -> None:
        # Servers also report a disconnect once the response is complete: not a leaver.
        if not self._complete and self._record is not None:
            self._record.client_disconnected = True
        scope.cancel()

    async def _stream(
        self, scope: Scope, receive: Receive, send: Send, write: ChunkedBodyWriter | None
    ) -> None:
        # Until the first text or the end, nothing is committed: a failure is still a status.
        pending: list[Piece] = []
        try:
            pump = await self._upstream_call(self._open)
            while not pending:
                pending = self._pulled(await self._upstream_call(pump.pull))
            # A caller who asked for one whole document gets nothing before the end.
            while self._collect and not pump.finished:
                pending.extend(self._pulled(await self._upstream_call(pump.pull)))
        except UpstreamError as error:
            await self._send_error(scope, receive, send, error)
            return
        except _DeadlineReachedError:
            # Nothing reached the caller yet: for them, the model never answered.
            await self._send_error(scope, receive, send, _deadline_error(text_sent=False))
            return
        failed = next((piece for piece in pending if isinstance(piece, ErrorPiece)), None)
        if failed is not None and (self._collect or pending[0] is failed):
            await self._send_error(scope, receive, send, failed.error)
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
                pieces: list[Piece] | None = None
                if write is not None:
                    pieces = await self._upstream_call(functools.partial(self._pushed, pump, write))
                    if self._pull_only:
                        write = None
                    await self._send_unsent(send)
                if pieces is None:
                    pieces = self._pulled(await self._upstream_call(pump.pull))
                await self._send_pieces(send, pieces)
            self._answered = pump.ended
        except (anyio.get_cancelled_exc_class(), _ClientGoneError):
            raise
        except _DeadlineReachedError:
            error = _deadline_error(text_sent=True)
            self._note_error(error)
            await self._end_early(send, pump, message=error.message, kind=error.kind)
        except Exception as error:
            # The status is sent: the only way left to say something broke is the body.
            self._logger.exception("relay failed mid-stream")
            if self._record is not None:
                self._record.error_type = "internal_error"
                self._record.error_detail = repr(error)
            await self._end_early(
                send,
                pump,
                message="The relay failed unexpectedly; the answer is incomplete.",
                kind="internal_error",
            )
        self._complete = True
        await self._settle_prompt_count()  # before the last byte: usage is written then
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _pushed(self, pump: AnswerPump, write: Callable[[bytes], bool]) -> list[Piece] | None:
        """Stream text from the upstream connection's callback until this task is needed.

        Each read's pieces are decoded in the callback that received them and, while they are
        text and the caller's side takes them, written there (body_writer.py): no wake-up of
        this task per token. Anything else comes back here, to go out through `send` as before:
        the end or a failure (with the text that came with it), text the caller's side could not
        take yet (both `_unsent`). None: a read to be awaited first (the stream's end), or an
        upstream that cannot tell when a read is at hand.
        """
        done: asyncio.Future[list[Piece] | None] = asyncio.get_running_loop().create_future()
        record, text_of = self._record, self._writer.text

        def readable() -> None:
            if done.done():
                return
            try:
                while not pump.finished:
                    pieces = pump.pull_nowait()
                    if pieces is None:
                        return  # nothing more at hand: the next arrival calls again
                    if len(pieces) == 1 and type(piece := pieces[0]) is TextPiece:
                        # A token, usually: `_pulled_text(1)` and `_text`, written out (this
                        # runs once per token).
                        if record is not None:
                            record.pulled_tokens += 1
                            record.text_sent()
                        body, rest = text_of(piece.text), []
                    else:
                        self._pulled(pieces)
                        body, rest = self._texts_then_rest(pieces)
                    if rest:
                        # The end or a failure came with this text: the task sends them
                        # together (one write to the caller, not two).
                        self._unsent = body
                        done.set_result(rest)
                        return
                    if body and not write(body):
                        self._unsent = body
                        done.set_result([])
                        return
                done.set_result([])
            except MustAwait:
                done.set_result(None)
            except Exception as error:  # the task reports it, as a failed read
                done.set_exception(error)

        # The connection's callback runs in the context of whoever opened the connection (a
        # pooled one, an earlier request): the request's own context goes with the listener,
        # so that anything it logs carries this request's keys.
        if not pump.listen(functools.partial(contextvars.copy_context().run, readable)):
            self._pull_only = True
            return None
        try:
            readable()  # what arrived already
            return await done
        finally:
            pump.listen(None)

    async def _send_unsent(self, send: Send) -> None:
        """The text the upstream's callback left to the task, through `send` (which waits for
        the caller's side)."""
        if self._unsent:
            body, self._unsent = self._unsent, b""
            await send({"type": "http.response.body", "body": body, "more_body": True})

    async def _upstream_call(self, function: Callable[[], Awaitable[_T]]) -> _T:
        """An await on SageMaker, given up at `stop_at` if there is one.

        Giving up cancels the read; the upstream is closed when the response ends. One timer per
        answer does it (`_deadline_passed`): a cancel scope with a deadline around each read
        cost ~8 us per token.
        """
        if self._stop_at is None:
            return await function()
        if asyncio.get_running_loop().time() >= self._stop_at:
            # A call that completes without waiting is never cancelled: check before starting.
            raise _DeadlineReachedError
        self._waiting_upstream = True
        try:
            return await function()
        except asyncio.CancelledError:
            if not self._cancelled_at_deadline:
                raise  # the client left, or the server stops: not ours to turn into an error
            self._cancelled_at_deadline = False
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            raise _DeadlineReachedError from None
        finally:
            self._waiting_upstream = False

    def _deadline_passed(self, task: asyncio.Task[object]) -> None:
        """The timer at `stop_at`: a wait on SageMaker in progress is cancelled (the cancel
        arrives inside it, where `_upstream_call` turns it into _DeadlineReachedError); a later
        one is refused by its own check of the clock."""
        if self._waiting_upstream and not self._cancelled_at_deadline:
            self._cancelled_at_deadline = True
            task.cancel()

    async def _open(self) -> AnswerPump:
        """Start the generation. Nothing awaits between the stream's arrival and `_pump`
        holding it, so `_close_upstream` always sees a stream that was opened."""
        stream = await self._upstream.open(self._body)
        pump = AnswerPump(
            stream,
            transform=self._transform,
            stream_format=self._stream_format,
            max_line_bytes=self._max_line_bytes,
        )
        self._pump = pump
        return pump

    async def _send_pieces(self, send: Send, pieces: Sequence[Piece]) -> None:
        """One body message per pull: pieces that arrived together leave together."""
        chunks: list[bytes] = []
        for piece in pieces:
            if isinstance(piece, TextPiece):
                chunks.append(self._text(piece))
            elif isinstance(piece, EndPiece):
                input_length = piece.input_length
                if input_length is None:
                    input_length = await self._counted_prompt()
                chunks.append(
                    self._writer.done(
                        finish_reason=piece.finish_reason,
                        generated_tokens=piece.generated_tokens,
                        input_length=input_length,
                    )
                )
                if self._record is not None:
                    self._record.finish_reason = piece.finish_reason
                    self._record.generated_tokens = piece.generated_tokens
                    if input_length is not None:
                        self._record.prompt_tokens = input_length
            else:
                chunks.append(
                    self._writer.error(message=piece.error.message, kind=piece.error.kind)
                )
                self._note_error(piece.error)
        body = b"".join(chunks)
        if body:
            await send({"type": "http.response.body", "body": body, "more_body": True})

    def _text(self, piece: TextPiece) -> bytes:
        """A text piece in the caller's format, counted as sent."""
        if self._record is not None:
            self._record.text_sent()
        return self._writer.text(piece.text)

    def _texts_then_rest(self, pieces: list[Piece]) -> tuple[bytes, list[Piece]]:
        """The leading text pieces as one chunk, and the pieces after them."""
        texts: list[bytes] = []
        for index, piece in enumerate(pieces):
            if not isinstance(piece, TextPiece):
                return b"".join(texts), pieces[index:]
            texts.append(self._text(piece))
        return b"".join(texts), []

    def _pulled(self, pieces: list[Piece]) -> list[Piece]:
        """Count the text the model generated as it arrives, sent or not yet (a whole document
        is sent only at its end): usage counts it even if the answer then fails."""
        self._pulled_text(sum(isinstance(piece, TextPiece) for piece in pieces))
        return pieces

    def _pulled_text(self, count: int) -> None:
        if self._record is not None:
            self._record.pulled_tokens += count

    async def _counted_prompt(self) -> int | None:
        """The prompt's count, once the model has answered (it is long done by then, save for
        the first request of a process, which loads the tokenizer); None if not to be had."""
        counting = self._prompt_count
        if counting is None or counting.cancelled() or _cancelling(counting):
            return None  # given up on already (a count that outlasted its wait)
        if counting.done():  # the usual case: no wait, so no timer
            return None if counting.exception() is not None else counting.result()
        wait = _COUNT_WAIT_SECONDS
        if self._stop_at is not None:
            # Never past the invocation's deadline: the answer must end before Lambda ends it.
            wait = max(0.0, min(wait, self._stop_at - anyio.current_time()))
        with anyio.move_on_after(wait):
            try:
                return await asyncio.shield(counting)
            except Exception:
                return None  # the counter logs what went wrong
        return None

    async def _settle_prompt_count(self) -> None:
        """Put the prompt's count on the record if the model did not report it (a stream cut
        short has no end piece), then stop counting."""
        counting = self._prompt_count
        if counting is None:
            return
        if self._record is not None and self._record.prompt_tokens is None:
            with anyio.CancelScope(shield=True):
                self._record.prompt_tokens = await self._counted_prompt()
        counting.cancel()

    async def _end_early(self, send: Send, pump: AnswerPump, *, message: str, kind: str) -> None:
        """End a started answer with an error of the relay's own, after the text it held back."""
        await self._send_unsent(send)
        held = pump.abandon()
        if held:
            await self._send_pieces(send, [TextPiece(text=held)])
        chunk = self._writer.error(message=message, kind=kind)
        await send({"type": "http.response.body", "body": chunk, "more_body": True})

    async def _send_error(
        self, scope: Scope, receive: Receive, send: Send, error: UpstreamError
    ) -> None:
        self._note_error(error)
        self._complete = True
        await self._render_error(error)(scope, receive, send)

    def _note_error(self, error: UpstreamError) -> None:
        if self._record is not None:
            self._record.error_type = error.kind
            self._record.error_detail = error.detail

    async def _close_upstream(self) -> None:
        """Close the upstream, even when the client left and this task is being cancelled.

        Shielded, so it runs even then; bounded, so a far side that does not let go cannot hold
        up the end of the response. A complete answer's stream is first read to its end
        (briefly: the model has nothing more to say) so its connection goes back to the pool;
        any other stream is closed at once. Where the stream's end has already arrived
        (`end_at_hand`), neither waits, and nothing needs bounding or shielding.
        """
        pump = self._pump
        if pump is None:
            return
        if self._answered and pump.end_at_hand():
            # The usual end: the stream's end has arrived, so reading it and closing wait for
            # nothing, and there is nothing to bound or to shield (three cancel scopes, ~18 us).
            await pump.drain()
            await pump.aclose()
            return
        with anyio.CancelScope(shield=True):
            if self._answered:
                with anyio.move_on_after(_DRAIN_WAIT_SECONDS):
                    await pump.drain()
            with anyio.move_on_after(_CLOSE_WAIT_SECONDS):
                await pump.aclose()


class _SafeSend:
    """`send`, with a client that left turned into one exception the relay can tell apart."""

    def __init__(self, send: Send) -> None:
        self._send = send

    async def __call__(self, message: Message) -> None:
        try:
            await self._send(message)
        except OSError as error:
            raise _ClientGoneError from error
