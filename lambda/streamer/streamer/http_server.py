"""How the relay serves HTTP/1.1: uvicorn's httptools protocol, its writes gathered per
event-loop step, with a gate on its connections.

What one event-loop step writes leaves in one send (gathered_writes.py).

Why httptools rather than uvicorn's h11 protocol: h11 frames every body message the relay sends
(one per token) through its state machine in Python, and parses every request in Python too;
httptools parses requests in C (llhttp) and uvicorn frames a chunk with one join. Measured side
by side on one relay process, that cut a tenth of its CPU per token, paced or not, and a
quarter of its CPU per request, for one compiled wheel (~0.5 MB in the asset). Where httptools
cannot be loaded (a bundle made for another Python than the one running it, as the bundled
asset's test runs it), the h11 protocol serves, gathered and gated alike. The relay's calls to
AWS parse their answers with httptools too (http_client.py).

Where no function URL fronts the relay (a container, Lambda Managed Instances, `jumpstream
local` on a network), any client reaches uvicorn itself, and uvicorn 0.54 (pinned) bounds
neither how long a request may take to arrive nor how many connections it holds: it has only a
keep-alive timeout between requests, and `limit_concurrency`, which logs a warning per refused
request and answers plain text. So a `ConnectionGate` adds, per connection:
- a head timeout (REQUEST_HEAD_TIMEOUT_SECONDS) from connecting, or from the first byte of a
  kept-alive connection's next request, to the end of the request's head; then a body timeout
  (REQUEST_BODY_TIMEOUT_SECONDS) to the end of its body. Past either: the relay's JSON 408
  (`request_timeout`), and the connection is closed;
- a connection limit (MAX_CONNECTIONS, at most what the file descriptors allow:
  `connection_limit`): a connection past it has its request answered with the relay's JSON 503
  (`overloaded`, Retry-After) and is closed, with no log line of its own; past twice the limit
  a connection is dropped as soon as it is accepted. Either way it is counted, and the count
  reaches the log (with its metric, RefusedConnections) at once for the first and then at
  most once every `REFUSALS_REPORT_SECONDS`: a flood of connections costs a line every few
  seconds, never a line (or a traceback) per connection.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Mapping
from http import HTTPStatus
from types import MappingProxyType
from typing import Any, Final

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - a bundle made for another Python than this one
    HttpToolsProtocol = None  # type: ignore[assignment, misc]

from . import body_writer
from .errors import ApiError, error_payload, error_response, render_json
from .gathered_writes import GatheringTransport

__all__ = [
    "REFUSALS_REPORT_SECONDS",
    "RESERVED_FILE_DESCRIPTORS",
    "SERVER_OPTIONS",
    "UVICORN_MALFORMED_REQUEST_LINE",
    "ConnectionGate",
    "GatheringProtocol",
    "MalformedRequestLines",
    "connection_limit",
    "gated_server_options",
    "raise_file_limit",
]

#: File descriptors kept for what the process opens besides connections (its log pipes, the
#: event loop's, a tokenizer file, a DynamoDB connection).
RESERVED_FILE_DESCRIPTORS: Final = 64
#: The shortest time between two log lines counting refused connections (or, apart, requests
#: that were not HTTP).
REFUSALS_REPORT_SECONDS: Final = 10.0
#: What uvicorn's protocols log for each request they cannot parse, one line each (filtered out:
#: `MalformedRequestLines`; the gate counts them instead).
UVICORN_MALFORMED_REQUEST_LINE: Final = "Invalid HTTP request received."


def raise_file_limit() -> int:
    """Raise the soft limit on open files to the hard one where the OS allows; the soft limit
    in force. (Lambda's is 1,024 for both; a container's soft limit is often below its hard.)"""
    try:
        import resource
    except ImportError:  # pragma: no cover - not a Unix
        return 1024
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return 1_000_000 if soft == resource.RLIM_INFINITY else soft


def connection_limit(file_limit: int, wanted: int | None) -> int:
    """The most client connections to serve at once with `file_limit` open files: `wanted`,
    or fewer if the files would not suffice.

    A connection served takes two descriptors (the client's, and the connection to SageMaker
    its stream holds; idle ones to SageMaker are never more than the streams that ran at
    once), one being refused takes one (up to as many again as the limit), and one accepted
    in a burst before it is seen takes one (the listen backlog is the limit): four per
    connection, besides the reserved ones. Below that asyncio never meets EMFILE on accept,
    which it logs with a traceback per attempt.
    """
    most = max(1, (file_limit - RESERVED_FILE_DESCRIPTORS) // 4)
    return most if wanted is None else min(wanted, most)


class _Tally:
    """A count reported at once, then at most every REFUSALS_REPORT_SECONDS with what came
    meanwhile: a flood costs a line per interval, not a line each."""

    def __init__(self, report: Callable[[int], None] | None) -> None:
        #: Counted since the server started.
        self.total = 0
        self._unreported = 0
        self._report_to = report
        self._timer: asyncio.TimerHandle | None = None

    def add(self) -> None:
        self.total += 1
        self._unreported += 1
        if self._timer is None:
            self._report()

    def _report(self) -> None:
        count, self._unreported = self._unreported, 0
        if count == 0:
            self._timer = None
            return
        if self._report_to is not None:
            self._report_to(count)
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(REFUSALS_REPORT_SECONDS, self._report)


class ConnectionGate:
    """The server's limits, which every connection consults, and what it counted: connections
    refused, and requests that were not HTTP."""

    def __init__(
        self,
        *,
        limit: int,
        head_timeout: float,
        body_timeout: float,
        on_refused: Callable[[int], None] | None = None,
        on_malformed: Callable[[int], None] | None = None,
    ) -> None:
        """`on_refused(count)` reports connections refused since its last call, and
        `on_malformed(count)` requests that could not be parsed (each at once for the first,
        then at most every REFUSALS_REPORT_SECONDS)."""
        self.limit = limit
        #: Past this many open connections a new one is dropped at once, without an answer.
        self.drop_limit = 2 * limit
        self.head_timeout = head_timeout
        self.body_timeout = body_timeout
        self._refusals = _Tally(on_refused)
        self._malformed = _Tally(on_malformed)
        overloaded = error_response(
            ApiError(
                kind="overloaded",
                message="The relay is serving as many connections as it may; try again shortly.",
            )
        )
        overloaded.headers["connection"] = "close"
        #: The ASGI app that answers a request on a connection past the limit.
        self.overloaded_app: Any = overloaded
        #: The whole HTTP response to a request that did not arrive in time.
        self.timeout_response = _raw_response(
            ApiError(
                kind="request_timeout",
                message="The request did not arrive in time; send it again, whole.",
            )
        )

    @property
    def refused(self) -> int:
        """Connections refused since the server started."""
        return self._refusals.total

    @property
    def malformed(self) -> int:
        """Requests that were not HTTP, since the server started."""
        return self._malformed.total

    def refuse(self) -> None:
        """Count one refused connection."""
        self._refusals.add()

    def count_malformed(self) -> None:
        """Count one request that could not be parsed."""
        self._malformed.add()


class MalformedRequestLines(logging.Filter):
    """Drops uvicorn's line per request it cannot parse: the gate counts them, and a client
    sending garbage in a loop would otherwise write a line per request (installed on uvicorn's
    error logger by ``__main__``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg != UVICORN_MALFORMED_REQUEST_LINE


def _raw_response(error: ApiError) -> bytes:
    """`error` as a whole HTTP/1.1 response that closes the connection, written as is: uvicorn
    answers only a request whose head arrived."""
    body = render_json(error_payload(error.message, error.kind))
    head = [
        f"HTTP/1.1 {error.status} {HTTPStatus(error.status).phrase}",
        "content-type: application/json",
        f"content-length: {len(body)}",
        "connection: close",
        *(f"{name.lower()}: {value}" for name, value in error.headers().items()),
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


#: The answer to a request that is not HTTP/1.1 as the server reads it.
_MALFORMED_RESPONSE: Final = _raw_response(
    ApiError(kind="invalid_body", message="The request is not valid HTTP/1.1.")
)


#: Where a request on a connection stands, as the gate times it: its head begun and not ended,
#: or its body begun and not ended (between requests: neither).
_HEAD: Final = "head"
_BODY: Final = "body"


class _GatedProtocol(asyncio.Protocol):
    """What a gate adds to a uvicorn protocol (the class after this one in the MRO): writes
    through a `GatheringTransport`, the connection limit, and the head and body timeouts.

    The protocol says where its request stands (`_request_phase`) and whether it has begun
    answering it (`_answered`); the deadline follows the phase once per `data_received`.
    """

    transport: asyncio.Transport
    connections: set[Any]
    app: Any
    loop: asyncio.AbstractEventLoop

    def __init__(self, *args: Any, gate: ConnectionGate | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._gate = gate
        self._deadline: asyncio.TimerHandle | None = None
        #: The phase the running deadline waits for the client to leave.
        self._awaiting: str | None = None

    def _request_phase(self) -> str | None:
        raise NotImplementedError

    def _answered(self) -> bool:
        """The request whose body is awaited has been answered in part or whole."""
        raise NotImplementedError

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        super().connection_made(GatheringTransport(transport))
        gate = self._gate
        if gate is None:
            return
        open_connections = len(self.connections)  # this one included
        if open_connections > gate.drop_limit:
            gate.refuse()
            self.transport.abort()
            return
        if open_connections > gate.limit:
            gate.refuse()
            self.app = gate.overloaded_app
        # From connecting, a first request's head is awaited (a kept-alive connection's next
        # one only from its first byte: until then uvicorn's keep-alive timeout applies).
        self._await(_HEAD, gate.head_timeout)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)  # type: ignore[safe-super]
        gate = self._gate
        if gate is None:
            return
        phase = None if self.transport.is_closing() else self._request_phase()
        if phase is None:
            if self._deadline is not None:
                self._stop_waiting()
        elif phase is not self._awaiting:
            self._await(phase, gate.head_timeout if phase is _HEAD else gate.body_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._stop_waiting()
        super().connection_lost(exc)

    def _await(self, phase: str, seconds: float) -> None:
        """The client must have ended `phase` (sent the head, or the body) within `seconds`."""
        if self._deadline is not None:
            self._deadline.cancel()
        self._awaiting = phase
        self._deadline = self.loop.call_later(seconds, self._too_late)

    def _stop_waiting(self) -> None:
        assert self._deadline is not None
        self._deadline.cancel()
        self._deadline = None
        self._awaiting = None

    def send_400_response(self, msg: str) -> None:
        """A request that does not parse: the relay's JSON error, not uvicorn's plain text, and
        counted by the gate (uvicorn's line for it is filtered: `MalformedRequestLines`)."""
        if self._gate is not None:
            self._gate.count_malformed()
        if not self.transport.is_closing():
            self.transport.write(_MALFORMED_RESPONSE)
            self.transport.close()

    def _too_late(self) -> None:
        phase, self._awaiting = self._awaiting, None
        self._deadline = None
        gate = self._gate
        if gate is None or self.transport.is_closing():
            return
        if phase is _HEAD or not self._answered():  # nothing of this request answered yet
            self.transport.write(gate.timeout_response)
        self.transport.close()


@functools.cache
def _gathering_h11_protocol() -> type[_GatedProtocol]:
    """`GatheringH11Protocol`, made on first use: h11 and uvicorn's protocol on it are imported
    only where httptools cannot be loaded (or by a test of both), not at every start."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class GatheringH11Protocol(_GatedProtocol, H11Protocol):
        """uvicorn's h11 protocol, gathered and gated: where httptools cannot be loaded (a
        bundle made for another Python than the one running it)."""

        def _request_phase(self) -> str | None:
            state = self.conn.their_state
            if state is h11.IDLE:  # a head has begun (data came, and it is not whole yet)
                return _HEAD
            if state is h11.SEND_BODY:
                return _BODY
            return None

        def _answered(self) -> bool:
            return self.conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE)

    return GatheringH11Protocol


def __getattr__(name: str) -> Any:
    """`GatheringH11Protocol` is a name of this module, made when first asked for."""
    if name == "GatheringH11Protocol":
        return _gathering_h11_protocol()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if HttpToolsProtocol is not None:

    class GatheringHttpToolsProtocol(_GatedProtocol, HttpToolsProtocol):
        """uvicorn's httptools protocol, gathered and gated. httptools reports a request's
        progress by callbacks as it parses; they only note the phase, so a request that
        arrives whole in one read costs no timer. Each request's scope offers a body writer
        (body_writer.py), told here when the client leaves."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self._phase: str | None = None
            super().__init__(*args, **kwargs)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._phase = _HEAD

        def on_headers_complete(self) -> None:
            super().on_headers_complete()
            self._phase = _BODY
            cycle = self.cycle
            if cycle is not None and cycle.scope is self.scope:  # a request to serve
                extensions = self.scope.setdefault("extensions", {})  # type: ignore[typeddict-item]
                extensions[body_writer.EXTENSION] = body_writer.ChunkedBodyWriter(
                    cycle, self.transport
                )

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._phase = None

        def connection_lost(self, exc: Exception | None) -> None:
            super().connection_lost(exc)
            cycle = self.cycle
            # uvicorn marks the cycle disconnected only if its response was not complete.
            if cycle is not None and cycle.disconnected:
                writer = body_writer.body_writer(cycle.scope)
                if writer is not None:
                    writer.connection_lost()

        def _request_phase(self) -> str | None:
            return self._phase

        def _answered(self) -> bool:
            cycle = self.cycle
            return cycle is not None and cycle.response_started

    GatheringProtocol: type[_GatedProtocol] = GatheringHttpToolsProtocol
else:  # pragma: no cover - depends on the interpreter
    GatheringProtocol = _gathering_h11_protocol()


#: How uvicorn serves the relay (``__main__``, and the tests that run it over a socket): this
#: protocol on asyncio's event loop, no lifespan events (the app has no startup work), and no
#: access log (the relay writes its own line per request, with more in it).
SERVER_OPTIONS: Final[Mapping[str, Any]] = MappingProxyType(
    {
        "http": GatheringProtocol,
        "loop": "asyncio",
        "lifespan": "off",
        "access_log": False,
    }
)


def gated_server_options(gate: ConnectionGate) -> dict[str, Any]:
    """SERVER_OPTIONS with `gate`'s limits (``__main__``): the protocol consults it, and the
    listen backlog is the connection limit (uvicorn's default, 2,048, would let a burst take
    that many file descriptors before one connection was seen)."""
    return {
        **SERVER_OPTIONS,
        "http": functools.partial(GatheringProtocol, gate=gate),
        "backlog": min(gate.limit, 2048),
    }
