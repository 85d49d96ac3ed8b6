"""OpenAI requests translated to TGI's, and TGI's answers written as OpenAI's objects."""

from __future__ import annotations

import json
from typing import Any

import pytest
from streamer.errors import ApiError
from streamer.openai.errors import error_param, openai_error_body, openai_status
from streamer.openai.requests import parse_chat_request, parse_completion_request
from streamer.openai.writers import ChatChunkWriter, ChatCompletionCollector, CompletionChunkWriter
from streamer.prompt_template import PromptTemplate

TEMPLATE = PromptTemplate(
    user="User: {content}\n",
    assistant="Falcon: {content}\n",
    generation="Falcon:",
    stop=("\nUser:",),
)
CHAT = {"model": "anything", "messages": [{"role": "user", "content": "Hi"}]}


def chat(**fields: Any) -> Any:
    return parse_chat_request({**CHAT, **fields}, template=TEMPLATE, max_new_tokens_limit=1024)


def test_a_chat_becomes_the_models_prompt_with_openais_defaults() -> None:
    request = chat()
    assert request.generate.inputs == "User: Hi\nFalcon:"
    # OpenAI samples by default; the template's stop keeps the model out of the next turn.
    assert request.generate.parameters == {
        "max_new_tokens": 100,
        "do_sample": True,
        "stop": ["\nUser:"],
    }
    assert (request.stream, request.include_usage) == (False, False)
    assert request.stop_sequences == ("\nUser:",)


def test_sampling_parameters_map_to_tgis() -> None:
    request = chat(
        max_tokens=50,
        temperature=0.7,
        top_p=0.9,
        seed=42,
        frequency_penalty=0.5,
        stop="END",
        stream=True,
        stream_options={"include_usage": True},
    )
    assert request.generate.parameters == {
        "max_new_tokens": 50,
        "do_sample": True,
        "temperature": 0.7,
        "top_p": 0.9,
        "seed": 42,
        "frequency_penalty": 0.5,
        "stop": ["\nUser:", "END"],
    }
    assert (request.stream, request.include_usage) == (True, True)
    assert request.stop_sequences == ("\nUser:", "END")


def test_temperature_zero_is_greedy_and_top_p_one_is_no_cut() -> None:
    parameters = chat(temperature=0, top_p=1).generate.parameters
    assert parameters["do_sample"] is False
    assert "temperature" not in parameters
    assert "top_p" not in parameters  # TGI refuses 1.0; OpenAI's 1.0 means "no nucleus cut"


def test_max_completion_tokens_wins_over_the_legacy_name() -> None:
    parameters = chat(max_completion_tokens=10, max_tokens=20).generate.parameters
    assert parameters["max_new_tokens"] == 10


def test_a_completion_continues_its_prompt() -> None:
    request = parse_completion_request(
        {"model": "m", "prompt": ["Once upon"], "max_tokens": 5}, max_new_tokens_limit=1024
    )
    assert request.generate.inputs == "Once upon"
    assert request.generate.parameters["max_new_tokens"] == 5
    assert request.stop_sequences == ()


@pytest.mark.parametrize(
    ("fields", "param", "says"),
    [
        ({"n": 2}, "n", "n is not supported"),
        ({"logprobs": True}, "logprobs", "log probabilities"),
        ({"top_logprobs": 2}, "logprobs", "log probabilities"),
        ({"tools": [{"type": "function"}]}, "tools", "do not call tools"),
        ({"tool_choice": "auto"}, "tool_choice", "do not call tools"),
        ({"presence_penalty": 0.5}, "presence_penalty", "no presence penalty"),
        ({"logit_bias": {"1": 2}}, "logit_bias", "cannot bias"),
        ({"response_format": {"type": "json_object"}}, "response_format", "only text"),
        ({"temperature": 2.5}, "temperature", "from 0 to 2"),
        ({"top_p": 0}, "top_p", "greater than 0"),
        ({"max_tokens": 5000}, "max_tokens", "from 1 to 1024"),
        ({"seed": -1}, "seed", "seed must be"),
        ({"stop": ["a", "b", "c", "d"]}, "stop", "at most 3 sequences"),
        ({"stop": 5}, "stop", "a string or a list"),
        ({"stream_options": {"include_usage": True}}, "stream_options", "only allowed when stream"),
        ({"stream": "yes"}, "stream", "true or false"),
        ({"colour": "red"}, "colour", "Unrecognized request argument supplied: colour"),
        ({"messages": []}, None, "non-empty array"),
    ],
)
def test_what_cannot_be_honoured_is_a_400_naming_the_parameter(
    fields: dict[str, Any], param: str | None, says: str
) -> None:
    with pytest.raises(ApiError) as caught:
        chat(**fields)
    error = caught.value
    assert openai_status(error) == 400
    assert says in error.message
    assert error_param(error) == param


def test_chat_without_a_template_points_to_completions() -> None:
    with pytest.raises(ApiError, match="use /v1/completions"):
        parse_chat_request(CHAT, template=None, max_new_tokens_limit=1024)


@pytest.mark.parametrize(
    ("kind", "status", "error_type"),
    [
        ("invalid_request", 400, "invalid_request_error"),
        ("validation", 400, "invalid_request_error"),
        ("throttled", 429, "rate_limit_exceeded"),
        ("overloaded", 503, "server_error"),
        ("no_capacity", 503, "server_error"),
        ("model_error", 502, "server_error"),
        ("upstream_timeout", 504, "server_error"),
        ("internal_error", 500, "server_error"),
    ],
)
def test_relay_errors_take_openais_statuses_and_shape(
    kind: str, status: int, error_type: str
) -> None:
    error = ApiError(kind=kind, message="m")
    assert openai_status(error) == status
    assert openai_error_body(message="m", kind=kind) == {
        "error": {"message": "m", "type": error_type, "param": None, "code": kind}
    }


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
