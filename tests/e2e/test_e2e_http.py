"""The relay's HTTP surface through a real socket: routes, refusals, request ids, bad input.

The hypothesis test posts arbitrary bytes and arbitrary JSON: whatever arrives, the relay must
answer (no hang), never with a 5xx (nothing a caller sends is the server's fault), and every
refusal must be the JSON error shape.
"""

from __future__ import annotations

import http.client
import json
import re
import select
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from jumpstream.local import LocalStack
from tests.e2e.support import (
    HANG_GUARD_SECONDS,
    expected_tokens,
    generate_body,
    parse_sse,
)

MAX_BODY_BYTES = 1024 * 1024  # the relay's default
#: Longer than uvicorn's default keep-alive (5 s), which the relay must not use.
IDLE_SECONDS = 6.0
_DIRECTIVE = re.compile(rb"\[\[\s*(fault|hold|split|keepalive|nospace|crlf|length)")


def assert_error(response: httpx.Response, status: int, kind: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-request-id"]
    body = response.json()
    assert set(body) == {"error", "type"}
    assert body["type"] == kind
    assert body["error"]


def test_health_answers_200_without_calling_sagemaker(
    relay: httpx.Client, emulator: httpx.Client
) -> None:
    streams = len(emulator.get("/_emulator/streams").json())
    response = relay.get("/health")
    assert response.status_code == 200
    assert response.headers["x-request-id"]
    assert len(emulator.get("/_emulator/streams").json()) == streams


@pytest.mark.parametrize("path", ["/nothing", "/health/", "/v2/chat/completions"])
def test_unknown_paths_are_404_json(relay: httpx.Client, path: str) -> None:
    assert_error(relay.post(path, json=generate_body("x")), 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [("GET", "/", "POST"), ("PUT", "/", "POST"), ("POST", "/health", "GET")],
)
def test_wrong_methods_are_405_json_with_allow(
    relay: httpx.Client, method: str, path: str, allowed: str
) -> None:
    response = relay.request(method, path)
    assert_error(response, 405, "method_not_allowed")
    assert allowed in response.headers["allow"]


def test_unacceptable_accept_is_406(relay: httpx.Client) -> None:
    response = relay.post("/", json=generate_body("x"), headers={"accept": "image/png"})
    assert_error(response, 406, "not_acceptable")


def test_every_response_has_a_distinct_request_id(relay: httpx.Client) -> None:
    responses = [
        relay.get("/health"),
        relay.post("/", json=generate_body("Hello there.", max_new_tokens=3)),
        relay.post("/", content=b"not json"),
        relay.post("/", json=generate_body("x [[fault:unavailable]]")),
        relay.get("/nothing"),
        relay.get("/"),
    ]
    ids = [response.headers["x-request-id"] for response in responses]
    assert all(ids)
    assert len(set(ids)) == len(ids)


def test_a_body_over_the_limit_is_413(relay: httpx.Client) -> None:
    body = json.dumps({"inputs": "x" * MAX_BODY_BYTES}).encode()
    assert_error(relay.post("/", content=body), 413, "body_too_large")


def test_a_chunked_body_over_the_limit_is_413(relay: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"inputs": "'
        for _ in range(MAX_BODY_BYTES // 65536 + 1):
            yield b"x" * 65536
        yield b'"}'

    # A generator body goes out chunked, with no Content-Length to refuse it early.
    assert_error(relay.post("/", content=chunks()), 413, "body_too_large")


def test_a_body_just_under_the_limit_is_read(relay: httpx.Client) -> None:
    # The model refuses a prompt this long, but only after the relay has read and sent it.
    prompt = "word " * ((MAX_BODY_BYTES - 100) // 5)
    body = json.dumps({"inputs": prompt}).encode()
    assert len(body) <= MAX_BODY_BYTES
    response = relay.post("/", content=body)
    assert_error(response, 422, "validation")
    assert "Input validation error" in response.json()["error"]


def test_the_largest_valid_prompt_gets_its_last_token_and_done(relay: httpx.Client) -> None:
    """A prompt filling the body, truncated by TGI to what the model takes: the final event
    (SageMaker's TGI repeats the prompt in it by default) must not break the end of the answer."""
    parameters = {"truncate": 500, "max_new_tokens": 20}
    shell = len(json.dumps(generate_body("", **parameters)))
    prompt = "Why stream? " * ((MAX_BODY_BYTES - shell) // 12)
    prompt += "x" * (MAX_BODY_BYTES - shell - len(prompt))
    body = json.dumps(generate_body(prompt, **parameters)).encode()
    assert len(body) == MAX_BODY_BYTES
    response = relay.post("/", content=body, headers={"accept": "text/event-stream"})
    assert response.status_code == 200, response.text
    events = parse_sse(response.content)
    texts = [data["text"] for name, data in events if name == "token"]
    assert texts == expected_tokens(prompt, parameters)
    assert events[-1] == ("done", {"finish_reason": "length", "generated_tokens": 20})


def test_an_idle_connection_outlives_uvicorns_default_keep_alive(stack: LocalStack) -> None:
    """The Web Adapter reuses its connection to the relay between invocations; a relay that
    closed it after uvicorn's default 5 s would race the adapter's next request on it."""
    address = urlsplit(stack.relay_url)
    connection = http.client.HTTPConnection(
        address.hostname or "127.0.0.1", address.port, timeout=HANG_GUARD_SECONDS
    )
    try:
        connection.request("GET", "/health")
        first = connection.getresponse()
        first.read()
        assert first.status == 200
        assert connection.sock is not None
        # Nothing arrives on an open idle connection; a server closing it makes the socket
        # readable (end of file) at once.
        readable, _, _ = select.select([connection.sock], [], [], IDLE_SECONDS)
        assert readable == [], "the relay closed an idle connection"
        used = connection.sock
        connection.request("GET", "/health")
        second = connection.getresponse()
        second.read()
        assert second.status == 200
        assert connection.sock is used
    finally:
        connection.close()


def test_not_json_is_400(relay: httpx.Client) -> None:
    assert_error(relay.post("/", content=b"\xff\xfe not json"), 400, "invalid_body")


_PARAMETER_NAMES = st.sampled_from(
    [
        "max_new_tokens",
        "temperature",
        "top_k",
        "top_p",
        "typical_p",
        "repetition_penalty",
        "frequency_penalty",
        "do_sample",
        "stop",
        "seed",
        "details",
        "return_full_text",
        "truncate",
        "best_of",
        "watermark",
        "top_n_tokens",
        "grammar",
        "adapter_id",
        "decoder_input_details",
        "unknown",
    ]
)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)
_BODIES = st.one_of(
    st.binary(max_size=300),
    _JSON.map(lambda value: json.dumps(value).encode()),
    st.fixed_dictionaries(
        {"inputs": st.one_of(st.text(max_size=60), _JSON)},
        optional={
            "parameters": st.one_of(
                st.dictionaries(_PARAMETER_NAMES, _JSON, max_size=4),
                st.dictionaries(_PARAMETER_NAMES, _SCALARS, max_size=4),
                _JSON,
            ),
            "stream": _JSON,
        },
    ).map(lambda value: json.dumps(value, ensure_ascii=False).encode()),
)
_ACCEPTS = st.sampled_from(
    [None, "*/*", "text/event-stream", "application/x-ndjson", "text/plain;q=0", "bogus"]
)


@pytest.fixture(scope="module")
def shared_client(stack: LocalStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.relay_url, timeout=HANG_GUARD_SECONDS) as client:
        yield client


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(body=_BODIES, accept=_ACCEPTS)
def test_no_input_gets_a_5xx_a_non_json_error_or_a_hang(
    shared_client: httpx.Client, body: bytes, accept: str | None
) -> None:
    # Emulator directives are test machinery, not input a caller could send to SageMaker.
    assume(_DIRECTIVE.search(body) is None)
    headers: dict[str, Any] = {"content-type": "application/json"}
    if accept is not None:
        headers["accept"] = accept
    response = shared_client.post("/", content=body, headers=headers)  # read fully, or time out
    event(f"HTTP {response.status_code}")
    assert response.status_code < 500, response.text
    assert response.headers["x-request-id"]
    if response.status_code >= 400:
        assert response.headers["content-type"] == "application/json"
        error = response.json()
        assert set(error) == {"error", "type"}
        assert isinstance(error["error"], str)
        assert isinstance(error["type"], str)
    else:
        assert response.status_code == 200
