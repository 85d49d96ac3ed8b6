"""A client that stops reading stops the relay's reads from SageMaker.

Over a real socket (uvicorn as __main__ runs it): only there does a full send buffer make the
relay's `send` wait. What is checked is what was read and written, never how long it took.
"""

from __future__ import annotations

import asyncio
import contextvars
import socket
import threading
from collections.abc import Iterator
from typing import Any

import anyio.lowlevel
import pytest
from streamer.http_types import MustAwait
from streamer.observability import current_record

from tests.serving import serving
from tests.streamer.support import HANG_GUARD_SECONDS, make_app, token_event

# Each piece of text is this big, so that socket buffers fill after a bounded number of parts.
PIECE = "x" * 4096
REQUEST = (
    b"POST / HTTP/1.1\r\nHost: relay\r\nContent-Type: application/json\r\n"
    b"Content-Length: 17\r\n\r\n"
    b'{"inputs": "hi!"}'
)


class EndlessStream:
    """A model that never stops: a token per read, counting the reads. Each read lets the event
    loop run, as a network read does (anyio checkpoints in every receive)."""

    def __init__(self) -> None:
        self.reads = 0
        self.closed = threading.Event()

    def __aiter__(self) -> EndlessStream:
        return self

    async def __anext__(self) -> bytes:
        await anyio.lowlevel.checkpoint()
        if self.closed.is_set():
            raise StopAsyncIteration
        self.reads += 1
        return token_event(PIECE)

    async def aclose(self) -> None:
        self.closed.set()


class EndlessPushingStream(EndlessStream):
    """The same model, telling when a token is at hand (as network.py's connections do): the
    relay then takes tokens in the callback and writes them there, not in its task. A token
    arrives a loop turn after the last was taken, while someone listens, in the context of no
    request (as a pooled connection's callbacks run in whichever request opened it)."""

    def __init__(self) -> None:
        super().__init__()
        self._listener: Any = None
        self._arrived = False
        #: The request record each take saw in its context (observability.current_record).
        self.records_seen: set[str | None] = set()

    def listen(self, listener: Any) -> bool:
        self._listener = listener
        if listener is not None:
            self._arrive_soon()
        return True

    def next_nowait(self) -> bytes | None:
        if self.closed.is_set():
            raise MustAwait  # the end: awaiting `__anext__` says so
        if not self._arrived:
            return None
        self._arrived = False
        self.reads += 1
        record = current_record()
        self.records_seen.add(None if record is None else record.request_id)
        self._arrive_soon()
        return token_event(PIECE)

    def _arrive_soon(self) -> None:
        asyncio.get_running_loop().call_soon(self._arrive, context=contextvars.Context())

    def _arrive(self) -> None:
        self._arrived = True
        if self._listener is not None:
            self._listener()


class EndlessUpstream:
    def __init__(self, stream: EndlessStream) -> None:
        self.stream = stream

    async def after_restore(self) -> None:
        raise AssertionError("not restored in these tests")

    async def open(self, body: bytes) -> Any:
        return self.stream


def reads_settle(stream: EndlessStream) -> Iterator[int]:
    """The read count, sampled until two samples a while apart agree."""
    previous = -1
    gate = threading.Event()
    while stream.reads != previous:
        previous = stream.reads
        yield previous
        gate.wait(0.3)


@pytest.mark.parametrize("stream", [EndlessStream, EndlessPushingStream])
def test_a_client_that_stops_reading_stops_the_reads_upstream(stream: type[EndlessStream]) -> None:
    """Whether the relay awaits each read or takes each in the upstream's callback."""
    upstream = EndlessUpstream(stream())
    with serving(make_app(upstream)) as url:
        port = int(url.rsplit(":", 1)[1])
        client = socket.create_connection(("127.0.0.1", port), timeout=HANG_GUARD_SECONDS)
        try:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
            client.sendall(REQUEST)
            assert client.recv(1)  # the answer began; from now on nothing is read
            samples = []
            for count in reads_settle(upstream.stream):
                samples.append(count)
                assert len(samples) < HANG_GUARD_SECONDS / 0.3, "the relay never stopped reading"
            settled = samples[-1]
            # What the relay read is what fits in the socket buffers on both sides and the
            # server's write buffer: a bounded amount, nowhere near an endless stream.
            assert settled * len(PIECE) < 64 * 1024 * 1024
        finally:
            client.close()
        # The client left: the relay closes the model's stream.
        assert upstream.stream.closed.wait(HANG_GUARD_SECONDS)


def test_text_taken_in_the_upstreams_callback_is_taken_in_the_requests_context() -> None:
    """Whatever the callback runs (decoding, and any log line it writes) sees the request's
    record and log keys, not those of the context the connection's callback came from."""
    upstream = EndlessUpstream(EndlessPushingStream())
    with serving(make_app(upstream)) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=HANG_GUARD_SECONDS) as client:
            client.sendall(REQUEST)
            received = b""
            while b"\r\n\r\n" not in received or len(received) < 4 * len(PIECE):
                received += client.recv(65536)
        assert upstream.stream.closed.wait(HANG_GUARD_SECONDS)
    head = received.partition(b"\r\n\r\n")[0].decode("latin-1").lower()
    request_id = head.partition("x-request-id: ")[2].partition("\r\n")[0]
    assert request_id
    assert isinstance(upstream.stream, EndlessPushingStream)
    assert upstream.stream.reads > 1
    assert upstream.stream.records_seen == {request_id}
