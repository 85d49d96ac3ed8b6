"""What the function's tests share: TGI event bytes, a scripted upstream, building and calling the
app, SageMaker's errors as botocore raises them, and a loopback server speaking SageMaker's event
stream to the relay's own client (and to botocore's, where a test compares the two).

Fakes stand in for SageMaker in unit tests only; what they produce follows the facts the decoder
and upstream modules are built on (TGI's `data:` lines, PayloadPart framing).
"""

from __future__ import annotations

import asyncio
import io
import json
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anyio
import httpx
from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError, EventStreamError
from starlette.applications import Starlette
from streamer.app import create_app
from streamer.errors import UpstreamError
from streamer.prompt_template import PromptTemplate
from streamer.settings import Settings

# The one event-stream encoder (the emulator's), re-exported for the tests that frame a reply.
from jumpstream.emulator.eventstream import payload_part as payload_part
from jumpstream.emulator.eventstream import stream_exception as stream_exception
from jumpstream.emulator.sse import data_event, error_response, stream_response
from stacks.catalog import load_catalog

RINNA_3_6B = "huggingface-llm-rinna-3-6b-instruction-ppo-bf16"

# A generous guard against hangs; never a statement about speed.
HANG_GUARD_SECONDS = 30.0
# The Retry-After callers are promised: seconds for a busy endpoint, a minute for one starting.
RETRY_AFTER_BUSY_SECONDS = 2
RETRY_AFTER_NO_CAPACITY_SECONDS = 60


# --- TGI's stream, as SageMaker carries it ------------------------------------------------------


def token_event(text: str, *, special: bool = False, index: int | None = None) -> bytes:
    """One TGI token event (TGI >= 2.1 writes `data: ` with a space)."""
    token = {"id": 1, "text": text, "logprob": -0.1, "special": special}
    return data_event(stream_response(token, index=index))


def final_event(
    text: str,
    *,
    generated_text: str,
    special: bool = True,
    finish_reason: str | None = "eos_token",
    generated_tokens: int | None = 3,
    input_length: int | None = 4,
) -> bytes:
    """TGI's last event: a token (often the EOS) with generated_text and, if asked, details
    (`input_length` None: a TGI before 2.3, which does not report it)."""
    details: dict[str, Any] | None = (
        None
        if finish_reason is None and generated_tokens is None
        else {"finish_reason": finish_reason, "generated_tokens": generated_tokens, "seed": None}
    )
    if details is not None and input_length is not None:
        details["input_length"] = input_length
    token = {"id": 2, "text": text, "logprob": -0.1, "special": special}
    return data_event(stream_response(token, generated_text=generated_text, details=details))


def error_event(message: str, error_type: str | None) -> bytes:
    return data_event(error_response(message, error_type))


def answer_events(
    texts: Iterable[str], *, eos: str = "</s>", input_length: int | None = 4
) -> list[bytes]:
    """A complete, successful TGI stream: one event per text, then the EOS with details."""
    texts = list(texts)
    events = [token_event(text, index=i + 1) for i, text in enumerate(texts)]
    events.append(
        final_event(
            eos,
            generated_text="".join(texts),
            generated_tokens=len(texts) + 1,
            input_length=input_length,
        )
    )
    return events


# --- A scripted upstream -----------------------------------------------------------------------

Step = bytes | BaseException


class ScriptedStream:
    """Yields the script's bytes and raises its exceptions, in order; remembers being closed and
    whether it was read to its end (the end that lets the HTTP client reuse a connection).

    `__next__` is the script itself, for tests that read on after the relay; the relay reads
    through `__anext__`, as it reads the real upstream.
    """

    def __init__(self, script: Iterable[Step]) -> None:
        self._script: Iterator[Step] = iter(list(script))
        self.closed = threading.Event()
        self.exhausted = threading.Event()
        self.reads = 0

    def __next__(self) -> bytes:
        self.reads += 1
        try:
            step = next(self._script)
        except StopIteration:
            self.exhausted.set()
            raise
        if isinstance(step, BaseException):
            raise step
        return step

    def __aiter__(self) -> ScriptedStream:
        return self

    async def __anext__(self) -> bytes:
        try:
            return self.__next__()
        except StopIteration:
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        self.closed.set()


class ScriptedUpstream:
    """An Upstream whose every call streams the same script, or fails with `open_error`."""

    def __init__(self, script: Iterable[Step] = (), *, open_error: Exception | None = None):
        self._script = list(script)
        self._open_error = open_error
        self.bodies: list[dict[str, Any]] = []
        self.streams: list[ScriptedStream] = []
        #: How many times the app said Lambda restored it from a snapshot.
        self.restores = 0

    async def after_restore(self) -> None:
        self.restores += 1

    async def open(self, body: bytes) -> ScriptedStream:
        self.bodies.append(json.loads(body))
        if self._open_error is not None:
            raise self._open_error
        stream = ScriptedStream(self._script)
        self.streams.append(stream)
        return stream


async def _wait_in_thread(gate: threading.Event) -> bool:
    """Wait for a gate set by the test's thread, without holding up the relay's event loop;
    a cancelled wait (the relay gave up) leaves the thread to end when the gate opens."""
    return await anyio.to_thread.run_sync(gate.wait, HANG_GUARD_SECONDS, abandon_on_cancel=True)


class GatedStream:
    """Sends its first part, then waits until released, like a model between two tokens.

    `reading` is a test's cue that the relay is waiting on it; `aclose` must end that wait.
    """

    def __init__(self, first: bytes, rest: Iterable[bytes]) -> None:
        self._first: bytes | None = first
        self._rest = iter(list(rest))
        self.release = threading.Event()
        self.closed = threading.Event()
        self.reading = threading.Event()
        #: What the event loop's tasks were running when the relay began to wait here.
        self.tasks_while_reading: set[str] = set()

    def __aiter__(self) -> GatedStream:
        return self

    async def __anext__(self) -> bytes:
        if self._first is not None:
            first, self._first = self._first, None
            return first
        self.tasks_while_reading = {task.get_coro().__qualname__ for task in asyncio.all_tasks()}
        self.reading.set()
        if not await _wait_in_thread(self.release):
            raise UpstreamError(kind="upstream_timeout", message="test gate")
        if self.closed.is_set():
            raise StopAsyncIteration
        try:
            return next(self._rest)
        except StopIteration:
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        self.closed.set()
        self.release.set()


class GatedUpstream:
    def __init__(self, first: bytes, rest: Iterable[bytes]) -> None:
        self.stream = GatedStream(first, rest)

    async def after_restore(self) -> None:
        raise AssertionError("not restored in these tests")

    async def open(self, body: bytes) -> GatedStream:
        return self.stream


class SlowToAnswerUpstream:
    """An endpoint that takes until `release` to answer the opening call, like a model whose
    queue is full; then it streams the script. `opening` is set once the call has begun, and
    `abandoned` once the relay stopped waiting for it (a real call then closes its connection).
    """

    def __init__(self, script: Iterable[Step]) -> None:
        self._script = list(script)
        self.opening = threading.Event()
        self.release = threading.Event()
        self.abandoned = threading.Event()
        self.streams: list[ScriptedStream] = []

    async def open(self, body: bytes) -> ScriptedStream:
        self.opening.set()
        try:
            await _wait_in_thread(self.release)
        except anyio.get_cancelled_exc_class():
            self.abandoned.set()
            raise
        stream = ScriptedStream(self._script)
        self.streams.append(stream)
        return stream


# --- SageMaker's errors, as botocore raises them ------------------------------------------------


def client_error(code: str, message: str, **extra: Any) -> ClientError:
    """A refused call (an error reply before the stream)."""
    return ClientError(
        {"Error": {"Code": code, "Message": message}, **extra}, "InvokeEndpointWithResponseStream"
    )


def event_stream_error(code: str, message: str) -> EventStreamError:
    """An exception message inside the event stream."""
    return EventStreamError(
        {"Error": {"Code": code, "Message": message}}, "InvokeEndpointWithResponseStream"
    )


# --- Building the app ---------------------------------------------------------------------------

PROMPT = {"inputs": "Hello"}


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {"endpoint_name": "test-endpoint", "region": "us-east-1"}
    values.update(overrides)
    return Settings(**values)


def catalog_template(model_id: str) -> PromptTemplate:
    """The model's prompt template exactly as the stack hands it to the function."""
    return PromptTemplate.from_json(load_catalog().get(model_id).prompt_template)


def lambda_context(*, seconds_left: float, request_id: str = "req-1") -> dict[str, str]:
    """The header the Web Adapter forwards, with a deadline `seconds_left` from now (epoch ms)."""
    deadline_ms = int((time.time() + seconds_left) * 1000)
    return {
        "x-amzn-lambda-context": json.dumps({"request_id": request_id, "deadline": deadline_ms})
    }


@dataclass
class CapturedLog:
    """A Powertools logger writing to memory, and its JSON lines."""

    stream: io.StringIO = field(default_factory=io.StringIO)
    logger: Logger = field(init=False)

    def __post_init__(self) -> None:
        # A unique service name gives a fresh logging.Logger: Powertools configures each once.
        self.logger = Logger(service=f"relay-test-{uuid.uuid4().hex}", stream=self.stream)

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines() if line]

    def request_lines(self) -> list[dict[str, Any]]:
        return [line for line in self.lines() if line.get("message") == "request finished"]


def make_app(upstream: Any, log: CapturedLog | None = None, **setting_overrides: Any) -> Starlette:
    log = log or CapturedLog()
    return create_app(settings(**setting_overrides), upstream=upstream, logger=log.logger)


def error_body(response: httpx.Response) -> dict[str, str]:
    """The relay's JSON error body, checked to be exactly its two fields."""
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error", "type"}
    return body


def call(
    app: Any,
    method: str = "POST",
    path: str = "/",
    *,
    content: bytes | str | None = None,
    json_body: Any = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """One whole request through httpx's ASGI transport (whole bodies only: no chunk timing)."""
    if json_body is not None:
        content = json.dumps(json_body, ensure_ascii=False).encode()

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://relay") as client:
            return await client.request(method, path, content=content, headers=headers)

    return anyio.run(send)


def calls(app: Any, count: int, *, json_body: Any) -> list[httpx.Response]:
    """`count` requests one after the other on one event loop, as one relay process serves
    them (connections to SageMaker belong to the loop that opened them)."""
    content = json.dumps(json_body, ensure_ascii=False).encode()

    async def send() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://relay") as client:
            return [await client.post("/", content=content) for _ in range(count)]

    return anyio.run(send)


def asgi_post(
    app: Any,
    body: bytes,
    send: Callable[[dict[str, Any]], Any],
    *,
    headers: Sequence[tuple[bytes, bytes]] = (),
) -> None:
    """POST ``body`` to the app over raw ASGI, with the test's own ``send`` and exactly these
    header bytes (an HTTP client would refuse to send some); the client never leaves on its own
    (``receive`` waits forever after the body)."""
    pending = [body]

    async def receive() -> dict[str, Any]:
        if pending:
            return {"type": "http.request", "body": pending.pop(), "more_body": False}
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "headers": list(headers),
        "query_string": b"",
    }

    async def run() -> None:
        with anyio.fail_after(HANG_GUARD_SECONDS):
            await app(scope, receive, send)

    anyio.run(run)


# --- SageMaker's event stream on loopback, for the relay's client ---------------------------------


@dataclass(frozen=True)
class Pause:
    """Stop sending until the event is set (or the hang guard passes)."""

    gate: threading.Event


@dataclass(frozen=True)
class ErrorReply:
    """Answer with an HTTP error the way SageMaker does (JSON body, x-amzn-errortype)."""

    status: int
    error_type: str
    body: dict[str, Any]


@dataclass(frozen=True)
class Stall:
    """Send nothing at all, not even headers, until the event is set."""

    gate: threading.Event


Reply = ErrorReply | Stall | list[bytes | Pause]


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    # Tests open dozens of connections at once; socketserver's backlog of 5 would reset some.
    request_queue_size = 256

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up mid-reply are what several tests are about: no tracebacks."""


class EventStreamServer:
    """A loopback stand-in for the sagemaker-runtime endpoint, one scripted reply per test.

    Replies use chunked transfer encoding, as SageMaker does, so each part arrives as it is
    sent. With `tls`, it serves https with that context.
    """

    def __init__(self, *, tls: ssl.SSLContext | None = None) -> None:
        self.reply: Reply = []
        # Each request's target, headers (looked up without case, as HTTP's are) and body.
        self.requests: list[tuple[str, httpx.Headers, bytes]] = []
        # The client's (host, port) of each request: the same port means a reused connection.
        self.peers: list[tuple[str, int]] = []
        self.finished = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                outer.requests.append((self.path, httpx.Headers(self.headers.items()), body))
                outer.peers.append(self.client_address)
                try:
                    outer._answer(self)
                except OSError:
                    pass  # the client went away: that is what some tests do
                finally:
                    outer.finished.set()

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self._scheme = "http"
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
            self._scheme = "https"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"{self._scheme}://127.0.0.1:{self._server.server_port}"

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        reply = self.reply
        if isinstance(reply, Stall):
            reply.gate.wait(HANG_GUARD_SECONDS)
            return
        if isinstance(reply, ErrorReply):
            body = json.dumps(reply.body).encode()
            handler.send_response(reply.status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("x-amzn-errortype", reply.error_type)
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
            return
        handler.send_response(200)
        handler.send_header("Content-Type", "application/vnd.amazon.eventstream")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        for item in reply:
            if isinstance(item, Pause):
                item.gate.wait(HANG_GUARD_SECONDS)
                continue
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(item), item))
            handler.wfile.flush()
        handler.wfile.write(b"0\r\n\r\n")
        handler.wfile.flush()

    def __enter__(self) -> EventStreamServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def wait_for(condition: Callable[[], bool]) -> bool:
    """Poll a condition until it holds or the hang guard passes; returns whether it held."""
    gate = threading.Event()
    for _ in range(int(HANG_GUARD_SECONDS * 100)):
        if condition():
            return True
        gate.wait(0.01)
    return condition()
