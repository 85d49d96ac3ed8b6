"""The relay's connections to AWS: a network backend (httpcore's interface) on asyncio's transports.

Beside it, what a connection is made with: the proxy and the TLS context.

Why not httpcore's default backend: it goes through anyio, which for every read of the stream
opens a cancel scope with a timer and resumes, then pauses, the socket's reading (two epoll_ctl
calls); with one read per token that was ~20 us of the relay's ~150 us of CPU per token. Here each
connection is one `asyncio.Protocol` that collects what arrives, and a read takes it: a timer
only while a read has to wait, and the socket is read without a pause until the buffer is full.

What anyio's backend guaranteed still holds, by these means:
- Timeouts: a read or write that waits longer than its timeout raises ReadTimeout or
  WriteTimeout (http_types.py: httpcore's names); connect and the TLS handshake raise
  ConnectTimeout. A read's timeout (or a listener's, `listen`) is one timer per connection,
  moved on by each read or arrival rather than made and cancelled by it: with a token per
  read, a timer per read (made, pushed on the event loop's heap among as many timers as streams,
  cancelled, cleaned up) cost ~3 us of CPU per paced token, a moved deadline ~0.2 us.
- Flow control: past `HIGH_WATER_BYTES` unread, the transport stops reading the socket, so a relay
  that stops reading (its caller reads slowly) leaves the bytes in the kernel, and TCP's window
  then tells SageMaker to wait. What one connection holds is that much plus one socket read.
- TLS: `loop.start_tls` with the pool's context, which verifies the certificate against
  botocore's CA bundle and the host name (`server_hostname`).
- Cancellation: a read cancelled while it waits (the client left, the deadline came) consumes
  nothing, and the connection can still be closed; closing drops it at once (no TLS goodbye to
  wait for), which is what tells SageMaker to stop the model.

And one thing it did not: what one step of the task writes leaves in one send (httpcore writes a
request's head and its body separately: one send fewer per request), flushed before the next
read, at the latest when the event loop next runs, and at once past `HIGH_WATER_BYTES`.

asyncio only: the relay runs on uvicorn's asyncio event loop (and its tests on anyio's asyncio
backend).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import unquote, urlsplit

from .http_types import (
    ConnectError,
    ConnectTimeout,
    MustAwait,
    ReadError,
    ReadTimeout,
    WriteError,
    WriteTimeout,
)

if TYPE_CHECKING:
    import httpcore

__all__ = [
    "HIGH_WATER_BYTES",
    "RECEIVED_BYTES_INFO",
    "AsyncioBackend",
    "NetworkStream",
    "environment_proxy",
    "tls_context",
]

#: Unread bytes past which a connection stops reading its socket: httpcore's own read size.
HIGH_WATER_BYTES: Final = 64 * 1024
#: The `get_extra_info` name of how many bytes a connection has received so far: a request
#: whose connection failed with this count unchanged got no byte of its answer
#: (connection_pool.py's retry of a connection the server closed while it was idle).
RECEIVED_BYTES_INFO: Final = "jumpstream_received_bytes"
# As anyio's connect_tcp and RFC 8305: the next address is tried after this long.
_HAPPY_EYEBALLS_DELAY_SECONDS: Final = 0.25


class _Connection(asyncio.Protocol):
    """One TCP (then maybe TLS) connection: what arrived and is unread, and who waits for it."""

    def __init__(self) -> None:
        # Made by the loop's create_connection: the connection's loop, kept. Asking for the
        # running loop costs a getpid() system call per call on Python 3.11 (the bench's; 3.12
        # and later, Lambda's 3.14 among them, make none), once per token in `data_received`.
        self._loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.received_bytes = 0
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._eof = False
        self._lost: BaseException | None = None
        self._reading_paused = False
        self._writing_paused = False
        self._reader: asyncio.Future[None] | None = None
        self._writer: asyncio.Future[None] | None = None
        self._outgoing: list[bytes] = []
        self._outgoing_bytes = 0
        self._flush_timer: asyncio.TimerHandle | None = None
        #: When the waiting read times out, on the event loop's clock, and the one timer that
        #: checks it (due at or before that time; None while no read has needed one).
        self._read_due = 0.0
        self._read_timer: asyncio.TimerHandle | None = None
        #: Who is told of what arrives instead of a waiting read (`listen`), its timeout, and
        #: whether that timeout passed with nothing arrived.
        self._listener: Callable[[], None] | None = None
        self._listen_timeout: float | None = None
        self._timed_out = False

    # --- asyncio's callbacks ---

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self._chunks.append(data)
        self._buffered += len(data)
        self.received_bytes += len(data)
        if self._buffered >= HIGH_WATER_BYTES and not self._reading_paused:
            self._reading_paused = True
            self._require_transport().pause_reading()
        listener = self._listener
        if listener is None:
            _wake(self._reader)
            return
        if self._listen_timeout is not None:
            self._read_due = self._loop.time() + self._listen_timeout
        listener()

    def eof_received(self) -> bool:
        self._eof = True
        self._tell_reader()
        return False  # close the transport: HTTP/1.1 has nothing to say after the peer's end

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        self._lost = exc
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None
        self._tell_reader()
        _wake(self._writer)

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        _wake(self._writer)

    # --- what the stream asks ---

    @property
    def readable(self) -> bool:
        """Something to read, or the end: an idle connection in that state is stale."""
        return bool(self._chunks) or self._eof

    async def read(self, max_bytes: int, timeout: float | None) -> bytes:
        """Everything unread up to `max_bytes`, waiting at most `timeout` for the first byte;
        b"" once the peer has ended the connection and all was read."""
        self.flush()
        while not self._chunks and not self._eof:
            self._reader = self._loop.create_future()
            if timeout is not None:
                self._time_read(timeout)
            try:
                await self._reader
            finally:
                self._reader = None
        if not self._chunks:
            if self._lost is not None:
                raise ReadError(repr(self._lost)) from self._lost
            return b""
        return self._take(max_bytes)

    def listen(self, listener: Callable[[], None] | None, timeout: float | None) -> None:
        """Until called again with None, call `listener` (on the event loop, synchronously)
        when something arrives, when the connection ends, and when `timeout` passes with
        nothing arrived, rather than waking a read: it takes what there is with `read_nowait`.

        A stream then costs one callback per read of the socket, not a task's wake-up."""
        self._listener = listener
        self._listen_timeout = timeout
        self._timed_out = False
        if listener is not None and timeout is not None:
            self._time_read(timeout)

    def read_nowait(self, max_bytes: int) -> bytes | None:
        """What `read` would return without waiting: the unread bytes, up to `max_bytes`; None
        while nothing arrived. Raises ReadTimeout once the listener's timeout passed, and
        MustAwait at the connection's end (`read` then says how it ended)."""
        if self._chunks:
            return self._take(max_bytes)
        if self._timed_out:
            self._timed_out = False
            raise ReadTimeout("timed out")
        if self._eof:
            raise MustAwait
        return None

    def _tell_reader(self) -> None:
        if self._listener is not None:
            self._listener()
        else:
            _wake(self._reader)

    def _time_read(self, timeout: float) -> None:
        """The waiting read fails with ReadTimeout once `timeout` has passed: the connection's
        timer is left where it is if it is due sooner (it then moves itself on), else set."""
        self._read_due = self._loop.time() + timeout
        timer = self._read_timer
        if timer is None or timer.when() > self._read_due:
            if timer is not None:
                timer.cancel()
            self._read_timer = self._loop.call_at(self._read_due, self._read_timed)

    def _read_timed(self) -> None:
        """The read timer is due: fail the waiting read (or tell the listener) if its time is
        up, else wait on until it is; with no one waiting, the next read sets the timer again."""
        timer, self._read_timer = self._read_timer, None
        reader, listener = self._reader, self._listener
        if listener is not None:
            waiting = self._listen_timeout is not None  # else an earlier read's timer
        else:
            waiting = reader is not None and not reader.done()
        if not waiting:
            return
        if timer is not None and self._read_due > timer.when():
            self._read_timer = self._loop.call_at(self._read_due, self._read_timed)
            return
        if listener is not None:
            self._timed_out = True
            listener()
        elif reader is not None:
            reader.set_exception(ReadTimeout("timed out"))

    async def write(self, data: bytes, timeout: float | None) -> None:
        """Queue `data` to leave with whatever else this step writes; past the high-water mark,
        hand it all to the transport and wait (at most `timeout`) while its buffer is full."""
        transport = self._require_transport()
        if self._lost is not None or transport.is_closing():
            raise WriteError("the connection is closed")
        if self._flush_timer is None:
            # A timer, not call_soon: cancelled by the read that flushes first, it costs the
            # event loop no extra turn (a cancelled ready callback would).
            self._flush_timer = self._loop.call_later(0, self.flush)
        self._outgoing.append(data)
        self._outgoing_bytes += len(data)
        if self._outgoing_bytes < HIGH_WATER_BYTES:
            return
        self.flush()
        if self._writing_paused:
            self._writer = self._loop.create_future()
            try:
                await _wait(self._writer, timeout, WriteTimeout)
            finally:
                self._writer = None
            if self._lost is not None:
                raise WriteError(repr(self._lost)) from self._lost

    def flush(self) -> None:
        """Hand what was written to the transport, as one send."""
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        if not self._outgoing:
            return
        data = b"".join(self._outgoing)
        self._outgoing.clear()
        self._outgoing_bytes = 0
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(data)

    def _take(self, max_bytes: int) -> bytes:
        chunks = self._chunks
        if len(chunks) == 1 and len(chunks[0]) <= max_bytes:  # the usual case: no copy
            data = chunks.pop()
        else:
            joined = b"".join(chunks)
            chunks.clear()
            data, rest = joined[:max_bytes], joined[max_bytes:]
            if rest:
                chunks.append(rest)
        self._buffered -= len(data)
        if self._reading_paused and self._buffered < HIGH_WATER_BYTES:
            self._reading_paused = False
            self._require_transport().resume_reading()
        return data

    def _require_transport(self) -> asyncio.Transport:
        if self.transport is None:  # pragma: no cover - asyncio calls connection_made first
            raise ConnectError("not connected")
        return self.transport


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


async def _wait(
    waiter: asyncio.Future[None], timeout: float | None, timeout_error: type[Exception]
) -> None:
    """Wait for `waiter`; past `timeout`, raise `timeout_error` instead."""
    if timeout is None:
        await waiter
        return
    timer = asyncio.get_running_loop().call_later(timeout, _expire, waiter, timeout_error)
    try:
        await waiter
    finally:
        timer.cancel()


def _expire(waiter: asyncio.Future[None], timeout_error: type[Exception]) -> None:
    if not waiter.done():
        waiter.set_exception(timeout_error("timed out"))


class NetworkStream:
    """One connection as httpcore's `AsyncNetworkStream` (what http_client.py and httpcore's
    proxy connections read and write)."""

    def __init__(self, connection: _Connection) -> None:
        self._connection = connection
        #: `read`'s bytes if they are at hand, else None, and a listener told when there is
        #: something to read: the connection's own methods (`_Connection.read_nowait` and
        #: `listen`), bound here, as they are called once or twice per token.
        self.read_nowait = connection.read_nowait
        self.listen = connection.listen

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._connection.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if buffer:
            await self._connection.write(buffer, timeout)

    async def aclose(self) -> None:
        """Drop the connection now: no TLS close_notify exchange to wait for."""
        transport = self._connection.transport
        if transport is not None:
            transport.abort()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> NetworkStream:
        """The TLS handshake on this connection; the certificate is verified as the context
        says (the relay's: botocore's CA bundle and the host name)."""
        connection = self._connection
        loop = asyncio.get_running_loop()
        try:
            transport = await asyncio.wait_for(
                loop.start_tls(
                    connection._require_transport(),
                    connection,
                    ssl_context,
                    server_hostname=server_hostname,
                ),
                timeout,
            )
        except BaseException as error:
            await self.aclose()
            if isinstance(error, TimeoutError):
                raise ConnectTimeout("TLS handshake timed out") from error
            if isinstance(error, OSError):  # ssl.SSLError (a failed verification) included
                raise ConnectError(repr(error)) from error
            raise
        if transport is None:  # pragma: no cover - only for a transport closed meanwhile
            raise ConnectError("the connection closed during the TLS handshake")
        connection.transport = transport
        return NetworkStream(connection)

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            return self._connection.readable
        if info == RECEIVED_BYTES_INFO:
            return self._connection.received_bytes
        transport = self._connection.transport
        if transport is None:  # pragma: no cover
            return None
        name = {"client_addr": "sockname", "server_addr": "peername"}.get(info, info)
        if name in ("ssl_object", "sockname", "peername", "socket"):
            return transport.get_extra_info(name)
        return None


class AsyncioBackend:
    """Opens connections on the running asyncio event loop: httpcore's `AsyncNetworkBackend`
    (http_client.py's connections use it, and httpcore's through a proxy)."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> NetworkStream:
        loop = asyncio.get_running_loop()
        try:
            transport, connection = await asyncio.wait_for(
                loop.create_connection(
                    _Connection,
                    host,
                    port,
                    local_addr=None if local_address is None else (local_address, 0),
                    happy_eyeballs_delay=_HAPPY_EYEBALLS_DELAY_SECONDS,
                ),
                timeout,
            )
        except TimeoutError as error:
            raise ConnectTimeout("connecting timed out") from error
        except OSError as error:
            raise ConnectError(repr(error)) from error
        # asyncio sets TCP_NODELAY on TCP sockets itself; these are the caller's extras.
        for option in socket_options or ():
            transport.get_extra_info("socket").setsockopt(*option)
        return NetworkStream(connection)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


# --- What a connection to SageMaker needs besides the backend -------------------------------


def environment_proxy(url: str) -> httpcore.Proxy | None:
    """The proxy botocore would take for `url` from the environment (its scheme's *_PROXY,
    unless NO_PROXY names the host), credentials in its URL as Basic auth; None for none.
    (httpcore is imported only when there is one.)"""
    from botocore.utils import get_environ_proxies

    proxy_url = get_environ_proxies(url).get(urlsplit(url).scheme)
    if not proxy_url:
        return None
    if "://" not in proxy_url:  # botocore and urllib accept "host:port"
        proxy_url = f"http://{proxy_url}"
    parts = urlsplit(proxy_url)
    auth = None
    if parts.username is not None:
        auth = (unquote(parts.username), unquote(parts.password or ""))
        proxy_url = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
    import httpcore

    return httpcore.Proxy(proxy_url, auth=auth)


def tls_context(ca_bundle: str | None) -> ssl.SSLContext:
    """Verify SageMaker's certificate against the bundle botocore would use."""
    from botocore.httpsession import get_cert_path

    return ssl.create_default_context(cafile=ca_bundle or get_cert_path(True))
