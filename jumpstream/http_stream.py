"""One HTTP request whose response body is read as it arrives, on the standard library alone.

Why ``http.client``: ``ask`` should run anywhere Python and botocore do, and ``read1`` returns
each piece of a chunked body as soon as it arrives, which is all a streaming client needs.
"""

from __future__ import annotations

import http.client
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from email.message import Message
from typing import Final
from urllib.parse import urlsplit

__all__ = ["PreparedRequest", "StreamingReply", "TransportError", "send"]

_READ_SIZE: Final = 64 * 1024
#: An error body larger than this is cut: it is shown to a person, not processed.
_MAX_ERROR_BODY: Final = 64 * 1024


class TransportError(OSError):
    """The request could not be sent or its answer not read (connection, timeout, protocol)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PreparedRequest:
    """A request exactly as it goes on the wire; signing returns a new one."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes


class StreamingReply:
    """The status and headers of a response, and its body as an iterator of pieces."""

    def __init__(self, connection: http.client.HTTPConnection, response: http.client.HTTPResponse):
        self._connection = connection
        self._response = response
        self.status: int = response.status
        self.reason: str = response.reason
        self.headers: Message = response.headers

    def chunks(self) -> Iterator[bytes]:
        """Body pieces as they arrive; TransportError if the connection breaks."""
        while True:
            try:
                piece = self._response.read1(_READ_SIZE)
            except (OSError, http.client.HTTPException) as error:
                raise TransportError(f"the answer broke off: {_describe(error)}") from error
            if not piece:
                return
            yield piece

    def read_error_body(self) -> bytes:
        """At most 64 KiB of the body: enough for any error message."""
        try:
            return self._response.read(_MAX_ERROR_BODY)
        except (OSError, http.client.HTTPException) as error:
            raise TransportError(f"the error answer broke off: {_describe(error)}") from error

    def close(self) -> None:
        self._response.close()
        self._connection.close()

    def __enter__(self) -> StreamingReply:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def send(request: PreparedRequest, *, timeout: float) -> StreamingReply:
    """Send ``request``; return once the status line and headers are in.

    ``timeout`` bounds connecting and each read (a silence), not the whole answer. Headers are
    sent as given: a ``Host`` header that was signed is the one the server sees.
    """
    parts = urlsplit(request.url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TransportError(f"not an http(s) URL: {request.url!r}")
    connection_type = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )
    connection = connection_type(parts.hostname, parts.port, timeout=timeout)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    try:
        connection.request(request.method, target, body=request.body, headers=dict(request.headers))
        response = connection.getresponse()
    except (OSError, http.client.HTTPException) as error:
        connection.close()
        raise TransportError(f"cannot reach {parts.netloc}: {_describe(error)}") from error
    return StreamingReply(connection, response)


def _describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
