"""Every way the upstream can fail, through the real relay: before any text and in mid-stream.

Before the first text the relay still owns the status line, so a failure is a real HTTP error
with a JSON body `{"error", "type"}` (and Retry-After when trying again is worth it). After it,
the failure can only be written in the body, in the shape each format's reader recognises.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest

from jumpstream.local import LocalStack
from tests.e2e.support import (
    FORMATS,
    HANG_GUARD_SECONDS,
    PROMPT,
    expected_tokens,
    generate_body,
    parse_ndjson,
    parse_sse,
    stream_ids,
    wait_for_new_stream,
)

#: (directive, status, type). Faults inside the stream at token 0 come before any text too.
BEFORE_TEXT = [
    ("[[fault:throttling]]", 503, "throttled"),
    ("[[fault:unavailable]]", 503, "unavailable"),
    ("[[fault:no_capacity]]", 503, "no_capacity"),
    ("[[fault:overloaded]]", 503, "overloaded"),
    ("[[fault:validation]]", 422, "validation"),
    ("[[fault:model_error]]", 502, "model_error"),
    ("[[fault:generation]]", 502, "model_error"),
    ("[[fault:internal_failure]]", 502, "upstream_error"),
    ("[[fault:stream_broken]]", 502, "upstream_error"),
    ("[[fault:internal_stream]]", 502, "upstream_error"),
    ("[[fault:truncate]]", 502, "incomplete_stream"),
    ("[[fault:timeout]]", 504, "upstream_timeout"),
]
#: (fault kind, type) of failures after the first tokens; stall needs the impatient relay.
MID_STREAM = [
    ("validation", "validation"),
    ("overloaded", "overloaded"),
    ("generation", "model_error"),
    ("stream_broken", "upstream_error"),
    ("timeout", "upstream_timeout"),
    ("internal_stream", "upstream_error"),
    ("truncate", "incomplete_stream"),
]
TOKENS_BEFORE_FAULT = 3
_STREAM_ERROR_LINE = re.compile(r"\[stream error\] (?P<message>.+) \((?P<kind>[a-z_]+)\)\n")


def assert_json_error(response: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    """The relay's error shape, with Retry-After exactly on the 503s."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-request-id"]
    body = response.json()
    assert set(body) == {"error", "type"}
    assert body["type"] == kind
    assert isinstance(body["error"], str)
    assert body["error"].strip()
    assert "\n" not in body["error"]
    if status == 503:
        assert int(response.headers["retry-after"]) > 0
    else:
        assert "retry-after" not in response.headers
    return body


@pytest.mark.parametrize(("directive", "status", "kind"), BEFORE_TEXT)
@pytest.mark.parametrize("output_format", list(FORMATS))
def test_failures_before_text_are_http_errors(
    relay: httpx.Client, directive: str, status: int, kind: str, output_format: str
) -> None:
    response = relay.post(
        "/",
        json=generate_body(f"{PROMPT} {directive}"),
        headers={"accept": FORMATS[output_format]},
    )
    assert_json_error(response, status, kind)


def test_stall_before_text_is_a_gateway_timeout(impatient_stack: LocalStack) -> None:
    with httpx.Client(base_url=impatient_stack.relay_url, timeout=HANG_GUARD_SECONDS) as client:
        response = client.post("/", json=generate_body(f"{PROMPT} [[fault:stall]]"))
    assert_json_error(response, 504, "upstream_timeout")


def test_model_rejecting_a_too_long_prompt_is_a_422_with_its_reason(relay: httpx.Client) -> None:
    response = relay.post("/", json=generate_body("word " * 9000))
    body = assert_json_error(response, 422, "validation")
    assert "Input validation error" in body["error"]


@pytest.mark.parametrize(
    ("body", "status", "kind"),
    [
        ({"inputs": ""}, 422, "invalid_request"),
        ({"prompt": "hello"}, 422, "invalid_request"),
        ({"inputs": "x", "parameters": {"temperature": 0}}, 422, "invalid_request"),
        ({"inputs": "x", "parameters": {"max_new_tokens": 100_000}}, 422, "invalid_request"),
        ({"inputs": "x", "parameters": {"top_p": 1.0}}, 422, "invalid_request"),
        ([1, 2], 400, "invalid_body"),
    ],
)
def test_requests_the_relay_refuses_itself(
    relay: httpx.Client, body: object, status: int, kind: str
) -> None:
    assert_json_error(relay.post("/", json=body), status, kind)


def mid_stream(client: httpx.Client, kind: str, output_format: str) -> httpx.Response:
    prompt = f"{PROMPT} [[fault:{kind}@{TOKENS_BEFORE_FAULT}]]"
    response = client.post(
        "/", json=generate_body(prompt), headers={"accept": FORMATS[output_format]}
    )
    assert response.status_code == 200, response.text
    return response


def check_mid_stream_error(response: httpx.Response, output_format: str, kind: str) -> None:
    text_before = "".join(_tokens_before())
    if output_format == "text":
        body = response.content.decode("utf-8")
        answer, _, error_line = body.rpartition("\n[stream error]")
        assert answer == text_before
        match = _STREAM_ERROR_LINE.fullmatch("[stream error]" + error_line)
        assert match is not None, body
        assert match["kind"] == kind
    elif output_format == "sse":
        events = parse_sse(response.content)
        assert events[:-1] == [("token", {"text": text}) for text in _tokens_before()]
        name, data = events[-1]
        assert name == "error"
        assert set(data) == {"error", "type"}
        assert data["type"] == kind
    else:
        lines = parse_ndjson(response.content)
        assert lines[:-1] == [{"event": "token", "text": text} for text in _tokens_before()]
        assert set(lines[-1]) == {"event", "error", "type"}
        assert lines[-1]["event"] == "error"
        assert lines[-1]["type"] == kind
        assert json.dumps(lines[-1]["error"])


def _tokens_before() -> list[str]:
    """The model's first tokens; the fault's kind does not change the prompt the model sees."""
    return expected_tokens(f"{PROMPT} [[fault:stall@{TOKENS_BEFORE_FAULT}]]")[:TOKENS_BEFORE_FAULT]


@pytest.mark.parametrize(("fault", "kind"), MID_STREAM)
@pytest.mark.parametrize("output_format", list(FORMATS))
def test_failures_mid_stream_end_the_body_with_an_error(
    relay: httpx.Client, fault: str, kind: str, output_format: str
) -> None:
    response = mid_stream(relay, fault, output_format)
    check_mid_stream_error(response, output_format, kind)


@pytest.mark.parametrize("output_format", list(FORMATS))
def test_stall_mid_stream_ends_with_a_timeout_error_and_closes_the_upstream(
    impatient_stack: LocalStack, output_format: str
) -> None:
    with (
        httpx.Client(base_url=impatient_stack.relay_url, timeout=HANG_GUARD_SECONDS) as relay,
        httpx.Client(base_url=impatient_stack.emulator_url, timeout=HANG_GUARD_SECONDS) as control,
    ):
        before = stream_ids(control)
        response = mid_stream(relay, "stall", output_format)
        check_mid_stream_error(response, output_format, "upstream_timeout")
        # The emulator keeps a stalled stream open until its client leaves: the relay must.
        record = wait_for_new_stream(control, before, state="disconnected")
    assert record["tokens_sent"] == TOKENS_BEFORE_FAULT
