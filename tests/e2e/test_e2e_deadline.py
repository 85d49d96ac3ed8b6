"""The invocation's deadline, as the Web Adapter forwards it, through the real relay.

The stack's relay waits up to its read timeout (60 s) for the next part, far longer than the
hang guard of these clients (30 s): a stalled answer can only end inside the guard because the
relay stopped at the deadline it was given, about a second and a half before it.
"""

from __future__ import annotations

import json
import time

import httpx
import pytest

from tests.e2e.support import (
    FORMATS,
    PROMPT,
    expected_tokens,
    generate_body,
    parse_ndjson,
    parse_sse,
    stream_ids,
    wait_for_new_stream,
)

#: Seconds from the request to the deadline it carries: the relay gives up 1.5 s before it.
SECONDS_LEFT = 3.0
TOKENS_BEFORE_STALL = 2


def lambda_context(seconds_left: float) -> dict[str, str]:
    """The header the Web Adapter adds to each invocation (deadline in epoch milliseconds)."""
    deadline_ms = int((time.time() + seconds_left) * 1000)
    return {"x-amzn-lambda-context": json.dumps({"request_id": "r1", "deadline": deadline_ms})}


@pytest.mark.parametrize("output_format", list(FORMATS))
def test_a_stall_mid_answer_ends_with_a_time_limit_error_before_the_deadline(
    relay: httpx.Client, emulator: httpx.Client, output_format: str
) -> None:
    prompt = f"{PROMPT} [[fault:stall@{TOKENS_BEFORE_STALL}]]"
    before = stream_ids(emulator)
    headers = {"accept": FORMATS[output_format], **lambda_context(SECONDS_LEFT)}
    response = relay.post("/", json=generate_body(prompt), headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["x-request-id"] == "r1"
    first = expected_tokens(prompt)[:TOKENS_BEFORE_STALL]
    if output_format == "text":
        answer, _, error_line = response.text.partition("\n[stream error] ")
        assert answer == "".join(first)
        assert error_line.startswith("The function's time limit ended the answer")
        assert error_line.endswith(" (upstream_timeout)\n")
    elif output_format == "sse":
        events = parse_sse(response.content)
        assert events[:-1] == [("token", {"text": text}) for text in first]
        name, data = events[-1]
        assert (name, data["type"]) == ("error", "upstream_timeout")
        assert "max_new_tokens" in data["error"]
    else:
        lines = parse_ndjson(response.content)
        assert lines[:-1] == [{"event": "token", "text": text} for text in first]
        assert (lines[-1]["event"], lines[-1]["type"]) == ("error", "upstream_timeout")
        assert "max_new_tokens" in lines[-1]["error"]
    # The emulator keeps a stalled stream open until its client leaves: the relay left.
    record = wait_for_new_stream(emulator, before, state="disconnected")
    assert record["tokens_sent"] == TOKENS_BEFORE_STALL


def test_a_stall_before_any_text_is_a_504_before_the_deadline(
    relay: httpx.Client, emulator: httpx.Client
) -> None:
    before = stream_ids(emulator)
    response = relay.post(
        "/", json=generate_body(f"{PROMPT} [[fault:stall]]"), headers=lambda_context(SECONDS_LEFT)
    )
    assert response.status_code == 504, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["type"] == "upstream_timeout"
    assert body["error"].startswith("The function's time limit was reached before the model")
    record = wait_for_new_stream(emulator, before, state="disconnected")
    assert record["tokens_sent"] == 0


def test_a_deadline_far_away_lets_the_answer_finish(relay: httpx.Client) -> None:
    prompt = f"{PROMPT} [[length:5]]"
    response = relay.post("/", json=generate_body(prompt), headers=lambda_context(600))
    assert response.status_code == 200
    assert response.text == "".join(expected_tokens(prompt))
