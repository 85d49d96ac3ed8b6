"""The HTTP contract: statuses before the first text, request ids, limits, routes, logs, leaving."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import anyio
import httpx
import pytest
from botocore.exceptions import ClientError, EventStreamError
from relay_support import (
    HANG_GUARD_SECONDS,
    RETRY_AFTER_BUSY_SECONDS,
    RETRY_AFTER_NO_CAPACITY_SECONDS,
    CapturedLog,
    GatedUpstream,
    ScriptedUpstream,
    answer_events,
    asgi_post,
    call,
    error_event,
    final_event,
    make_app,
    settings,
    token_event,
    wait_for,
)
from streamer.errors import UpstreamError
from streamer.sagemaker_errors import translate_error

from tests.serving import serving

PROMPT = {"inputs": "Hello"}


def client_error(code: str, message: str, **extra: Any) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message}, **extra}, "InvokeEndpointWithResponseStream"
    )


def stream_error(code: str, message: str) -> EventStreamError:
    return EventStreamError(
        {"Error": {"Code": code, "Message": message}}, "InvokeEndpointWithResponseStream"
    )


def error_body(response: httpx.Response) -> dict[str, str]:
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error", "type"}
    return body


# --- Failures before any text are real HTTP errors ----------------------------------------------

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
    upstream = ScriptedUpstream(open_error=translate_error(error))
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
    ([stream_error("ModelStreamError", "Model invocation time exceeded")], 504, "upstream_timeout"),
    ([stream_error("ModelStreamError", "Stream broken")], 502, "upstream_error"),
    ([stream_error("InternalStreamFailure", "failure")], 502, "upstream_error"),
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
    script = [translate_error(step) if isinstance(step, Exception) else step for step in script]
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


# --- What SageMaker is asked --------------------------------------------------------------------


def test_the_upstream_gets_tgis_streaming_body() -> None:
    upstream = ScriptedUpstream(answer_events(["ok"]))
    body = {"inputs": "質問", "parameters": {"temperature": 0.2, "stop": ["\n"]}}
    assert call(make_app(upstream), json_body=body).status_code == 200
    assert upstream.bodies == [
        {
            "inputs": "質問",
            "parameters": {
                "details": True,
                "temperature": 0.2,
                "stop": ["\n"],
                "max_new_tokens": 100,
                "return_full_text": False,
            },
            "stream": True,
        }
    ]


def test_the_largest_prompt_gets_its_whole_answer() -> None:
    """A valid prompt as large as the body limit, answered by a TGI that repeats the prompt in
    its final event (return_full_text set by the caller): the last token and `done` arrive."""
    body_limit = settings().max_body_bytes
    shell = json.dumps({"inputs": "", "parameters": {"return_full_text": True}})
    prompt = "p" * (body_limit - len(shell))
    script = [
        token_event("ok"),
        final_event("!", generated_text=prompt + "ok!", special=False, generated_tokens=2),
    ]
    upstream = ScriptedUpstream(script)
    app = make_app(upstream)
    body = {"inputs": prompt, "parameters": {"return_full_text": True}}
    assert len(json.dumps(body)) == body_limit
    response = call(app, json_body=body, headers={"accept": "application/x-ndjson"})
    assert [json.loads(line) for line in response.text.splitlines()] == [
        {"event": "token", "text": "ok"},
        {"event": "token", "text": "!"},
        {"event": "done", "finish_reason": "eos_token", "generated_tokens": 2},
    ]
    assert upstream.bodies[0]["parameters"]["return_full_text"] is True


def test_invalid_requests_never_reach_the_upstream() -> None:
    upstream = ScriptedUpstream(answer_events(["ok"]))
    app = make_app(upstream)
    assert call(app, json_body={"inputs": ""}).status_code == 422
    assert call(app, content=b"{").status_code == 400
    assert call(app, json_body=PROMPT, headers={"accept": "image/png"}).status_code == 406
    assert upstream.bodies == []


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


# --- Accept, size limits, routes ---------------------------------------------------------------


def test_unsupported_accept_is_406_json() -> None:
    response = call(
        make_app(ScriptedUpstream()), json_body=PROMPT, headers={"accept": "application/json"}
    )
    assert response.status_code == 406
    body = error_body(response)
    assert body["type"] == "not_acceptable"
    assert "text/event-stream" in body["error"]


def test_a_declared_length_over_the_limit_is_413_before_reading() -> None:
    response = call(make_app(ScriptedUpstream(), max_body_bytes=100), content=b"x" * 101)
    assert response.status_code == 413
    body = error_body(response)
    assert body["type"] == "body_too_large"
    assert "100 bytes" in body["error"]


def test_a_body_at_the_limit_is_read() -> None:
    body = json.dumps({"inputs": "x" * 50}).encode()
    app = make_app(ScriptedUpstream(answer_events(["ok"])), max_body_bytes=len(body))
    assert call(app, content=body).status_code == 200


def test_a_chunked_body_over_the_limit_is_413() -> None:
    def chunks() -> Any:
        yield b'{"inputs": "'
        yield b"x" * 200
        yield b'"}'

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=make_app(ScriptedUpstream(), max_body_bytes=100))
        async with httpx.AsyncClient(transport=transport, base_url="http://relay") as client:
            return await client.post("/", content=_async(chunks()))

    response = anyio.run(send)
    assert response.status_code == 413
    assert error_body(response)["type"] == "body_too_large"


async def _async(items: Any) -> Any:
    for item in items:
        yield item


def raw_request(
    app: Any,
    *,
    headers: list[tuple[bytes, bytes]],
    chunks: list[bytes],
    method: str = "POST",
    path: str = "/",
) -> tuple[int, dict[bytes, bytes], bytes]:
    """Drive the ASGI app by hand, to send what HTTP clients won't (a lying Content-Length)."""
    messages = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ]
    sent: list[dict[str, Any]] = []
    done = anyio.Event()

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            done.set()

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 8080),
    }

    async def run() -> None:
        with anyio.fail_after(HANG_GUARD_SECONDS):
            await app(scope, receive, send)

    anyio.run(run)
    start = sent[0]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], dict(start["headers"]), body


def test_a_lying_content_length_cannot_get_past_the_limit() -> None:
    app = make_app(ScriptedUpstream(answer_events(["ok"])), max_body_bytes=100)
    status, headers, body = raw_request(
        app, headers=[(b"content-length", b"10")], chunks=[b"x" * 60, b"x" * 60]
    )
    assert status == 413
    assert json.loads(body)["type"] == "body_too_large"
    assert headers[b"x-request-id"]


@pytest.mark.parametrize("value", [b"ten", b"-1", b"1e3", b"\xd9\xa3"])
def test_a_malformed_content_length_is_400(value: bytes) -> None:
    status, _, body = raw_request(
        make_app(ScriptedUpstream()), headers=[(b"content-length", value)], chunks=[b"{}"]
    )
    assert status == 400
    assert json.loads(body)["type"] == "invalid_body"


def test_health_answers_without_sagemaker() -> None:
    upstream = ScriptedUpstream(open_error=RuntimeError("must not be called"))
    response = call(make_app(upstream), "GET", "/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert call(make_app(upstream), "HEAD", "/health").status_code == 200
    assert upstream.bodies == []


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [("GET", "/", "POST"), ("PUT", "/", "POST"), ("DELETE", "/health", "GET, HEAD")],
)
def test_other_methods_are_405_with_allow(method: str, path: str, allow: str) -> None:
    response = call(make_app(ScriptedUpstream()), method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allow
    body = error_body(response)
    assert body["type"] == "method_not_allowed"
    assert method in body["error"]
    assert response.headers["x-request-id"]


@pytest.mark.parametrize("path", ["/nope", "/health/", "/v2/chat/completions", "/" + "a" * 5000])
def test_other_paths_are_404(path: str) -> None:
    response = call(make_app(ScriptedUpstream()), "POST", path, json_body=PROMPT)
    assert response.status_code == 404
    body = error_body(response)
    assert body["type"] == "not_found"
    assert len(body["error"]) < 300


# --- Request ids ----------------------------------------------------------------------------------


def test_the_lambda_request_id_comes_first() -> None:
    deadline_ms = int((time.time() + 600) * 1000)
    headers = {
        "x-amzn-lambda-context": json.dumps({"request_id": "lambda-123", "deadline": deadline_ms}),
        "x-amzn-request-context": json.dumps({"requestId": "url-456"}),
    }
    response = call(
        make_app(ScriptedUpstream(answer_events(["a"]))), json_body=PROMPT, headers=headers
    )
    assert response.headers["x-request-id"] == "lambda-123"


def test_the_function_urls_request_id_is_next() -> None:
    headers = {"x-amzn-request-context": json.dumps({"requestId": "url-456", "http": {}})}
    response = call(make_app(ScriptedUpstream()), "GET", "/health", headers=headers)
    assert response.headers["x-request-id"] == "url-456"


@pytest.mark.parametrize(
    "context",
    ["not json", "[]", json.dumps({"request_id": 5}), json.dumps({"request_id": "a\r\nb"}), ""],
)
def test_unusable_contexts_get_a_fresh_uuid(context: str) -> None:
    response = call(
        make_app(ScriptedUpstream()),
        "GET",
        "/health",
        headers={"x-amzn-lambda-context": context},
    )
    assert uuid.UUID(response.headers["x-request-id"]).version == 4


def test_every_kind_of_response_carries_a_request_id() -> None:
    app = make_app(ScriptedUpstream(answer_events(["a"])))
    responses = [
        call(app, json_body=PROMPT),
        call(app, json_body=PROMPT, headers={"accept": "text/event-stream"}),
        call(app, json_body={"inputs": ""}),
        call(app, "GET", "/health"),
        call(app, "GET", "/missing"),
        call(app, "GET", "/"),
        call(app, json_body=PROMPT, headers={"accept": "application/json"}),
        call(make_app(ScriptedUpstream(), max_body_bytes=10), json_body=PROMPT),
        call(make_app(ScriptedUpstream(open_error=RuntimeError("bug"))), json_body=PROMPT),
        call(
            make_app(ScriptedUpstream(open_error=UpstreamError(kind="throttled", message="m."))),
            json_body=PROMPT,
        ),
    ]
    assert {response.status_code for response in responses} == {
        200,
        422,
        404,
        405,
        406,
        413,
        500,
        503,
    }
    ids = [response.headers["x-request-id"] for response in responses]
    assert all(ids)
    assert len(set(ids)) == len(ids)


# --- Unexpected failures ------------------------------------------------------------------------


def test_an_unexpected_exception_is_a_json_500_and_logged() -> None:
    log = CapturedLog()
    upstream = ScriptedUpstream(open_error=RuntimeError("secret internal detail"))
    response = call(make_app(upstream, log), json_body=PROMPT)
    assert response.status_code == 500
    assert error_body(response)["type"] == "internal_error"
    assert "secret" not in response.text
    assert "Traceback" not in response.text
    errors = [line for line in log.lines() if line["level"] == "ERROR"]
    assert errors
    assert "secret internal detail" in errors[0]["exception"]
    (request_line,) = log.request_lines()
    assert (request_line["status"], request_line["error_type"]) == (500, "internal_error")


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


# --- The log line ---------------------------------------------------------------------------------


def test_one_log_line_per_request_with_what_happened() -> None:
    log = CapturedLog()
    app = make_app(ScriptedUpstream(answer_events(["a", "b"])), log)
    headers = {
        "accept": "text/event-stream",
        "x-amzn-lambda-context": json.dumps({"request_id": "req-1"}),
    }
    call(app, json_body={"inputs": "secret prompt"}, headers=headers)
    (line,) = log.request_lines()
    assert line["service"].startswith("relay-test-")
    assert line["request_id"] == "req-1"
    assert (line["method"], line["path"], line["status"]) == ("POST", "/", 200)
    assert line["format"] == "text/event-stream"
    assert line["tokens"] == 2
    assert line["generated_tokens"] == 3
    assert line["finish_reason"] == "eos_token"
    assert line["time_to_first_token_ms"] >= 0
    assert line["duration_ms"] >= line["time_to_first_token_ms"]
    assert line["client_disconnected"] is False
    assert line["prompt_chars"] == len("secret prompt")
    assert "secret prompt" not in log.stream.getvalue()


def test_prompts_are_logged_only_when_asked() -> None:
    log = CapturedLog()
    app = make_app(ScriptedUpstream(answer_events(["a"])), log, log_prompts=True)
    call(app, json_body={"inputs": "log me"})
    assert log.request_lines()[0]["prompt"] == "log me"


def test_errors_are_logged_with_their_type_and_detail() -> None:
    log = CapturedLog()
    upstream = ScriptedUpstream(
        open_error=translate_error(client_error("ValidationError", "Endpoint x not found."))
    )
    call(make_app(upstream, log), json_body=PROMPT)
    (line,) = log.request_lines()
    assert (line["status"], line["error_type"]) == (502, "upstream_error")
    assert "Endpoint x not found." in line["error_detail"]


def test_each_request_logs_its_own_id() -> None:
    log = CapturedLog()
    app = make_app(ScriptedUpstream(), log)
    for request_id in ("first", "second"):
        context = json.dumps({"request_id": request_id})
        call(app, "GET", "/health", headers={"x-amzn-lambda-context": context})
    assert [line["request_id"] for line in log.request_lines()] == ["first", "second"]


# --- The client leaving -------------------------------------------------------------------------


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


def test_a_client_that_disconnects_over_a_socket_closes_the_upstream() -> None:
    log = CapturedLog()
    upstream = GatedUpstream(token_event("first"), [token_event("never sent")])
    with serving(make_app(upstream, log)) as url:
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


def test_errors_before_text_over_a_socket() -> None:
    upstream = ScriptedUpstream(open_error=UpstreamError(kind="overloaded", message="Busy."))
    with serving(make_app(upstream)) as url:
        response = httpx.post(url, json=PROMPT, timeout=HANG_GUARD_SECONDS)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "2"
    assert response.json() == {"error": "Busy.", "type": "overloaded"}
