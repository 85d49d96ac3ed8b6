"""The function's pool of connections to AWS: the same work per request however many are open.

Why not httpcore's `AsyncConnectionPool`: the start and the end of every request re-examine every
connection it holds, and its check for surplus idle connections counts all of them once per idle
one, so one request costs work linear in the streams open and quadratic in the idle
connections. Measured on httpcore 1.0.9, its newest release, one request with N connections
idle: 1,487 / 68,239 / 1,058,959 Python calls (0.38 / 5.9 / 84 ms of CPU) at N = 16 / 128 / 512;
with N streams open: 551 / 3,239 / 12,455 calls (`make bench`'s pool figures). The fix proposed
upstream (encode/httpcore#1035) is not merged; the fork httpcore2 (pydantic/httpx2, 2.16.2)
made the pass linear (#974, #1075; 14,479 calls and 2.0 ms at 512 idle) and its incremental
pool (#1169) is not released. A bounded pool would bound the quadratic term, not remove it.

The relay needs little of what that scan is for: one origin per pool (aws.py), HTTP/1.1 only,
and no queue of requests waiting for a connection (each stream holds one connection while it
runs; how many run at once is the server's connection limit). So this pool keeps:
- the idle connections of each origin in a deque, oldest first: a request takes the newest
  (the one least likely to have been closed by the server), and a connection whose keep-alive
  ran out, or whose server ended it (something to read on an idle connection: httpcore's
  `has_expired`), is dropped when met;
- one timer for the whole pool, due when the oldest idle connection's keep-alive runs out:
  idle connections are closed on time even when no request comes to find them;
- connections that speak HTTP/1.1 with httptools' parser (http_client.py), or through a proxy
  (as `environment_proxy` says) httpcore's own, made by its `create_connection` (also where
  httptools cannot be loaded); httpcore is imported only then, and its requests, responses and
  failures are translated to http_types.py's at the connection (`_HttpcoreConnection`), so
  nothing above the pool tells the two apart.
Each connection is taken, returned and pruned once: the work per request is constant.

A kept-alive connection can still fail its next request: the server closed it as the request
left (the close was in flight), or while the process was frozen between two Lambda invocations.
Such a request is sent once more, on a new connection, when the reused connection ended (a
read of its end, a reset, a failed write) before a single byte of the answer arrived
(`RECEIVED_BYTES_INFO` unchanged). That is safe for InvokeEndpointWithResponseStream, which is
not idempotent (each call runs the model): with no byte of an answer, the server either never
read the request (its close crossed it) or dropped it without starting an answer, and the
caller has received nothing, so the one answer it gets is the second request's; a duplicate
generation can at worst cost the endpoint time, never repeat text to the caller. Once a byte
arrived nothing is resent (the server answered; what it said is the caller's), and a request
on a new connection is never resent (the failure is not a stale connection). botocore's own
retries, for comparison, resend any operation after a connection error. DynamoDB's calls
(dynamodb.py) go through the same pool and the same rule.

asyncio only, as network.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import deque
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Final, Protocol

import anyio

from . import http_types
from .http_types import (
    ConnectionNotAvailable,
    Origin,
    ReadError,
    RemoteProtocolError,
    Request,
    Response,
    ResponseBody,
    TransportError,
    WriteError,
)
from .network import RECEIVED_BYTES_INFO, AsyncioBackend, NetworkStream

try:
    from .http_client import Http11Connection
except ImportError:  # pragma: no cover - a bundle made for another Python than this one
    Http11Connection = None  # type: ignore[assignment, misc]

if TYPE_CHECKING:
    import httpcore

__all__ = ["ConnectionPool"]

#: What a request on a reused connection may fail with when the server had closed it.
_STALE_FAILURES: Final = (ReadError, WriteError, RemoteProtocolError, ConnectionNotAvailable)


class _Connection(Protocol):
    """What the pool asks of a connection: httpcore's `AsyncConnectionInterface`, in
    http_types.py's terms."""

    async def handle_async_request(self, request: Request) -> Response: ...

    def has_expired(self) -> bool: ...

    def is_idle(self) -> bool: ...

    async def aclose(self) -> None: ...


class _Idle:
    """An idle connection, its network stream (to count what it received), and since when."""

    __slots__ = ("connection", "since", "stream")

    def __init__(self, connection: _Connection, stream: NetworkStream | None, since: float) -> None:
        self.connection = connection
        self.stream = stream
        self.since = since


class ConnectionPool:
    """HTTP/1.1 connections kept alive for `keepalive_expiry` seconds, taken newest first.

    `handle_async_request` takes a request (it may be sent twice, see the module's docstring)
    and returns a `Response`; closing that response returns its connection to the pool when
    the answer was read to its end, else closes it.
    """

    def __init__(
        self,
        *,
        keepalive_expiry: float,
        network_backend: AsyncioBackend,
        ssl_context: ssl.SSLContext | None = None,
        proxy: httpcore.Proxy | None = None,
    ) -> None:
        # Through a proxy, httpcore's pool (never sent a request) makes each connection as
        # httpcore would; directly, http_client.py's (httpcore's too where httptools cannot be
        # loaded, as http_server.py falls back to h11).
        self._factory: httpcore.AsyncConnectionPool | None = None
        if proxy is not None or Http11Connection is None:
            import httpcore

            self._factory = httpcore.AsyncConnectionPool(
                ssl_context=ssl_context,
                proxy=proxy,
                keepalive_expiry=keepalive_expiry,
                network_backend=_HttpcoreBackend(network_backend),  # type: ignore[arg-type]
            )
        self._network_backend = network_backend
        self._ssl_context = ssl_context
        self._keepalive_expiry = keepalive_expiry
        self._idle: dict[Origin, deque[_Idle]] = {}
        self._busy: set[_Connection] = set()
        self._prune_timer: asyncio.TimerHandle | None = None
        self._closing: set[asyncio.Task[None]] = set()

    @property
    def idle_connections(self) -> int:
        """How many idle connections the pool holds (some may have expired unnoticed yet)."""
        return sum(len(idle) for idle in self._idle.values())

    @property
    def busy_connections(self) -> int:
        """How many connections carry a request or an answer now."""
        return len(self._busy)

    async def handle_async_request(self, request: Request) -> Response:
        """Send `request` on the newest live idle connection, else a new one; once more on a
        new one if the reused connection turns out closed before any byte of the answer."""
        origin = request.origin
        idle = await self._take(origin)
        if idle is not None:
            stream = idle.stream
            received = _received_bytes(stream)
            try:
                return await self._send(idle.connection, request)
            except _STALE_FAILURES as error:
                unanswered = received is not None and _received_bytes(stream) == received
                if not (unanswered or isinstance(error, ConnectionNotAvailable)):
                    raise
        return await self._send(self._new_connection(origin), request)

    async def aclose(self) -> None:
        """Close every connection, idle or busy (a SnapStart restore, the end of a test)."""
        if self._prune_timer is not None:
            self._prune_timer.cancel()
            self._prune_timer = None
        connections = [entry.connection for idle in self._idle.values() for entry in idle]
        connections.extend(self._busy)
        self._idle.clear()
        self._busy.clear()
        await _close(connections)

    # --- taking and returning connections ---

    def _new_connection(self, origin: Origin) -> _Connection:
        if self._factory is not None:
            return _HttpcoreConnection(self._factory, origin)
        assert Http11Connection is not None
        return Http11Connection(
            origin,
            network_backend=self._network_backend,
            ssl_context=self._ssl_context,
            keepalive_expiry=self._keepalive_expiry,
        )

    async def _take(self, origin: Origin) -> _Idle | None:
        """The newest idle connection to `origin` that is still good; the others met on the
        way are closed (each connection is met once: the work stays constant per request)."""
        idle = self._idle.get(origin)
        while idle:
            entry = idle.pop()
            if not entry.connection.has_expired():
                return entry
            await _close([entry.connection])
        return None

    async def _send(
        self,
        connection: _Connection,
        request: Request,
    ) -> Response:
        self._busy.add(connection)
        try:
            response = await connection.handle_async_request(request)
        except BaseException:
            self._busy.discard(connection)
            await _close([connection])
            raise
        response.stream = _PooledBody(
            response.stream, self, connection, response.network_stream, request.origin
        )
        return response

    def _release(
        self,
        connection: _Connection,
        stream: NetworkStream | None,
        origin: Origin,
    ) -> None:
        """An answer was closed: its connection is idle again (read to its end) or closed."""
        self._busy.discard(connection)
        if not connection.is_idle():
            return  # closed: the answer was not read to its end, or ended the connection
        loop = asyncio.get_running_loop()
        self._idle.setdefault(origin, deque()).append(_Idle(connection, stream, loop.time()))
        if self._prune_timer is None:
            self._schedule_prune(loop)

    # --- closing idle connections on time ---

    def _schedule_prune(self, loop: asyncio.AbstractEventLoop) -> None:
        oldest = min((idle[0].since for idle in self._idle.values() if idle), default=None)
        if oldest is not None:
            self._prune_timer = loop.call_at(oldest + self._keepalive_expiry, self._prune)

    def _prune(self) -> None:
        """Close the idle connections whose keep-alive has run out, then wait for the next."""
        self._prune_timer = None
        loop = asyncio.get_running_loop()
        due = loop.time() - self._keepalive_expiry
        expired: list[_Connection] = []
        for idle in self._idle.values():
            while idle and idle[0].since <= due:
                expired.append(idle.popleft().connection)
        if expired:
            task = loop.create_task(_close(expired))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        self._schedule_prune(loop)


class _PooledBody:
    """A response's body; closing it hands its connection back to the pool.

    An iterator rather than an async generator: a step of the body is one call more, not a
    generator's resumption (a stream takes one step per token)."""

    def __init__(
        self,
        body: ResponseBody,
        pool: ConnectionPool,
        connection: _Connection,
        stream: NetworkStream | None,
        origin: Origin,
    ) -> None:
        self._body = body
        self._next = body.__anext__
        #: The body's own: bytes at hand without awaiting, and who is told when there are
        #: (http_types.ResponseBody). A failure there closes nothing: the response is closed
        #: by its reader (`aclose`), as after any failed read.
        self.next_nowait = body.next_nowait
        self.listen = body.listen
        self._pool = pool
        self._connection = connection
        self._stream = stream
        self._origin = origin
        self._closed = False

    def __aiter__(self) -> _PooledBody:
        return self

    async def __anext__(self) -> bytes:
        try:
            return await self._next()
        except StopAsyncIteration:
            raise
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        with anyio.CancelScope(shield=True):
            await self._body.aclose()
        self._pool._release(self._connection, self._stream, self._origin)


def _received_bytes(stream: NetworkStream | None) -> int | None:
    return None if stream is None else stream.get_extra_info(RECEIVED_BYTES_INFO)


async def _close(connections: list[_Connection]) -> None:
    with anyio.CancelScope(shield=True):
        for connection in connections:
            await connection.aclose()


# --- httpcore's connections, in http_types.py's terms -----------------------------------------


class _HttpcoreConnection:
    """A connection httpcore makes (through a proxy, or with h11 where httptools cannot be
    loaded), taking and answering http_types.py's requests and responses; its failures are
    raised as http_types.py's exceptions of the same names (and network.py's reach httpcore as
    its own: `_HttpcoreBackend`)."""

    def __init__(self, factory: httpcore.AsyncConnectionPool, origin: Origin) -> None:
        import httpcore

        self._httpcore = httpcore
        self._connection = factory.create_connection(httpcore.Origin(*origin))

    async def handle_async_request(self, request: Request) -> Response:
        httpcore = self._httpcore
        scheme, host, port = request.origin
        url = httpcore.URL(scheme=scheme, host=host, port=port, target=request.target)
        try:
            response = await self._connection.handle_async_request(
                httpcore.Request(
                    request.method,
                    url,
                    headers=request.headers,
                    content=request.content,
                    extensions={"timeout": request.timeouts},
                )
            )
        except Exception as error:
            raise _translated(error) from error
        return Response(
            response.status,
            headers=response.headers,
            stream=_HttpcoreBody(response.stream),
            network_stream=response.extensions.get("network_stream"),
        )

    def has_expired(self) -> bool:
        return bool(self._connection.has_expired())

    def is_idle(self) -> bool:
        return bool(self._connection.is_idle())

    async def aclose(self) -> None:
        await self._connection.aclose()


class _HttpcoreBody:
    """An httpcore response's body, its failures translated."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._next = aiter(stream).__anext__

    def __aiter__(self) -> _HttpcoreBody:
        return self

    async def __anext__(self) -> bytes:
        try:
            chunk: bytes = await self._next()
        except StopAsyncIteration:
            raise
        except Exception as error:
            raise _translated(error) from error
        return chunk

    def next_nowait(self) -> bytes | None:
        """httpcore's bodies are read by awaiting only: nothing is ever at hand."""
        return None

    def listen(self, listener: Callable[[], None] | None) -> bool:
        return False

    async def aclose(self) -> None:
        closing = getattr(self._stream, "aclose", None)
        if closing is not None:
            await closing()


def _translated(error: Exception) -> Exception:
    """httpcore's failure as http_types.py's exception of the same name (httpcore's hierarchy,
    kept there); anything else as it is."""
    if not type(error).__module__.startswith("httpcore"):
        return error
    ours = getattr(http_types, type(error).__name__, None)
    if isinstance(ours, type) and issubclass(ours, TransportError | ConnectionNotAvailable):
        return ours(*error.args)
    return error


def _for_httpcore(error: Exception) -> Exception:
    """http_types.py's failure as httpcore's exception of the same name; anything else as it
    is."""
    if not isinstance(error, TransportError):
        return error
    import httpcore

    theirs = getattr(httpcore, type(error).__name__, None)
    return theirs(*error.args) if isinstance(theirs, type) else error


@contextlib.contextmanager
def _as_httpcore_failures() -> Iterator[None]:
    """network.py's failures in the block raised as httpcore's (`_for_httpcore`)."""
    try:
        yield
    except TransportError as error:
        raise _for_httpcore(error) from error


class _HttpcoreBackend:
    """network.py's backend as httpcore's connections expect it: failures as httpcore's own
    exceptions (its HTTP/1.1 connection reads the server's answer after a failed write only on
    its own WriteError, for one)."""

    def __init__(self, backend: AsyncioBackend) -> None:
        self._backend = backend

    async def connect_tcp(self, *args: Any, **kwargs: Any) -> _HttpcoreStream:
        with _as_httpcore_failures():
            return _HttpcoreStream(await self._backend.connect_tcp(*args, **kwargs))

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


class _HttpcoreStream:
    """A network.py stream whose failures are httpcore's (`_HttpcoreBackend`)."""

    def __init__(self, stream: NetworkStream) -> None:
        self._stream = stream

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        with _as_httpcore_failures():
            return await self._stream.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        with _as_httpcore_failures():
            await self._stream.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def start_tls(self, *args: Any, **kwargs: Any) -> _HttpcoreStream:
        with _as_httpcore_failures():
            return _HttpcoreStream(await self._stream.start_tls(*args, **kwargs))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)
