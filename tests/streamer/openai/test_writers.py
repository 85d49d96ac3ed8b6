"""TGI's answers as OpenAI's objects: chunks, the end, usage, a late error, one whole document."""

from __future__ import annotations

import json
from typing import Any

from streamer.openai.writers import ChatChunkWriter, ChatCompletionCollector, CompletionChunkWriter


def _events(stream: bytes) -> list[Any]:
    text = stream.decode()
    assert text.endswith("\n\n")
    events = []
    for block in text[:-2].split("\n\n"):
        assert block.startswith("data: ")
        payload = block.removeprefix("data: ")
        events.append(payload if payload == "[DONE]" else json.loads(payload))
    return events


def test_chat_chunks_carry_role_then_content_then_finish_and_usage() -> None:
    writer = ChatChunkWriter(model="m", include_usage=True, created=1)
    stream = (
        writer.text("Hel")
        + writer.text("lo")
        + writer.done(finish_reason="eos_token", generated_tokens=3, input_length=7)
    )
    *chunks, usage_chunk, done = _events(stream)
    assert done == "[DONE]"
    assert [c["choices"][0]["delta"] for c in chunks] == [
        {"role": "assistant", "content": ""},
        {"content": "Hel"},
        {"content": "lo"},
        {},
    ]
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None, None, None, "stop"]
    assert all(c["object"] == "chat.completion.chunk" and c["usage"] is None for c in chunks)
    assert len({c["id"] for c in [*chunks, usage_chunk]}) == 1
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"] == {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}


def test_an_empty_answer_still_names_the_role_and_no_chunk_has_usage_unless_asked() -> None:
    writer = ChatChunkWriter(model="m", include_usage=False, created=1)
    *chunks, done = _events(writer.done(finish_reason="length", generated_tokens=1))
    assert done == "[DONE]"
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert all("usage" not in c for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"


def test_completion_chunks_carry_text_then_the_finish_reason() -> None:
    writer = CompletionChunkWriter(model="m", include_usage=False, created=1)
    *chunks, done = _events(
        writer.text("a") + writer.done(finish_reason="stop_sequence", generated_tokens=1)
    )
    assert done == "[DONE]"
    assert [c["choices"][0]["text"] for c in chunks] == ["a", ""]
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None, "stop"]
    assert all(c["object"] == "text_completion" for c in chunks)


def test_a_late_error_is_an_error_event_then_done() -> None:
    writer = CompletionChunkWriter(model="m", include_usage=False, created=1)
    error, done = _events(writer.error(message="gone", kind="model_error"))
    assert error == {
        "error": {"message": "gone", "type": "server_error", "param": None, "code": "model_error"}
    }
    assert done == "[DONE]"


def test_a_collected_answer_is_one_document_and_unknown_counts_stay_null() -> None:
    collector = ChatCompletionCollector(model="m", created=1)
    assert collector.text("h") == collector.text("i") == b""
    answer = json.loads(collector.done(finish_reason=None, generated_tokens=2))
    assert answer["object"] == "chat.completion"
    assert answer["choices"][0]["message"] == {"role": "assistant", "content": "hi"}
    assert answer["choices"][0]["finish_reason"] == "stop"
    assert answer["usage"] == {"prompt_tokens": None, "completion_tokens": 2, "total_tokens": None}
