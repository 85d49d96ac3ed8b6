"""A transport that joins what is written to it during one event-loop step into one write.

uvicorn writes each ASGI message to the socket as it comes: a response's head, every body
message and the end of the body are one `send` system call each. Over loopback (the Web Adapter
is on the same host) a send costs its sender the receiving side's TCP work too, and it was the
largest part of the relay's system time per token. Tokens often come in bursts: the model's
parts arrive faster than one event-loop turn, and one read from SageMaker completes several of
them. Here everything uvicorn writes while the event loop runs one step of the relay (a burst of
tokens, or the head with the first token, or the last token with the end of the body) leaves in
one send: a callback made ready with `call_soon` sends it in the event loop's next turn, which
polls without waiting because a callback is ready. (A zero-delay timer did the same at the
price of a push to and a pop from the loop's heap of timers, in Python, per token.) Text the
upstream connection's own callback writes (streaming.py's push path, body_writer.py) goes out at
once instead (`write_now`): nothing else is written in that callback, so there is nothing to
wait for and no turn to spend.

Nothing waits longer for it: the step that wrote runs to its end first either way (the event
loop runs one callback at a time). Flow control is unchanged: what is gathered reaches uvicorn's
transport within a turn, and past `FLUSH_AT_BYTES` at once, so a full socket buffer still pauses
uvicorn's writes and with them the relay's reads from SageMaker.

asyncio only, as the relay's server (http_server.py).
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

__all__ = ["FLUSH_AT_BYTES", "GatheringTransport"]

#: Gathered bytes past which they go to the transport at once: asyncio's own write high-water
#: mark, so that flow control sees them when it would have.
FLUSH_AT_BYTES: Final = 64 * 1024


class GatheringTransport(asyncio.Transport):
    """A transport's writes, joined until the end of the event loop's step; all else is the
    transport's own."""

    def __init__(self, transport: asyncio.Transport) -> None:
        super().__init__()
        self._transport = transport
        self._loop = asyncio.get_running_loop()
        self._gathered: list[bytes] = []
        self._gathered_bytes = 0
        self._flush_handle: asyncio.Handle | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        self._gathered.append(bytes(data))
        self._gathered_bytes += len(data)
        if self._gathered_bytes >= FLUSH_AT_BYTES:
            self.flush()
        elif self._flush_handle is None:
            # Run once the step that wrote has ended, in the event loop's next turn. (A flush
            # that comes first, close's, cancels it: that costs the loop a turn without a
            # wait, once per connection.)
            self._flush_handle = self._loop.call_soon(self.flush)

    def write_now(self, data: bytes) -> None:
        """Hand `data` to the transport at once, after anything gathered: for a writer that
        knows nothing else comes in this step (body_writer.py), no turn of the loop to wait
        for and no callback to schedule."""
        if self._gathered:
            self.write(data)
            self.flush()
        elif not self._transport.is_closing():
            self._transport.write(data)

    def flush(self) -> None:
        """Hand what was gathered to the transport, as one write."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if not self._gathered:
            return
        data = b"".join(self._gathered)
        self._gathered.clear()
        self._gathered_bytes = 0
        # A connection lost meanwhile takes nothing more (asyncio would warn of each write).
        if not self._transport.is_closing():
            self._transport.write(data)

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        self._gathered.clear()
        self._gathered_bytes = 0
        self._transport.abort()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + self._gathered_bytes

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()
