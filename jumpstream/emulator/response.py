"""ASGI responses for the two invoke APIs that notice when the client leaves.

Why not Starlette's ``StreamingResponse``: it notices a disconnect only while it is sending (or
not at all, depending on the server's ASGI spec version), but a held or stalled stream sends
nothing for as long as it likes. Relay tests need the disconnect recorded promptly in every
case, so these responses listen for ``http.disconnect`` alongside the body and cancel the body
the moment it arrives: :class:`EventStreamResponse` streams event-stream messages
(InvokeEndpointWithResponseStream), :class:`InvocationResponse` sends the whole reply once it is
done (InvokeEndpoint).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Mapping

import anyio
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from jumpstream.emulator.playback import Played
from jumpstream.emulator.stream_faults import StreamFault
from jumpstream.emulator.streams import StreamRecord

EVENT_STREAM = "application/vnd.amazon.eventstream"


class EventStreamResponse(Response):
    """Send each chunk of ``body`` as soon as it is produced; settle ``record`` at the end."""

    media_type = EVENT_STREAM

    def __init__(
        self,
        body: AsyncIterator[bytes],
        *,
        record: StreamRecord,
        headers: Mapping[str, str],
    ) -> None:
        self.body_iterator = body
        self.record = record
        self.status_code = 200
        self.background = None
        self.init_headers(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(_cancel_when_gone, receive, tasks.cancel_scope)
                await send(
                    {"type": "http.response.start", "status": 200, "headers": self.raw_headers}
                )
                async for chunk in self.body_iterator:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                self.record.finish("completed")
                tasks.cancel_scope.cancel()
        finally:
            # Close the body first: its own clean-up (a hold letting go) must be visible by the
            # time the record says the stream ended, or a reader could see "disconnected" yet held.
            if hasattr(self.body_iterator, "aclose"):
                with anyio.CancelScope(shield=True):
                    await self.body_iterator.aclose()
            # Anything but a clean end (cancellation, a server error) means the client lost it.
            self.record.finish("disconnected")


class InvocationResponse(Response):
    """InvokeEndpoint's answer: the container's whole reply once it is done, or SageMaker's
    error when the reply failed on the way. Until then nothing is sent, and a client that
    leaves meanwhile cancels the reply (as with a stream, its record then says so)."""

    def __init__(
        self,
        played: AsyncGenerator[Played, None],
        *,
        record: StreamRecord,
        headers: Mapping[str, str],
        request_id: str,
        endpoint_name: str,
    ) -> None:
        self.played = played
        self.record = record
        self.reply_headers = dict(headers)
        self.request_id = request_id
        self.endpoint_name = endpoint_name
        self.status_code = 200
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            collected = await self._collect(receive)
            if collected is None:
                return
            if isinstance(collected, StreamFault):
                reply: Response = collected.error(self.endpoint_name).response(self.request_id)
            else:
                reply = Response(collected, status_code=200, headers=self.reply_headers)
            await reply(scope, receive, send)
            self.record.finish("completed")
        finally:
            self.record.finish("disconnected")

    async def _collect(self, receive: Receive) -> bytes | StreamFault | None:
        """The whole reply, or its failure; None when the client left before it was done."""
        body = bytearray()
        outcome: bytes | StreamFault | None = None
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(_cancel_when_gone, receive, tasks.cancel_scope)
            try:
                async for item in self.played:
                    if isinstance(item, StreamFault):
                        outcome = item
                        break
                    body += item
                else:
                    outcome = bytes(body)
            finally:
                # As for a stream: the reply's own clean-up (a hold letting go) comes first.
                with anyio.CancelScope(shield=True):
                    await self.played.aclose()
            tasks.cancel_scope.cancel()
        return outcome


async def _cancel_when_gone(receive: Receive, scope: anyio.CancelScope) -> None:
    """Cancel `scope` (the response's work) once the client has left."""
    while (await receive())["type"] != "http.disconnect":
        pass
    scope.cancel()
