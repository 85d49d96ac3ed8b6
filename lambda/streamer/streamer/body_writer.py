"""Writing a started response's body from a callback: a chunk as uvicorn frames it, no ASGI message.

A paced stream's tokens each arrive alone, so the cost that counts is the one per token. Awaiting
each one cost a task's wake-up (a future resolved by the upstream connection's callback, the
task's step, a chain of about twenty coroutines resumed) and each ASGI `send` four more
coroutines (Starlette's and the relay's middleware around uvicorn's); together more than the
decoding. streaming.py instead decodes a token in the upstream connection's own callback and
writes it from there with this writer: one callback per token.

`send` is a coroutine because it may wait: while the caller's side of the connection is full
(flow control), or before the response has started. The writer writes only when `send` would
write at once, and says so; otherwise the caller goes back to awaiting `send`, which then waits
where it must. What it writes is what uvicorn's httptools protocol writes for a body message
(the chunk's size in hex, the bytes, CRLF) on the same transport, so the two can alternate.
A server without it (the h11 protocol, an in-process test client) offers no writer, and every
token goes through `send`.

The same callback side tells the response when the client leaves (`on_disconnect`), from the
protocol's `connection_lost`. An ASGI app learns it by awaiting `receive`, which takes a task of
its own per request for as long as the answer streams (a task made, stepped, cancelled and
stepped again: about as much as parsing the request); where the server offers the writer, a
callback costs nothing until the client does leave.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping
from typing import Any, Final

__all__ = ["EXTENSION", "ChunkedBodyWriter", "body_writer"]

#: The ASGI scope extension that holds a request's writer (http_server.py sets it).
EXTENSION: Final = "jumpstream.body_writer"


class ChunkedBodyWriter:
    """Writes body chunks of one uvicorn httptools request-response cycle, at once, through
    its gathering transport (gathered_writes.py): nothing else is written in that callback."""

    __slots__ = ("_cycle", "_on_disconnect", "_transport")

    def __init__(self, cycle: Any, transport: Any) -> None:
        # Weakly: the cycle holds the scope that holds this writer, and a strong reference
        # would leave every request's cycle to the garbage collector.
        self._cycle = weakref.ref(cycle)
        self._transport = transport
        self._on_disconnect: Callable[[], None] | None = None

    def on_disconnect(self, callback: Callable[[], None] | None) -> None:
        """Have `callback` called once if the client's connection is lost before the response
        is complete (at once if it already was); None: no longer."""
        self._on_disconnect = callback
        cycle = self._cycle()
        if callback is not None and (cycle is None or cycle.disconnected):
            self.connection_lost()

    def connection_lost(self) -> None:
        """The server's protocol lost the connection before the response was complete."""
        callback, self._on_disconnect = self._on_disconnect, None
        if callback is not None:
            callback()

    def __call__(self, body: bytes) -> bool:
        """Write `body` as the next chunk if `send` would write it now without waiting; False
        (nothing written) where it would not: send it with `send` instead."""
        if not body:
            return True  # an empty chunk would end the body
        cycle = self._cycle()
        if (
            cycle is None
            or not cycle.response_started
            or cycle.response_complete
            or cycle.chunked_encoding is not True
            or cycle.flow.write_paused
            or cycle.disconnected
        ):
            return False
        self._transport.write_now(b"%x\r\n%b\r\n" % (len(body), body))
        return True


def body_writer(scope: Mapping[str, Any]) -> ChunkedBodyWriter | None:
    """The request's writer, where the server offers one."""
    extensions = scope.get("extensions")
    return None if extensions is None else extensions.get(EXTENSION)
