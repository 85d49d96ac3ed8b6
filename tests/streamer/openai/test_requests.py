"""OpenAI requests translated to TGI's: defaults, sampling, stops, and what is refused."""

from __future__ import annotations

import json
from typing import Any

import pytest
from streamer.errors import ApiError
from streamer.openai.errors import error_param, openai_status
from streamer.openai.requests import (
    IGNORED_FIELDS,
    parse_chat_request,
    parse_completion_request,
)
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
    assert request.generate.parameters == {"do_sample": True, "stop": ["\nUser:"]}
    # No max_tokens: as long as the limit allows (the route narrows it to the context's room).
    assert not request.sets_max_tokens
    assert json.loads(request.generate.upstream_body())["parameters"]["max_new_tokens"] == 1024
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


# What current clients send on their own or on a user's say-so, which changes nothing here.
HARMLESS_REQUEST = {
    "model": "gpt-4o",
    "user": "u-1",
    "safety_identifier": "hash-of-someone",
    "metadata": {"app": "demo"},
    "store": True,
    "service_tier": "auto",
    "prompt_cache_key": "conversation-7",
    "prompt_cache_options": {"mode": "explicit"},
    "prompt_cache_retention": "24h",
    "reasoning_effort": "low",
    "prediction": {"type": "content", "content": "Hello"},
    "parallel_tool_calls": False,
    "audio": None,
    "modalities": ["text"],
    "web_search_options": None,
    "moderation": None,
    "verbosity": "medium",
    "logprobs": False,
    "top_logprobs": None,
    "n": 1,
    "tools": [],
    "tool_choice": "none",
    "stream": True,
    "stream_options": {"include_usage": True, "include_obfuscation": False},
}


def test_harmless_fields_are_ignored_and_the_request_is_the_same() -> None:
    plain = chat(stream=True, stream_options={"include_usage": True})
    assert chat(**HARMLESS_REQUEST) == plain
    # The README's list is the table the parser reads: every ignored field is in the request.
    assert set(IGNORED_FIELDS) <= set(HARMLESS_REQUEST)


def test_a_completion_ignores_the_same_fields() -> None:
    body = {"model": "m", "prompt": "Once", "user": "u", "store": False, "metadata": None}
    request = parse_completion_request(body, max_new_tokens_limit=1024)
    assert request.generate.inputs == "Once"


def test_assistant_messages_as_the_sdks_return_them_are_history() -> None:
    """`message.model_dump()` in Python and the Node helper's `finalChatCompletion()` send
    OpenAI's empty fields back; they say nothing, so the prompt is the one without them."""
    returned = {
        "role": "assistant",
        "content": "Hello!",
        "refusal": None,
        "tool_calls": None,
        "function_call": None,
        "annotations": [],
        "audio": None,
        "parsed": None,
    }
    turns = [{"role": "user", "content": "Hi"}, returned, {"role": "user", "content": "And?"}]
    bare = [*turns[:1], {"role": "assistant", "content": "Hello!"}, *turns[2:]]
    expected = "User: Hi\nFalcon: Hello!\nUser: And?\nFalcon:"
    assert chat(messages=turns).generate.inputs == expected
    assert chat(messages=bare).generate.inputs == expected
    with_list = {**returned, "content": [{"type": "text", "text": "Hello!"}], "tool_calls": []}
    assert chat(messages=[turns[0], with_list, turns[2]]).generate.inputs == expected
    no_text = {**returned, "content": None}
    assert chat(messages=[turns[0], no_text, turns[2]]).generate.inputs == (
        "User: Hi\nFalcon: \nUser: And?\nFalcon:"
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("refusal", "I cannot help with that."),
        ("tool_calls", [{"id": "c1", "type": "function"}]),
        ("function_call", {"name": "f", "arguments": "{}"}),
        ("audio", {"id": "a1"}),
    ],
)
def test_an_assistant_field_with_a_value_is_refused(field: str, value: object) -> None:
    turns = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello", field: value},
        {"role": "user", "content": "And?"},
    ]
    with pytest.raises(ApiError, match=f"cannot honour: {field}"):
        chat(messages=turns)


@pytest.mark.parametrize(
    ("fields", "param", "says"),
    [
        ({"n": 2}, "n", "n is not supported"),
        ({"logprobs": 0}, "logprobs", "log probabilities"),
        ({"top_logprobs": 0}, "logprobs", "log probabilities"),
        ({"audio": {"voice": "alloy", "format": "mp3"}}, "audio", "text only"),
        ({"modalities": ["text", "audio"]}, "modalities", "text only"),
        ({"web_search_options": {}}, "web_search_options", "cannot search the web"),
        ({"moderation": {"mode": "block"}}, "moderation", "does not moderate"),
        ({"verbosity": "low"}, "verbosity", "how long to answer"),
        (
            {"stream": True, "stream_options": {"include_obfuscation": "no"}},
            "include_obfuscation",
            "true or false",
        ),
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


@pytest.mark.parametrize("logprobs", [0, 1, 5, True])
def test_a_completion_refuses_log_probabilities_of_any_count(logprobs: object) -> None:
    body = {"model": "m", "prompt": "Once", "logprobs": logprobs}
    with pytest.raises(ApiError) as caught:
        parse_completion_request(body, max_new_tokens_limit=1024)
    assert error_param(caught.value) == "logprobs"
