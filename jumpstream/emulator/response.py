"""An ASGI response that streams event-stream messages and notices when the client leaves.

Why not Starlette's ``StreamingResponse``: it notices a disconnect only while it is sending (or
not at all, depending on the server's ASGI spec version), but a held or stalled stream sends
nothing for as long as it likes. Relay tests need the disconnect recorded promptly in every
case, so this response listens for ``http.disconnect`` alongside the body and cancels the body
the moment it arrives.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

import anyio
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

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

                async def watch_for_disconnect() -> None:
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    tasks.cancel_scope.cancel()

                tasks.start_soon(watch_for_disconnect)
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
