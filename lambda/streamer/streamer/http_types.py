"""What the relay's HTTP client speaks: a request, a response, an origin and the ways a call fails.

The names and meanings are httpcore's (its `Request`, `Response`, `Origin` and exception
hierarchy), so that the client's users (connection_pool.py, upstream.py, dynamodb.py,
sagemaker_errors.py) read as they would with httpcore. They are the relay's own because the
direct path to AWS (http_client.py on network.py) needs nothing else of httpcore, and importing
httpcore and h11 cost ~13 ms of CPU at every cold start, and building its request and response
models ~100 Python calls per request. httpcore is imported only where it still works: through a
proxy, and where httptools cannot be loaded (connection_pool.py), and its failures are turned
into these there.

Standard library only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, Final, NamedTuple, Protocol
from urllib.parse import urlsplit

__all__ = [
    "ConnectError",
    "ConnectTimeout",
    "ConnectionNotAvailable",
    "LocalProtocolError",
    "MustAwait",
    "NetworkError",
    "Origin",
    "PoolTimeout",
    "ProtocolError",
    "ProxyError",
    "ReadError",
    "ReadTimeout",
    "RemoteProtocolError",
    "Request",
    "Response",
    "ResponseBody",
    "TimeoutException",
    "TransportError",
    "UnsupportedProtocol",
    "WriteError",
    "WriteTimeout",
    "host_header",
    "split_url",
]

_DEFAULT_PORTS: Final = {b"http": 80, b"https": 443}


# --- failures, as httpcore's ----------------------------------------------------------------


class TransportError(Exception):
    """A call that did not complete; the subclasses say where."""


class TimeoutException(TransportError):
    """Waited longer than the request's timeout for that step."""


class ConnectTimeout(TimeoutException):
    pass


class ReadTimeout(TimeoutException):
    pass


class WriteTimeout(TimeoutException):
    pass


class PoolTimeout(TimeoutException):
    pass


class NetworkError(TransportError):
    """The connection failed."""


class ConnectError(NetworkError):
    pass


class ReadError(NetworkError):
    pass


class WriteError(NetworkError):
    pass


class ProtocolError(TransportError):
    """Bytes that are not HTTP/1.1, sent or received."""


class RemoteProtocolError(ProtocolError):
    """The server's answer was malformed, cut short, or went on past its end."""


class LocalProtocolError(ProtocolError):
    """A request that could not be framed (it was not sent)."""


class UnsupportedProtocol(TransportError):
    """A URL scheme the client does not speak."""


class ProxyError(TransportError):
    """The proxy refused or failed the tunnel."""


class ConnectionNotAvailable(Exception):
    """A connection busy with another request (the pool then takes another)."""


class MustAwait(Exception):
    """Raised by a body's `next_nowait` when its next step is not bytes at hand but the end of
    the body or how it ended: the caller awaits `__anext__`, which says which (nothing was
    consumed)."""


# --- messages -----------------------------------------------------------------------------


class Origin(NamedTuple):
    """Scheme, host and port: what a connection is to."""

    scheme: bytes
    host: bytes
    port: int


def split_url(url: str) -> tuple[Origin, bytes]:
    """`url`'s origin (the scheme's default port if none is given) and its request target
    (path and query)."""
    parts = urlsplit(url)
    scheme = parts.scheme.encode("ascii")
    if scheme not in _DEFAULT_PORTS:
        raise UnsupportedProtocol(f"not an http or https URL: {url!r}")
    host = (parts.hostname or "").encode("ascii")
    port = parts.port if parts.port is not None else _DEFAULT_PORTS[scheme]
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Origin(scheme, host, port), target.encode("ascii")


def host_header(url: str) -> str:
    """The Host header for `url`: its host (bracketed if IPv6), with its port unless default."""
    (scheme, host, port), _ = split_url(url)
    name = host.decode("ascii")
    if ":" in name:
        name = f"[{name}]"
    return name if port == _DEFAULT_PORTS[scheme] else f"{name}:{port}"


class Request:
    """One request: sent as given (headers in order, Host among them), its body one bytes.

    `timeouts` holds at most "connect", "read", "write" and "pool" in seconds (None: no limit).
    """

    __slots__ = ("content", "headers", "method", "origin", "target", "timeouts")

    def __init__(
        self,
        method: bytes,
        origin: Origin,
        target: bytes,
        *,
        headers: list[tuple[bytes, bytes]],
        content: bytes = b"",
        timeouts: dict[str, float | None] | None = None,
    ) -> None:
        self.method = method
        self.origin = origin
        self.target = target
        self.headers = headers
        self.content = content
        self.timeouts: dict[str, float | None] = {} if timeouts is None else timeouts


class ResponseBody(Protocol):
    """A response's body as it arrives; `aclose` ends it (the connection goes back to its
    pool only when the body was read to its end).

    Besides awaiting each step, a reader may be told when bytes are at hand (`listen`, where
    the body can: False where not) and take them without awaiting (`next_nowait`: None while
    there are none, MustAwait where the next step is the body's end)."""

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    async def __anext__(self) -> bytes: ...

    def next_nowait(self) -> bytes | None: ...

    def listen(self, listener: Callable[[], None] | None) -> bool: ...

    async def aclose(self) -> None: ...


class Response:
    """A response's status and headers, once they arrived, and its body, to come.

    `network_stream` is the connection's stream (network.py), where the pool can tell whether
    it received anything."""

    __slots__ = ("headers", "network_stream", "status", "stream")

    def __init__(
        self,
        status: int,
        *,
        headers: list[tuple[bytes, bytes]],
        stream: ResponseBody,
        network_stream: Any = None,
    ) -> None:
        self.status = status
        self.headers = headers
        self.stream = stream
        self.network_stream = network_stream

    async def aclose(self) -> None:
        await self.stream.aclose()
