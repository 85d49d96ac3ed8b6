"""The streaming response: the status waits for the first text, failures before it are HTTP
errors, the upstream is closed (or drained) however the answer ends, and a client that leaves
stops it. Over a real socket too, where each token must leave before the next is read.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import anyio
import httpx
import pytest
from streamer.body_writer import ChunkedBodyWriter
from streamer.engines import TGI
from streamer.errors import UpstreamError
from streamer.http_server import SERVER_OPTIONS
from streamer.http_types import MustAwait
from streamer.sagemaker_errors import translate_error

from tests.serving import serving
from tests.streamer.support import (
    HANG_GUARD_SECONDS,
    PROMPT,
    RETRY_AFTER_BUSY_SECONDS,
    RETRY_AFTER_NO_CAPACITY_SECONDS,
    CapturedLog,
    GatedUpstream,
    ScriptedStream,
    ScriptedUpstream,
    answer_events,
    asgi_post,
    call,
    client_error,
    error_body,
    error_event,
    event_stream_error,
    final_event,
    make_app,
    token_event,
    wait_for,
)

# --- Failures before any text are real HTTP errors ------------------------------------------------


_BEFORE_TEXT = [
    # SageMaker refuses the call.
    (
        client_error("ThrottlingException", "Rate exceeded"),
        503,
        "throttled",
        RETRY_AFTER_BUSY_SECONDS,
    ),
    (client_error("ServiceUnavailable", "busy"), 503, "unavailable", RETRY_AFTER_BUSY_SECONDS),
    (
        client_error(
            "ValidationError",
            "Inference Component has no capacity to process this request. "
            "ApplicationAutoScaling may be in-progress (if configured) or try to increase the "
            "capacity by invoking UpdateInferenceComponentRuntimeConfig API.",
        ),
        503,
        "no_capacity",
        RETRY_AFTER_NO_CAPACITY_SECONDS,
    ),
    (
        client_error("ValidationError", "Endpoint x of account 123456789012 not found."),
        502,
        "upstream_error",
        None,
    ),
    (client_error("ModelError", "Received server error (500)"), 502, "model_error", None),
    (
        client_error(
            "ModelError",
            "Received client error (422) from primary",
            OriginalStatusCode=422,
            OriginalMessage=json.dumps(
                {"error": "Input validation error: `top_k` must be strictly positive"}
            ),
        ),
        422,
        "validation",
        None,
    ),
    (
        client_error(
            "ModelError",
            "Received client error (429) from primary",
            OriginalStatusCode=429,
            OriginalMessage=json.dumps(
                {"error": "Model is overloaded", "error_type": "overloaded"}
            ),
        ),
        503,
        "overloaded",
        RETRY_AFTER_BUSY_SECONDS,
    ),
    (client_error("InternalFailure", "oops"), 502, "upstream_error", None),
]


@pytest.mark.parametrize(("error", "status", "kind", "retry_after"), _BEFORE_TEXT)
def test_sagemaker_refusals_map_to_statuses(
    error: Exception, status: int, kind: str, retry_after: int | None
) -> None:
    upstream = ScriptedUpstream(open_error=translate_error(error, model_error=TGI.model_error))
    response = call(make_app(upstream), json_body=PROMPT)
    assert response.status_code == status
    assert error_body(response)["type"] == kind
    assert response.headers.get("retry-after") == (
        None if retry_after is None else str(retry_after)
    )
    assert "123456789012" not in response.text
    assert response.headers["x-request-id"]


_IN_STREAM_BEFORE_TEXT = [
    (
        [
            error_event(
                "Input validation error: `inputs` must have less than 2048 tokens", "validation"
            )
        ],
        422,
        "validation",
    ),
    ([error_event("Model is overloaded", "overloaded")], 503, "overloaded"),
    ([error_event("Request failed during generation", "generation")], 502, "model_error"),
    ([error_event("odd", "tool_error")], 502, "model_error"),
    (
        [event_stream_error("ModelStreamError", "Model invocation time exceeded")],
        504,
        "upstream_timeout",
    ),
    ([event_stream_error("ModelStreamError", "Stream broken")], 502, "upstream_error"),
    ([event_stream_error("InternalStreamFailure", "failure")], 502, "upstream_error"),
    ([b"data: {nope\n\n"], 502, "upstream_error"),
    ([], 502, "incomplete_stream"),
    ([token_event("<s>", special=True), token_event("")], 502, "incomplete_stream"),
    (
        [token_event("<s>", special=True), error_event("Model is overloaded", "overloaded")],
        503,
        "overloaded",
    ),
]


@pytest.mark.parametrize(("script", "status", "kind"), _IN_STREAM_BEFORE_TEXT)
@pytest.mark.parametrize("accept", ["text/plain", "text/event-stream", "application/x-ndjson"])
def test_stream_failures_before_text_are_http_errors(
    script: list[Any], status: int, kind: str, accept: str
) -> None:
    script = [
        translate_error(step, model_error=TGI.model_error) if isinstance(step, Exception) else step
        for step in script
    ]
    response = call(
        make_app(ScriptedUpstream(script)), json_body=PROMPT, headers={"accept": accept}
    )
    assert response.status_code == status
    assert error_body(response)["type"] == kind
    if status == 503:
        assert response.headers["retry-after"] == str(RETRY_AFTER_BUSY_SECONDS)


def test_a_validation_error_from_the_model_says_what_it_said() -> None:
    message = "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 2048"
    response = call(
        make_app(ScriptedUpstream([error_event(message, "validation")])), json_body=PROMPT
    )
    assert message in error_body(response)["error"]


def test_an_answer_with_no_visible_text_is_still_a_success() -> None:
    script = [final_event("</s>", generated_text="", generated_tokens=1)]
    plain = call(make_app(ScriptedUpstream(script)), json_body=PROMPT)
    assert (plain.status_code, plain.text) == (200, "")
    ndjson = call(
        make_app(ScriptedUpstream(script)),
        json_body=PROMPT,
        headers={"accept": "application/x-ndjson"},
    )
    assert [json.loads(line)["event"] for line in ndjson.text.splitlines()] == ["done"]


# --- The upstream is closed, a complete answer first read to its end ------------------------------


def test_every_upstream_stream_is_closed() -> None:
    upstream = ScriptedUpstream([*answer_events(["a"]), token_event("never shown")])
    app = make_app(upstream)
    call(app, json_body=PROMPT)
    call(app, json_body=PROMPT, headers={"accept": "text/event-stream"})
    assert len(upstream.streams) == 2
    assert all(stream.closed.is_set() for stream in upstream.streams)


def test_a_complete_answers_stream_is_read_to_its_end_before_it_is_closed() -> None:
    """So urllib3 puts the connection back in its pool for the next request."""
    upstream = ScriptedUpstream([*answer_events(["a"]), b"\n"])
    response = call(make_app(upstream), json_body=PROMPT)
    assert response.text == "a"
    (stream,) = upstream.streams
    assert stream.exhausted.is_set()
    assert stream.closed.is_set()


@pytest.mark.parametrize(
    "script",
    [
        [token_event("a"), error_event("Request failed during generation", "generation"), b"x"],
        [token_event("a"), b"data: {not json}\n\n", b"x"],
        [token_event("a"), RuntimeError("bug"), b"x"],
    ],
)
def test_a_failed_answers_stream_is_closed_without_reading_on(script: list[Any]) -> None:
    upstream = ScriptedUpstream(script)
    response = call(make_app(upstream), json_body=PROMPT)
    assert response.status_code == 200
    (stream,) = upstream.streams
    assert stream.closed.is_set()
    assert stream.reads == 2
    assert not stream.exhausted.is_set()


# --- After the first text: only the body can say it -----------------------------------------------


def test_an_unexpected_exception_mid_stream_ends_the_body_cleanly() -> None:
    log = CapturedLog()
    upstream = ScriptedUpstream([token_event("partial"), RuntimeError("bug in the middle")])
    response = call(
        make_app(upstream, log), json_body=PROMPT, headers={"accept": "application/x-ndjson"}
    )
    assert response.status_code == 200
    events = [json.loads(line) for line in response.text.splitlines()]
    assert events[0] == {"event": "token", "text": "partial"}
    assert events[-1]["event"] == "error"
    assert events[-1]["type"] == "internal_error"
    assert "bug in the middle" not in response.text
    assert log.request_lines()[0]["error_type"] == "internal_error"
    errors = [line for line in log.lines() if line["level"] == "ERROR"]
    assert "bug in the middle" in errors[0]["exception"]
    assert errors[0]["request_id"] == response.headers["x-request-id"]


# --- The client leaving ---------------------------------------------------------------------------


def test_a_client_that_leaves_mid_answer_closes_the_upstream() -> None:
    """Raw ASGI: the client disconnects after the first token while the model is mid-answer."""
    log = CapturedLog()
    upstream = GatedUpstream(token_event("first"), [token_event("second")])
    app = make_app(upstream, log)
    sent: list[dict[str, Any]] = []
    first_text = anyio.Event()
    body = [json.dumps(PROMPT).encode()]

    async def receive() -> dict[str, Any]:
        if body:
            return {"type": "http.request", "body": body.pop(), "more_body": False}
        await first_text.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and message.get("body"):
            first_text.set()

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "headers": [],
    }

    async def run() -> None:
        with anyio.fail_after(HANG_GUARD_SECONDS):
            await app(scope, receive, send)

    anyio.run(run)
    assert upstream.stream.closed.is_set()
    assert [m["body"] for m in sent if m["type"] == "http.response.body"] == [b"first"]
    (line,) = log.request_lines()
    assert line["client_disconnected"] is True
    assert line["tokens"] == 1


def test_a_send_that_fails_because_the_client_left_is_not_an_error() -> None:
    """Servers of ASGI spec 2.4+ raise OSError from send once the client is gone."""
    log = CapturedLog()
    upstream = ScriptedUpstream([token_event("one"), token_event("two"), *answer_events(["x"])])
    app = make_app(upstream, log)
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body" and sent:
            raise OSError("client gone")
        sent.append(message)

    asgi_post(app, json.dumps(PROMPT).encode(), send)
    assert [m["type"] for m in sent] == ["http.response.start"]
    assert upstream.streams[0].closed.is_set()
    (line,) = log.request_lines()
    assert line["client_disconnected"] is True
    assert "error_type" not in line
    assert not [entry for entry in log.lines() if entry["level"] == "ERROR"]


# --- Over a real socket: uvicorn as __main__ runs it ----------------------------------------------


def test_each_token_is_flushed_before_the_next_is_read() -> None:
    """The upstream only produces its second token after the client has read the first: a
    relay that buffered would never see it, and the hang guard would fail the test."""
    upstream = GatedUpstream(
        token_event("first"), [final_event(" second", generated_text="first second", special=False)]
    )
    with (
        serving(make_app(upstream)) as url,
        httpx.Client(timeout=HANG_GUARD_SECONDS) as client,
        client.stream("POST", url, json=PROMPT) as response,
    ):
        chunks = response.iter_raw()
        assert response.status_code == 200
        assert next(chunks) == b"first"
        upstream.stream.release.set()
        assert b"".join(chunks) == b" second"


@pytest.mark.parametrize(
    ("options", "watcher_task"),
    [
        # The relay's own server: its body writer says when the client leaves, no task waits.
        pytest.param(SERVER_OPTIONS, False, id="body-writer"),
        # A server without one (uvicorn's h11 protocol): a task of the response's awaits it.
        pytest.param({**SERVER_OPTIONS, "http": "h11"}, True, id="receive"),
    ],
)
def test_a_client_that_disconnects_over_a_socket_closes_the_upstream(
    options: dict[str, Any], watcher_task: bool
) -> None:
    log = CapturedLog()
    upstream = GatedUpstream(token_event("first"), [token_event("never sent")])
    with serving(make_app(upstream, log), options) as url:
        with (
            httpx.Client(timeout=HANG_GUARD_SECONDS) as client,
            client.stream(
                "POST", url, json=PROMPT, headers={"accept": "text/event-stream"}
            ) as response,
        ):
            # Keep the iterator: dropping it would close the connection before the relay reads.
            chunks = response.iter_raw()
            assert next(chunks).startswith(b"event: token")
            assert wait_for(upstream.stream.reading.is_set)
        # Leaving the block closed the connection while the relay was blocked reading.
        assert upstream.stream.closed.wait(HANG_GUARD_SECONDS)
        assert wait_for(lambda: len(log.request_lines()) == 1)
    assert log.request_lines()[0]["client_disconnected"] is True
    watching = "AnswerResponse._watch_disconnect" in upstream.stream.tasks_while_reading
    assert watching is watcher_task


def test_errors_before_text_over_a_socket() -> None:
    upstream = ScriptedUpstream(open_error=UpstreamError(kind="overloaded", message="Busy."))
    with serving(make_app(upstream)) as url:
        response = httpx.post(url, json=PROMPT, timeout=HANG_GUARD_SECONDS)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "2"
    assert response.json() == {"error": "Busy.", "type": "overloaded"}


class _PushedScript(ScriptedStream):
    """The script's reads arrive a loop turn apart and are told to a listener, as network.py's
    connections tell them: the relay then takes them in that callback (`_pushed`)."""

    def __init__(self, script: list[bytes]) -> None:
        super().__init__(script)
        self._listener: Any = None
        self._arrived = False

    def listen(self, listener: Any) -> bool:
        self._listener = listener
        if listener is not None:
            asyncio.get_running_loop().call_soon(self._arrive)
        return True

    def next_nowait(self) -> bytes | None:
        if not self._arrived:
            return None
        self._arrived = False
        try:
            data = next(self)
        except StopIteration:
            raise MustAwait from None
        asyncio.get_running_loop().call_soon(self._arrive)
        return data

    def _arrive(self) -> None:
        self._arrived = True
        if self._listener is not None:
            self._listener()


@pytest.mark.parametrize(
    ("reads", "written_in_the_callback"),
    [
        ([b"first", b"second", b"end"], [b" second"]),
        ([b"first", b"second+end"], []),
    ],
    ids=["the-end-in-a-read-of-its-own", "the-end-with-the-text"],
)
def test_text_that_comes_with_the_end_leaves_with_it(
    monkeypatch: pytest.MonkeyPatch, reads: list[bytes], written_in_the_callback: list[bytes]
) -> None:
    """After the first (which leaves with the response's head), a token alone is written from
    the upstream's callback, at once; text that arrives with the answer's end (TGI's last token
    is its final event) goes out with the end, through the response's task, so the caller's
    side gets one write for both, not two."""
    events = {
        b"first": token_event("first"),
        b"second": token_event(" second"),
        b"end": final_event("</s>", generated_text="first second"),
        b"second+end": final_event(" second", generated_text="first second", special=False),
    }
    written: list[bytes] = []
    writer_call = ChunkedBodyWriter.__call__

    def recorded(self: ChunkedBodyWriter, body: bytes) -> bool:
        written.append(bytes(body))
        return writer_call(self, body)

    monkeypatch.setattr(ChunkedBodyWriter, "__call__", recorded)
    upstream = ScriptedUpstream()
    stream = _PushedScript([events[read] for read in reads])
    upstream.open = lambda body: _opened(stream)  # type: ignore[method-assign]
    with serving(make_app(upstream)) as url:
        response = httpx.post(url, json=PROMPT, timeout=HANG_GUARD_SECONDS)
    assert response.text == "first second"
    assert written == written_in_the_callback


async def _opened(stream: ScriptedStream) -> ScriptedStream:
    return stream
