"""The three answer formats, whole answers and answers that fail after their first text."""

from __future__ import annotations

import json
from typing import Any

import pytest
from streamer.errors import UpstreamError
from streamer.formats import NdjsonWriter, PlainTextWriter, SseWriter

from tests.streamer.support import (
    RINNA_3_6B,
    ScriptedUpstream,
    answer_events,
    call,
    catalog_template,
    error_event,
    final_event,
    make_app,
    token_event,
)

SSE = {"accept": "text/event-stream"}
NDJSON = {"accept": "application/x-ndjson"}
PROMPT = {"inputs": "日本の首都は?", "parameters": {"max_new_tokens": 20}}


def sse_events(text: str) -> list[tuple[str, Any]]:
    """Parse an SSE body strictly: every block is `event:` then one `data:` line."""
    assert text.endswith("\n\n")
    events = []
    for block in text[:-2].split("\n\n"):
        event_line, data_line = block.split("\n")
        assert event_line.startswith("event: ")
        assert data_line.startswith("data: ")
        events.append((event_line[len("event: ") :], json.loads(data_line[len("data: ") :])))
    return events


def ndjson_events(text: str) -> list[dict[str, Any]]:
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def relay(script: list[Any], headers: dict[str, str] | None = None, **settings: Any) -> Any:
    return call(make_app(ScriptedUpstream(script), **settings), json_body=PROMPT, headers=headers)


def test_plain_text_is_only_the_answer() -> None:
    response = relay(answer_events(["東京", "です", "。"]))
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.text == "東京です。"


def test_streaming_headers_stop_buffering() -> None:
    for headers in ({}, SSE, NDJSON):
        response = relay(answer_events(["a"]), headers)
        assert response.headers["cache-control"] == "no-cache"
        assert response.headers["x-accel-buffering"] == "no"


def test_sse_tokens_then_done() -> None:
    response = relay(answer_events(["東京", "です"]), SSE)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert sse_events(response.text) == [
        ("token", {"text": "東京"}),
        ("token", {"text": "です"}),
        ("done", {"finish_reason": "eos_token", "generated_tokens": 3}),
    ]
    assert "東京" in response.text  # ensure_ascii=False: readable, not \\u escapes


def test_ndjson_tokens_then_done() -> None:
    response = relay(answer_events(["東京", "です"]), NDJSON)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-ndjson"
    assert ndjson_events(response.text) == [
        {"event": "token", "text": "東京"},
        {"event": "token", "text": "です"},
        {"event": "done", "finish_reason": "eos_token", "generated_tokens": 3},
    ]


def test_done_says_null_where_the_model_did_not_say() -> None:
    script = [
        token_event("a"),
        final_event("</s>", generated_text="a", finish_reason=None, generated_tokens=None),
    ]
    assert sse_events(relay(script, SSE).text)[-1] == (
        "done",
        {"finish_reason": None, "generated_tokens": None},
    )


def test_text_with_newlines_and_line_separators_stays_one_line_per_event() -> None:
    tricky = "a\nb\r\nc\u2028d\u2029e\x85f"
    response = relay(answer_events([tricky]), NDJSON)
    events = ndjson_events(response.text)
    assert events[0] == {"event": "token", "text": tricky}
    assert len(response.text.splitlines()) == 2
    assert sse_events(relay(answer_events([tricky]), SSE).text)[0] == ("token", {"text": tricky})


def test_special_tokens_never_reach_any_format() -> None:
    script = [
        token_event("<s>", special=True),
        token_event("hi"),
        token_event("<|endoftext|>", special=True),
        final_event("</s>", generated_text="hi"),
    ]
    assert relay(script).text == "hi"
    assert [e for e, _ in sse_events(relay(script, SSE).text)] == ["token", "done"]
    assert len(ndjson_events(relay(script, NDJSON).text)) == 2
    for body in (relay(script).text, relay(script, SSE).text, relay(script, NDJSON).text):
        assert "<s>" not in body
        assert "</s>" not in body
        assert "endoftext" not in body


def test_rinna_newlines_in_every_format() -> None:
    model = {"prompt_template": catalog_template(RINNA_3_6B)}
    script = answer_events(["一行目<N", "L>二行目"])
    assert relay(script, **model).text == "一行目\n二行目"
    sse = sse_events(relay(script, SSE, **model).text)
    assert "".join(data["text"] for event, data in sse if event == "token") == "一行目\n二行目"
    assert relay(script).text == "一行目<NL>二行目"  # other models keep it


# --- Failing after the first text: the status is sent, the body must say it ----------------------

_MID_STREAM_FAILURES = [
    (error_event("Request failed during generation: CUDA OOM", "generation"), "model_error"),
    (error_event("Model is overloaded", "overloaded"), "overloaded"),
    (UpstreamError(kind="upstream_timeout", message="The model went quiet."), None),
    (UpstreamError(kind="upstream_error", message="The stream broke."), None),
    (b"data: {garbage\n\n", "upstream_error"),
]


@pytest.mark.parametrize(("failure", "kind"), _MID_STREAM_FAILURES)
def test_plain_text_ends_with_a_stream_error_line(failure: Any, kind: str | None) -> None:
    kind = kind or failure.kind
    response = relay([token_event("partial answer"), failure])
    assert response.status_code == 200
    text, last_line = response.text.rsplit("\n", 2)[0], response.text.splitlines()[-1]
    assert text == "partial answer"
    assert last_line.startswith("[stream error] ")
    assert last_line.endswith(f"({kind})")
    assert "CUDA" not in response.text


def test_plain_text_error_line_does_not_add_a_blank_line() -> None:
    error = UpstreamError(kind="upstream_error", message="The stream broke.")
    response = relay([token_event("line one\n"), error])
    assert response.text == "line one\n[stream error] The stream broke. (upstream_error)\n"


def test_a_stream_that_just_stops_is_reported_not_passed_off_as_complete() -> None:
    response = relay([token_event("so far")], SSE)
    assert response.status_code == 200
    events = sse_events(response.text)
    assert events[0] == ("token", {"text": "so far"})
    assert events[-1][0] == "error"
    assert events[-1][1]["type"] == "incomplete_stream"
    assert [event for event, _ in events].count("done") == 0


@pytest.mark.parametrize(("failure", "kind"), _MID_STREAM_FAILURES)
def test_sse_ends_with_exactly_one_error_event(failure: Any, kind: str | None) -> None:
    kind = kind or failure.kind
    events = sse_events(relay([token_event("partial"), failure], SSE).text)
    assert events[0] == ("token", {"text": "partial"})
    assert events[-1][0] == "error"
    assert set(events[-1][1]) == {"error", "type"}
    assert events[-1][1]["type"] == kind
    assert [event for event, _ in events].count("error") == 1
    assert "done" not in [event for event, _ in events]


@pytest.mark.parametrize(("failure", "kind"), _MID_STREAM_FAILURES)
def test_ndjson_ends_with_exactly_one_error_line(failure: Any, kind: str | None) -> None:
    kind = kind or failure.kind
    events = ndjson_events(relay([token_event("partial"), failure], NDJSON).text)
    assert events[0] == {"event": "token", "text": "partial"}
    assert events[-1]["event"] == "error"
    assert set(events[-1]) == {"event", "error", "type"}
    assert events[-1]["type"] == kind
    assert sum(event["event"] in ("error", "done") for event in events) == 1


def test_a_validation_error_after_text_keeps_the_models_words() -> None:
    script = [token_event("x"), error_event("Input validation error: too long", "validation")]
    events = ndjson_events(relay(script, NDJSON).text)
    assert "Input validation error: too long" in events[-1]["error"]


# --- The writers on their own ---------------------------------------------------------------------


def test_plain_writer_starts_the_error_on_a_new_line_only_when_needed() -> None:
    writer = PlainTextWriter()
    assert writer.error(message="m", kind="k") == b"[stream error] m (k)\n"
    writer = PlainTextWriter()
    writer.text("no newline")
    assert writer.error(message="m", kind="k") == b"\n[stream error] m (k)\n"
    assert writer.done(finish_reason="length", generated_tokens=1) == b""


def test_writers_never_fail_on_a_lone_surrogate() -> None:
    for writer in (PlainTextWriter(), SseWriter(), NdjsonWriter()):
        assert writer.text("a\ud800b")  # replaced, not UnicodeEncodeError
