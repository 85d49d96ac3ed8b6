"""TGI's stream on the wire: its events' JSON shapes and every SSE spelling, byte for byte."""

from __future__ import annotations

import pytest

from jumpstream.emulator.sse import SseStyle, data_event, error_response, keepalive, stream_response


@pytest.mark.parametrize(
    ("style", "expected"),
    [
        (SseStyle(), 'data: {"text":"日本"}\n\n'),
        (SseStyle(space=False), 'data:{"text":"日本"}\n\n'),
        (SseStyle(crlf=True), 'data: {"text":"日本"}\r\n\r\n'),
    ],
)
def test_data_events_are_compact_raw_utf8_json(style: SseStyle, expected: str) -> None:
    assert data_event({"text": "日本"}, style) == expected.encode("utf-8")


def test_keepalive_is_an_empty_comment() -> None:
    assert keepalive() == b":\n\n"
    assert keepalive(SseStyle(crlf=True)) == b":\r\n\r\n"


def test_a_token_event_is_spelled_as_tgi_spells_it() -> None:
    token = {"id": 1014, "text": " time", "logprob": -0.1, "special": False}
    assert data_event(stream_response(token, index=1)) == (
        b'data: {"index":1,"token":{"id":1014,"text":" time","logprob":-0.1,"special":false},'
        b'"generated_text":null,"details":null}\n\n'
    )


def test_only_the_final_event_carries_the_text_and_details() -> None:
    token = {"id": 2, "text": "</s>", "logprob": -0.5, "special": True}
    details = {"finish_reason": "eos_token", "generated_tokens": 2, "seed": None}
    event = stream_response(token, index=2, generated_text="Hi", details=details)
    assert event == {"index": 2, "token": token, "generated_text": "Hi", "details": details}


def test_members_left_out_are_absent_not_null() -> None:
    """For readers that must cope without them: an event without ``index``, an error without
    ``error_type``."""
    token = {"id": 1, "text": "a", "logprob": -0.1, "special": False}
    assert "index" not in stream_response(token)
    assert error_response("boom", None) == {"error": "boom"}
    assert error_response("boom", "overloaded") == {"error": "boom", "error_type": "overloaded"}
