"""The invocation's deadline: the relay stops before Lambda does, and says why.

The deadlines here are a second or two away, so the tests wait that long; what they check is
what the caller got and that the upstream was closed, never how long anything took.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from streamer.streaming import DEADLINE_MARGIN_SECONDS

from tests.streamer.support import (
    PROMPT,
    RINNA_3_6B,
    CapturedLog,
    GatedUpstream,
    ScriptedUpstream,
    SlowToAnswerUpstream,
    answer_events,
    call,
    catalog_template,
    lambda_context,
    make_app,
    token_event,
)

# How long after the relay gives up the deadline itself is: enough for the first token of a
# scripted upstream to arrive first, on any machine.
SLACK_SECONDS = 1.0


def near_deadline() -> dict[str, str]:
    return lambda_context(seconds_left=DEADLINE_MARGIN_SECONDS + SLACK_SECONDS)


def test_a_model_that_does_not_answer_in_time_is_a_504() -> None:
    log = CapturedLog()
    upstream = SlowToAnswerUpstream(answer_events(["late"]))
    try:
        response = call(make_app(upstream, log), json_body=PROMPT, headers=near_deadline())
        assert upstream.opening.is_set()
    finally:
        upstream.release.set()
    assert response.status_code == 504
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["type"] == "upstream_timeout"
    assert body["error"].startswith("The function's time limit was reached before the model")
    (line,) = log.request_lines()
    assert (line["status"], line["error_type"]) == (504, "upstream_timeout")
    # The call was abandoned (a real one then closes its connection): no stream is left open.
    assert upstream.abandoned.is_set()
    assert not upstream.streams


def test_a_stream_that_sends_nothing_in_time_is_a_504() -> None:
    upstream = GatedUpstream(b":\n\n", [token_event("late")])  # a keep-alive, then silence
    response = call(make_app(upstream), json_body=PROMPT, headers=near_deadline())
    assert response.status_code == 504
    assert response.json()["type"] == "upstream_timeout"
    assert upstream.stream.closed.is_set()


@pytest.mark.parametrize(
    ("accept", "ending"),
    [
        ("text/plain", "first\n[stream error] The function's time limit ended the answer"),
        ("text/event-stream", 'event: error\ndata: {"error": "The function\'s time limit ended'),
        ("application/x-ndjson", '{"event": "error", "error": "The function\'s time limit ended'),
    ],
    ids=["text", "sse", "ndjson"],
)
def test_a_deadline_mid_answer_ends_the_body_with_an_error(accept: str, ending: str) -> None:
    log = CapturedLog()
    upstream = GatedUpstream(token_event("first"), [token_event("never sent")])
    headers = {"accept": accept, **near_deadline()}
    response = call(make_app(upstream, log), json_body=PROMPT, headers=headers)
    assert response.status_code == 200
    assert ending in response.text
    assert "upstream_timeout" in response.text
    assert "max_new_tokens" in response.text
    assert "never sent" not in response.text
    assert upstream.stream.closed.is_set()
    (line,) = log.request_lines()
    assert (line["status"], line["error_type"], line["tokens"]) == (200, "upstream_timeout", 1)


def test_after_the_deadline_the_request_carries_no_cancel_of_the_relays_own() -> None:
    """The deadline cancels the wait on SageMaker and nothing after it: closing the upstream
    runs in a task with no cancellation pending (else an asyncio timeout there would misread
    its own expiry)."""
    upstream = GatedUpstream(token_event("first"), [token_event("never sent")])
    stream = upstream.stream
    close = stream.aclose
    pending: list[int] = []

    async def recording_close() -> None:
        task = asyncio.current_task()
        assert task is not None
        pending.append(task.cancelling())
        await close()

    stream.aclose = recording_close  # type: ignore[method-assign]
    response = call(make_app(upstream), json_body=PROMPT, headers=near_deadline())
    assert "upstream_timeout" in response.text
    assert pending == [0]


def test_text_held_back_by_the_transform_goes_out_before_the_deadline_error() -> None:
    upstream = GatedUpstream(token_event("abc<"), [token_event("never sent")])
    headers = {"accept": "text/plain", **near_deadline()}
    app = make_app(upstream, prompt_template=catalog_template(RINNA_3_6B))
    response = call(app, json_body=PROMPT, headers=headers)
    assert response.status_code == 200
    answer, _, error_line = response.text.partition("\n[stream error] ")
    assert answer == "abc<"  # the "<" that might have begun "<NL>" is model output too
    assert error_line.startswith("The function's time limit ended the answer")


def test_a_deadline_already_passed_never_calls_sagemaker() -> None:
    upstream = ScriptedUpstream(answer_events(["unused"]))
    headers = lambda_context(seconds_left=DEADLINE_MARGIN_SECONDS / 2)
    response = call(make_app(upstream), json_body=PROMPT, headers=headers)
    assert response.status_code == 504
    assert response.json()["type"] == "upstream_timeout"
    assert upstream.bodies == []


def test_a_distant_deadline_changes_nothing() -> None:
    upstream = ScriptedUpstream(answer_events(["all", " of", " it"]))
    headers = {"accept": "application/x-ndjson", **lambda_context(seconds_left=600)}
    response = call(make_app(upstream), json_body=PROMPT, headers=headers)
    events = [json.loads(line) for line in response.text.splitlines()]
    assert [event["event"] for event in events] == ["token", "token", "token", "done"]


@pytest.mark.parametrize("deadline", ["9" * 400, "1e400", "NaN"])
def test_a_deadline_no_clock_can_hold_is_ignored_not_a_500(deadline: str) -> None:
    """The header is the Web Adapter's, but the relay parses it: it must never crash on it."""
    upstream = ScriptedUpstream(answer_events(["fine"]))
    context = '{"request_id": "r-1", "deadline": ' + deadline + "}"
    headers = {"x-amzn-lambda-context": context}
    response = call(make_app(upstream), json_body=PROMPT, headers=headers)
    assert response.status_code == 200
    assert response.text == "fine"
    assert response.headers["x-request-id"] == "r-1"


_HEADER_TEXT = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=300)
_CONTEXT = st.one_of(
    _HEADER_TEXT,
    st.builds(
        json.dumps,
        st.fixed_dictionaries(
            {},
            optional={
                "request_id": st.one_of(_HEADER_TEXT, st.integers(), st.none()),
                "deadline": st.one_of(st.integers(), st.floats(), st.text(max_size=5)),
                "deadline_ms": st.one_of(st.integers(), st.floats()),
            },
        ),
    ),
)


@settings(max_examples=60, deadline=None)
@given(lambda_header=_CONTEXT, url_header=_CONTEXT)
def test_no_context_header_value_crashes_the_relay(lambda_header: str, url_header: str) -> None:
    """Whatever the Web Adapter's headers hold, the answer is the model's or the deadline's,
    never a 500: a deadline far past or far ahead is a 504 or no deadline at all."""
    upstream = ScriptedUpstream(answer_events(["fine"]))
    headers = {"x-amzn-lambda-context": lambda_header, "x-amzn-request-context": url_header}
    response = call(make_app(upstream), json_body=PROMPT, headers=headers)
    assert response.status_code in (200, 504), response.text
    assert response.text == "fine" or response.json()["type"] == "upstream_timeout"
    assert response.headers["x-request-id"]
