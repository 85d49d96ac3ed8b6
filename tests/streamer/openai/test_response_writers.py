"""TGI's answer as the Responses API's events and object: order, numbering, ends and failures."""

from __future__ import annotations

import json
from typing import Any

from streamer.openai.response_requests import parse_responses_request
from streamer.openai.response_writers import (
    ResponseCollector,
    ResponseEventWriter,
    response_usage,
)
from streamer.prompt_template import PromptTemplate

TEMPLATE = PromptTemplate(user="User: {content}\n", assistant="Falcon: {content}\n")
REQUEST = parse_responses_request(
    {"input": "Hi", "instructions": "Be brief.", "max_output_tokens": 5, "metadata": {"a": "b"}},
    template=TEMPLATE,
    max_new_tokens_limit=100,
)
OPENING = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
]
CLOSING = [
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
]


def _events(stream: bytes) -> list[dict[str, Any]]:
    """Strict SSE: every block an `event:` line and a `data:` line whose `type` matches."""
    text = stream.decode()
    assert text.endswith("\n\n")
    events = []
    for block in text[:-2].split("\n\n"):
        event_line, data_line = block.split("\n")
        data = json.loads(data_line.removeprefix("data: "))
        assert event_line == f"event: {data['type']}"
        events.append(data)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    return events


def _writer() -> ResponseEventWriter:
    return ResponseEventWriter(REQUEST, model="m", created=7)


def test_a_streamed_answer_opens_streams_deltas_and_completes_with_usage() -> None:
    writer = _writer()
    stream = (
        writer.text("Hel")
        + writer.text("")  # TGI's held-back token: nothing to say yet
        + writer.text("lo")
        + writer.done(finish_reason="eos_token", generated_tokens=3, input_length=4)
    )
    events = _events(stream)
    types = [e["type"] for e in events]
    assert types == [*OPENING, *["response.output_text.delta"] * 2, *CLOSING, "response.completed"]
    created, in_progress, added, part_added, *deltas, text_done, part_done, item_done, end = events
    response_id = created["response"]["id"]
    assert response_id.startswith("resp_")
    assert created["response"]["status"] == in_progress["response"]["status"] == "in_progress"
    assert created["response"]["output"] == []
    message_id = added["item"]["id"]
    assert added["item"] == {
        "id": message_id,
        "type": "message",
        "status": "in_progress",
        "role": "assistant",
        "content": [],
    }
    part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    assert part_added["part"] == part
    at = {"item_id": message_id, "output_index": 0, "content_index": 0}
    assert all({**d, **at} == d for d in [part_added, *deltas, text_done, part_done])
    assert [d["delta"] for d in deltas] == ["Hel", "lo"]
    assert text_done["text"] == "Hello"
    assert part_done["part"] == {**part, "text": "Hello"}
    assert item_done["item"] == {
        **added["item"],
        "status": "completed",
        "content": [part_done["part"]],
    }
    response = end["response"]
    assert (response["id"], response["status"], response["model"]) == (
        response_id,
        "completed",
        "m",
    )
    assert response["output"] == [item_done["item"]]
    assert response["incomplete_details"] is None
    assert (response["instructions"], response["max_output_tokens"]) == ("Be brief.", 5)
    assert response["metadata"] == {"a": "b"}
    assert response["usage"] == response_usage(input_tokens=4, output_tokens=3)
    assert response["usage"]["total_tokens"] == 7


def test_an_answer_cut_at_max_output_tokens_ends_incomplete() -> None:
    writer = _writer()
    events = _events(writer.text("Hi") + writer.done(finish_reason="length", generated_tokens=5))
    end = events[-1]
    assert end["type"] == "response.incomplete"
    assert end["response"]["status"] == "incomplete"
    assert end["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert end["response"]["output"][0]["status"] == "incomplete"
    assert end["response"]["usage"] is None  # TGI did not report the prompt's tokens


def test_an_empty_answer_still_opens_and_closes_its_message() -> None:
    writer = _writer()
    events = _events(writer.done(finish_reason="eos_token", generated_tokens=1, input_length=2))
    assert [e["type"] for e in events] == [*OPENING, *CLOSING, "response.completed"]
    assert events[-1]["response"]["output"][0]["content"][0]["text"] == ""


def test_a_failure_after_text_is_an_error_event_then_the_failed_response_so_far() -> None:
    writer = _writer()
    events = _events(writer.text("Hel") + writer.error(message="It broke.", kind="model_error"))
    *_, error, failed = events
    assert error["type"] == "error"
    # The reference's fields at the top level, and OpenAI's nested object the openai package
    # raises on.
    assert (error["code"], error["message"], error["param"]) == ("model_error", "It broke.", None)
    assert error["error"] == {
        "message": "It broke.",
        "type": "server_error",
        "param": None,
        "code": "model_error",
    }
    assert failed["type"] == "response.failed"
    response = failed["response"]
    assert response["status"] == "failed"
    assert response["error"] == {"code": "model_error", "message": "It broke."}
    assert response["output"][0]["content"][0]["text"] == "Hel"
    assert response["output"][0]["status"] == "incomplete"
    assert response["id"] == events[0]["response"]["id"]


def test_a_failure_before_any_text_still_opens_the_stream_it_fails() -> None:
    events = _events(_writer().error(message="Too slow.", kind="upstream_timeout"))
    assert [e["type"] for e in events] == [*OPENING, "error", "response.failed"]


def test_the_collector_writes_one_response_at_the_end() -> None:
    collector = ResponseCollector(REQUEST, model="m", created=7)
    assert collector.text("Hel") == b""
    assert collector.text("lo") == b""
    response = json.loads(collector.done(finish_reason="stop_sequence", generated_tokens=2))
    assert response["object"] == "response"
    assert response["created_at"] == 7
    assert response["status"] == "completed"
    [message] = response["output"]
    assert message["content"] == [
        {"type": "output_text", "text": "Hello", "annotations": [], "logprobs": []}
    ]
    assert response["store"] is False  # nothing is kept, whatever the request said
    assert response["tools"] == []
    error = json.loads(collector.error(message="x", kind="model_error"))
    assert error["error"]["code"] == "model_error"


def test_usage_needs_both_counts() -> None:
    assert response_usage(input_tokens=None, output_tokens=3) is None
    assert response_usage(input_tokens=2, output_tokens=None) is None
    assert response_usage(input_tokens=2, output_tokens=3) == {
        "input_tokens": 2,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 3,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 5,
    }
