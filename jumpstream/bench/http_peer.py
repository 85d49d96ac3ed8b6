"""A loopback HTTP/1.1 server for measuring and testing the relay's upstream connection pool.

It holds as many connections as asked (an asyncio server on a thread of its own), answers
``/hold`` with a response whose end waits until `release_held` (an open stream) and anything
else at once, closes a connection left idle for ``keepalive_seconds`` as load balancers and
servers do, and can fail the next request on a kept-alive connection the ways a server that
closed it meanwhile does (`Reused`). It counts connections, requests, and who closed an idle
connection first: the client (its pool pruned it) or the server (its keep-alive ran out).
"""

from __future__ import annotations

import asyncio
import enum
import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Final

__all__ = ["HttpPeer", "PeerCounts", "Reused", "http_peer"]

_HELD_HEAD: Final = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n"
_HELD_END: Final = b"0\r\n\r\n"
# A generous guard against hangs; never a statement about speed.
_START_GUARD_SECONDS: Final = 30.0


class Reused(enum.Enum):
    """What the peer does with a request that comes on a connection it already answered on."""

    #: Answer it, as any keep-alive server.
    ANSWER = "answer"
    #: Close the connection without a byte of answer (FIN): the close crossed the request.
    CLOSE = "close"
    #: Reset the connection (RST) without a byte of answer.
    RESET = "reset"
    #: Send the start of a status line, then close: a byte of the answer arrived.
    PARTIAL = "partial"
    #: Close every connection without a byte of answer, new ones too.
    CLOSE_ALL = "close all"


@dataclass(slots=True)
class PeerCounts:
    """What the peer saw, updated on its own thread."""

    connections: int = 0
    requests: int = 0
    #: Idle connections the client closed before the peer's keep-alive ran out.
    closed_by_client: int = 0
    #: Idle connections the peer closed when its keep-alive ran out.
    closed_by_peer: int = 0
    #: Requests on a reused connection that the peer failed as `Reused` says.
    failed_reused: int = 0
    requests_per_connection: list[int] = field(default_factory=list)


class _PeerConnection(asyncio.Protocol):
    def __init__(self, peer: HttpPeer) -> None:
        self._peer = peer
        self._transport: asyncio.Transport | None = None
        self._buffer = b""
        self._answered = 0
        self._index = 0
        self._idle_timer: asyncio.TimerHandle | None = None
        self._closed_by_peer = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        counts = self._peer.counts
        self._index = counts.connections
        counts.connections += 1
        counts.requests_per_connection.append(0)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while True:
            head_end = self._buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self._buffer[:head_end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if len(self._buffer) < head_end + 4 + length:
                return
            self._buffer = self._buffer[head_end + 4 + length :]
            self._request(head.split(" ", 2)[1])

    def _request(self, path: str) -> None:
        transport = self._transport
        assert transport is not None
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        counts = self._peer.counts
        counts.requests += 1
        counts.requests_per_connection[self._index] += 1
        reused = self._peer.reused
        if reused is Reused.CLOSE_ALL or (self._answered and reused is not Reused.ANSWER):
            counts.failed_reused += 1
            self._closed_by_peer = True
            if reused is Reused.RESET:
                sock = transport.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                transport.abort()
                return
            if reused is Reused.PARTIAL:
                transport.write(b"HTTP/1.")
            transport.close()
            return
        self._answered += 1
        if path == "/hold":
            transport.write(_HELD_HEAD)
            self._peer.held.append(self)
        else:
            transport.write(self._peer.answer)
            self._idle()

    def end_held(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(_HELD_END)
            self._idle()

    def _idle(self) -> None:
        seconds = self._peer.keepalive_seconds
        if seconds is not None:
            self._idle_timer = asyncio.get_running_loop().call_later(seconds, self._expire)

    def _expire(self) -> None:
        self._idle_timer = None
        self._closed_by_peer = True
        self._peer.counts.closed_by_peer += 1
        if self._transport is not None:
            self._transport.close()

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
            self._peer.counts.closed_by_client += 1
        elif not self._closed_by_peer and self._answered:
            self._peer.counts.closed_by_client += 1


class HttpPeer:
    """The server; `http_peer` runs one for the length of a ``with`` block."""

    def __init__(
        self, *, keepalive_seconds: float | None, reused: Reused, body: bytes, content_type: str
    ) -> None:
        self.keepalive_seconds = keepalive_seconds
        self.reused = reused
        self.answer = (
            f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode("latin-1") + body
        self.counts = PeerCounts()
        self.held: list[_PeerConnection] = []
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Event | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def release_held(self) -> None:
        """End every held response (each connection then idles)."""
        loop = self._loop
        assert loop is not None

        def release() -> None:
            held, self.held = self.held, []
            for connection in held:
                connection.end_held()

        loop.call_soon_threadsafe(release)

    def stop(self) -> None:
        """End `run` (from another thread)."""
        if self._loop is not None and self._stopped is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)

    def run(self, started: threading.Event) -> None:
        """Serve until `stop`; `started` is set once the port is known."""

        async def serve() -> None:
            self._loop = asyncio.get_running_loop()
            self._stopped = asyncio.Event()
            server = await self._loop.create_server(
                lambda: _PeerConnection(self), "127.0.0.1", 0, backlog=4096
            )
            self.port = server.sockets[0].getsockname()[1]
            started.set()
            await self._stopped.wait()
            server.close()

        asyncio.run(serve())


@contextmanager
def http_peer(
    *,
    keepalive_seconds: float | None = None,
    reused: Reused = Reused.ANSWER,
    body: bytes = b"ok",
    content_type: str = "text/plain",
) -> Iterator[HttpPeer]:
    """An `HttpPeer` on a free loopback port answering `body`, stopped at the end of the
    block."""
    peer = HttpPeer(
        keepalive_seconds=keepalive_seconds, reused=reused, body=body, content_type=content_type
    )
    started = threading.Event()
    thread = threading.Thread(target=peer.run, args=(started,), daemon=True)
    thread.start()
    try:
        if not started.wait(_START_GUARD_SECONDS):
            raise RuntimeError("the HTTP peer did not start")
        yield peer
    finally:
        peer.stop()
        thread.join(_START_GUARD_SECONDS)
