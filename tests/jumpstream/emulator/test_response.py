"""The disconnect-aware event-stream response, driven as an ASGI app without sockets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from jumpstream.emulator.response import EventStreamResponse
from jumpstream.emulator.streams import StreamRecord

#: Hang guard for the async tests; none of them needs more than a few milliseconds.
GUARD_SECONDS = 10


def run(coroutine: Any) -> Any:
    async def guarded() -> Any:
        return await asyncio.wait_for(coroutine, GUARD_SECONDS)

    return asyncio.run(guarded())


class FakeClient:
    """An ASGI peer: delivers the request, then a disconnect when told to."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.leave = asyncio.Event()
        self._request_delivered = False

    async def receive(self) -> dict[str, Any]:
        if not self._request_delivered:
            self._request_delivered = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self.leave.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)


SCOPE = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}}


def test_the_response_sends_every_chunk_then_completes() -> None:
    async def body() -> AsyncIterator[bytes]:
        for chunk in (b"one", b"two"):
            yield chunk

    async def scenario() -> None:
        client = FakeClient()
        record = StreamRecord(id="s")
        response = EventStreamResponse(body(), record=record, headers={"x-amzn-RequestId": "s"})
        await response(SCOPE, client.receive, client.send)
        assert client.sent[0]["type"] == "http.response.start"
        assert (b"content-type", b"application/vnd.amazon.eventstream") in client.sent[0]["headers"]
        assert [m.get("body") for m in client.sent[1:]] == [b"one", b"two", b""]
        assert client.sent[-1]["more_body"] is False
        assert record.state == "completed"

    run(scenario())


def test_a_client_leaving_a_silent_stream_cancels_and_closes_the_body() -> None:
    closed = asyncio.Event()

    async def body() -> AsyncIterator[bytes]:
        try:
            yield b"first"
            await asyncio.Event().wait()
            yield b"never"
        finally:
            closed.set()

    async def scenario() -> None:
        client = FakeClient()
        record = StreamRecord(id="s")
        response = EventStreamResponse(body(), record=record, headers={})
        serving = asyncio.ensure_future(response(SCOPE, client.receive, client.send))
        while len(client.sent) < 2:
            await asyncio.sleep(0)
        assert record.state == "open"
        client.leave.set()
        # Readers poll the record at any moment: it may say "disconnected" only once the body
        # has been closed, or they could see a stream that ended yet is still parked.
        while not serving.done():
            assert record.state == "open" or closed.is_set()
            await asyncio.sleep(0)
        await serving
        assert record.state == "disconnected"
        assert closed.is_set()
        assert [m.get("body") for m in client.sent[1:]] == [b"first"]

    run(scenario())
