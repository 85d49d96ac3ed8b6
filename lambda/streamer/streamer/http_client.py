"""The relay's HTTP/1.1 connections to AWS, their answers parsed by httptools (llhttp, in C).

Why not httpcore's HTTP/1.1 connection (h11, in Python): every HTTP chunk of an answer passed
through h11's event machine and httpcore's layers around it, ~90 Python calls per token of a
stream, a third of the relay's work per token, and ~400 more per request (request and header
models, state checks, anyio cancel scopes). Here a chunk is one `feed_data` into llhttp, which
calls back once with the body bytes: the server side (uvicorn's httptools protocol) already
parses requests with the same library.

What httpcore's connection does that this one does too, so that connection_pool.py and its
callers see no difference:
- it has httpcore's `AsyncConnectionInterface` (the methods the pool uses), taking a `Request`
  (http_types.py: method, target, headers as given, a body of bytes) and answering a `Response`
  whose stream yields the body as it arrives and whose `aclose` returns the connection to idle
  when the answer was read to its end with keep-alive, else closes it;
- it connects on its first request, through the network backend (network.py): TCP, then TLS
  for https with the pool's context and the origin's host name;
- its failures are httpcore's exceptions (http_types.py's, of the same names): ConnectError and
  ConnectTimeout, WriteError, ReadError and ReadTimeout (the backend's), RemoteProtocolError
  for a malformed answer or one the server ended early (none at all: "Server disconnected
  without sending a response"), or bytes past an answer's end; LocalProtocolError for a
  request h11 would refuse to frame (a CR, LF or NUL anywhere in its head, a header name that
  is not a token, a target with a space, no Host, a body without its exact Content-Length);
- `has_expired`: idle past its keep-alive, or the server ended it (something to read while
  idle); only an HTTP/1.1 answer that keeps the connection alive leaves it idle, any other is
  closed once read (h11 reuses no HTTP/1.0 connection either).
What it leaves out, because the relay never asks it: HTTP/2, `Expect: 100-continue`,
informational answers, HEAD (llhttp cannot know an answer to HEAD has no body), request bodies
that are not bytes, upgrades. A connection through a proxy is httpcore's (connection_pool.py
makes those with httpcore's own factory, and imports httpcore only then).
"""

from __future__ import annotations

import asyncio
import functools
import re
import ssl
from collections.abc import Callable
from typing import Final

import httptools

from .http_types import (
    ConnectionNotAvailable,
    LocalProtocolError,
    MustAwait,
    Origin,
    RemoteProtocolError,
    Request,
    Response,
)
from .network import HIGH_WATER_BYTES, AsyncioBackend, NetworkStream

__all__ = ["Http11Connection"]

_NEW: Final = "new"
_ACTIVE: Final = "active"
_IDLE: Final = "idle"
_CLOSED: Final = "closed"
#: RFC 9110's token: what a header name may be (h11 checks the same).
_TOKEN: Final = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_CONTENT_LENGTH: Final = b"content-length"


class Http11Connection:
    """One HTTP/1.1 connection to `origin`, opened by its first request."""

    def __init__(
        self,
        origin: Origin,
        *,
        network_backend: AsyncioBackend,
        ssl_context: ssl.SSLContext | None,
        keepalive_expiry: float | None,
    ) -> None:
        self._origin = origin
        self._backend = network_backend
        self._ssl_context = ssl_context
        self._keepalive_expiry = keepalive_expiry
        self._stream: NetworkStream | None = None
        self._state = _NEW
        self._expire_at: float | None = None

    # --- what the pool asks (httpcore's connection interface, the parts the relay uses) ---

    async def handle_async_request(self, request: Request) -> Response:
        if request.origin != self._origin:
            raise RuntimeError(f"this connection is to {self._origin}, not {request.origin}")
        if self._state not in (_NEW, _IDLE):
            raise ConnectionNotAvailable()
        timeouts = request.timeouts
        state, self._state = self._state, _ACTIVE
        self._expire_at = None
        try:
            if state is _NEW:
                self._stream = await self._connect(timeouts.get("connect"))
            stream = self._stream
            assert stream is not None
            await stream.write(_serialized(request), timeouts.get("write"))
            answer = _Answer(self, stream, timeouts.get("read"))
            await answer.read_head()
        except BaseException:
            await self.aclose()
            raise
        return Response(answer.status, headers=answer.headers, stream=answer, network_stream=stream)

    def has_expired(self) -> bool:
        if self._state is not _IDLE:
            return False
        if self._expire_at is not None and asyncio.get_running_loop().time() > self._expire_at:
            return True
        assert self._stream is not None
        return bool(self._stream.get_extra_info("is_readable"))

    def is_idle(self) -> bool:
        return self._state is _IDLE

    def is_closed(self) -> bool:
        return self._state is _CLOSED

    async def aclose(self) -> None:
        self._state = _CLOSED
        stream, self._stream = self._stream, None
        if stream is not None:
            await stream.aclose()

    # --- what _Answer tells it ---

    def _answered(self) -> None:
        """The answer was read to its end and keeps the connection alive: idle again."""
        if self._state is not _ACTIVE:
            return
        self._state = _IDLE
        if self._keepalive_expiry is not None:
            self._expire_at = asyncio.get_running_loop().time() + self._keepalive_expiry

    async def _connect(self, timeout: float | None) -> NetworkStream:
        host = self._origin.host.decode("ascii")
        stream = await self._backend.connect_tcp(host, self._origin.port, timeout=timeout)
        if self._origin.scheme == b"https":
            stream = await stream.start_tls(
                self._ssl_context or _default_tls_context(),
                server_hostname=host,
                timeout=timeout,
            )
        return stream


class _Answer:
    """One answer: llhttp's callbacks, and the answer's body as an async iterator.

    The head is read before the caller gets the answer; each step of the iteration then hands
    over the body bytes at hand (one HTTP chunk, or all that came in one read), reading the
    network only when none are.
    """

    __slots__ = (
        "_body",
        "_complete",
        "_connection",
        "_extra",
        "_head_complete",
        "_keep_alive",
        "_parser",
        "_stream",
        "_timeout",
        "headers",
        "status",
    )

    def __init__(
        self,
        connection: Http11Connection,
        stream: NetworkStream,
        timeout: float | None,
    ) -> None:
        self._connection = connection
        self._stream = stream
        self._timeout = timeout
        self._parser = httptools.HttpResponseParser(self)
        self._body: list[bytes] = []
        self._head_complete = False
        self._complete = False
        self._extra = False  # bytes past the answer's end: the connection is not reused
        self._keep_alive = False
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []

    # --- llhttp's callbacks ---

    def on_message_begin(self) -> None:
        if self._complete:
            # Bytes past the answer's end: stop llhttp before it parses them as a next answer,
            # whose body would reach on_body (`_feed` marks the connection not to be reused).
            raise RemoteProtocolError("bytes past the answer's end")

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        parser = self._parser
        self.status = parser.get_status_code()
        # Asked now: llhttp resets what it knows of the message once the message is complete.
        self._keep_alive = parser.should_keep_alive() and parser.get_http_version() == "1.1"
        self._head_complete = True

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        self._complete = True

    # --- reading ---

    async def read_head(self) -> None:
        while not self._head_complete:
            data = await self._stream.read(HIGH_WATER_BYTES, self._timeout)
            if not data:
                raise RemoteProtocolError("Server disconnected without sending a response.")
            self._feed(data)
        if 100 <= self.status < 200:
            raise RemoteProtocolError(f"informational answer {self.status}")

    def __aiter__(self) -> _Answer:
        return self

    async def __anext__(self) -> bytes:
        body = self._body
        while not body:
            if self._complete:
                await self._end()
                raise StopAsyncIteration
            data = await self._stream.read(HIGH_WATER_BYTES, self._timeout)
            if not data:
                if self._runs_until_close():
                    self._complete = self._extra = True
                    continue
                raise RemoteProtocolError(
                    "peer closed connection without sending complete message body"
                )
            self._feed(data)
        return self._taken()

    def next_nowait(self) -> bytes | None:
        """The body bytes `__anext__` would return, if they are at hand; None while they are
        not. Raises MustAwait where `__anext__` would end the body or fail on its end (nothing
        consumed), and what a malformed answer raises there."""
        body = self._body
        while not body:
            if self._complete:
                raise MustAwait
            data = self._stream.read_nowait(HIGH_WATER_BYTES)
            if data is None:
                return None
            self._feed(data)
        return self._taken()

    def _taken(self) -> bytes:
        """The body bytes parsed so far, as one."""
        body = self._body
        if len(body) == 1:
            return body.pop()
        data = b"".join(body)
        body.clear()
        return data

    def listen(self, listener: Callable[[], None] | None) -> bool:
        """Call `listener` when the connection has something for `next_nowait` (network.py's
        `listen`, with the answer's read timeout); None stops. True: this body can."""
        self._stream.listen(listener, self._timeout)
        return True

    def _feed(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as error:
            if not self._complete:
                raise RemoteProtocolError(f"malformed answer: {error}") from error
            self._extra = True  # garbage after a complete answer

    def _runs_until_close(self) -> bool:
        """Neither a length nor chunks: the body runs until the server closes the connection."""
        names = {name.lower() for name, _ in self.headers}
        return (
            _CONTENT_LENGTH not in names
            and b"transfer-encoding" not in names
            and self.status not in (204, 304)
        )

    async def _end(self) -> None:
        """Read to its end: the connection is idle again if the answer keeps it, else closed."""
        connection, self._connection = self._connection, None
        if connection is None:
            return
        if self._keep_alive and not self._extra:
            connection._answered()
        else:
            await connection.aclose()

    async def aclose(self) -> None:
        """Read to its end (the iteration ended), the connection may serve the next request;
        else it is closed, even when the rest had arrived: what was not read is not vouched for."""
        if self._connection is not None:
            connection, self._connection = self._connection, None
            await connection.aclose()


def _serialized(request: Request) -> bytes:
    """The request's head and body, as one write."""
    target = request.target
    if b" " in target:
        raise LocalProtocolError("a request target with a space")
    lines = [b"%s %s HTTP/1.1" % (request.method, target)]
    length: bytes | None = None
    host = False
    for name, value in request.headers:
        if not _TOKEN.fullmatch(name):
            raise LocalProtocolError(f"a header name that is not a token: {name!r}")
        lowered = name.lower()
        if lowered == _CONTENT_LENGTH:
            length = value
        elif lowered == b"host":
            host = True
        lines.append(b"%s: %s" % (name, value))
    if not host:  # HTTP/1.1 requires it (RFC 9112), and SigV4 signs it
        raise LocalProtocolError("a request without a Host header")
    lines.append(b"\r\n")
    head = b"\r\n".join(lines)
    # A CR, LF or NUL in a method, target or value would end a line early: one count over the
    # whole head finds any.
    if head.count(b"\n") != len(lines) or head.count(b"\r") != len(lines) or b"\0" in head:
        raise LocalProtocolError("a header would break the request's framing")
    body = request.content
    # What frames the body is its Content-Length: a body without it, or longer, would be read
    # by the server as the start of a next request.
    if body and length != b"%d" % len(body):
        raise LocalProtocolError("a body without its exact Content-Length")
    return head + body


@functools.cache
def _default_tls_context() -> ssl.SSLContext:
    """The system's trust, loaded once, for a connection made without a context (the relay
    always gives one: aws.py's, with botocore's CA bundle)."""
    return ssl.create_default_context()
