"""Responses API bodies: translated to the chat request they amount to, refusals in its words."""

from __future__ import annotations

from typing import Any

import pytest
from streamer.errors import ApiError
from streamer.openai.errors import error_param, openai_status
from streamer.openai.requests import parse_chat_request
from streamer.openai.response_requests import ResponsesRequest, parse_responses_request
from streamer.prompt_template import PromptTemplate

TEMPLATE = PromptTemplate(
    user="User: {content}\n",
    assistant="Falcon: {content}\n",
    system="System: {content}\n",
    generation="Falcon:",
    stop=("\nUser:",),
)
LIMIT = 1024


def _user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def responses(**fields: Any) -> ResponsesRequest:
    return parse_responses_request(
        {"model": "anything", "input": "Hi", **fields},
        template=TEMPLATE,
        max_new_tokens_limit=LIMIT,
    )


def refusal(**fields: Any) -> ApiError:
    with pytest.raises(ApiError) as caught:
        responses(**fields)
    return caught.value


def chat(messages: list[dict[str, str]], **fields: Any) -> Any:
    return parse_chat_request(
        {"messages": messages, **fields}, template=TEMPLATE, max_new_tokens_limit=LIMIT
    )


def test_a_string_input_with_instructions_is_the_chat_request_it_amounts_to() -> None:
    request = responses(
        instructions="Be brief.", max_output_tokens=12, temperature=0.5, top_p=0.9, stream=True
    )
    expected = chat(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        max_completion_tokens=12,
        temperature=0.5,
        top_p=0.9,
        stream=True,
    )
    assert request.chat == expected
    assert request.chat.generate.inputs == "System: Be brief.\nUser: Hi\nFalcon:"
    assert request.chat.generate.parameters["max_new_tokens"] == 12
    assert (request.instructions, request.max_output_tokens) == ("Be brief.", 12)
    assert (request.temperature, request.top_p) == (0.5, 0.9)


def test_defaults_are_the_chat_routes_and_the_echo_says_openais() -> None:
    request = responses()
    assert request.chat == chat([{"role": "user", "content": "Hi"}])
    assert (request.temperature, request.top_p, request.max_output_tokens) == (1.0, 1.0, None)
    assert request.chat.stream is False


def test_messages_with_text_parts_and_returned_output_items_are_a_conversation() -> None:
    returned = {
        "id": "msg_1",
        "type": "message",
        "status": "completed",
        "role": "assistant",
        "phase": None,
        "content": [{"type": "output_text", "text": "Hello.", "annotations": [], "logprobs": []}],
    }
    request = responses(
        input=[
            {"role": "developer", "content": "Be kind."},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]},
            returned,
            {"role": "user", "content": [{"type": "input_text", "text": "Again"}]},
        ]
    )
    assert request.chat.generate.inputs == (
        "System: Be kind.\nUser: Hi\nFalcon: Hello.\nUser: Again\nFalcon:"
    )


@pytest.mark.parametrize("role", ["system", "developer"])
def test_instructions_go_before_a_system_message_the_input_starts_with(role: str) -> None:
    request = responses(
        instructions="Be brief.", input=[{"role": role, "content": "Be kind."}, _user("Hi")]
    )
    assert request.chat.generate.inputs == "System: Be brief.\n\nBe kind.\nUser: Hi\nFalcon:"


def test_the_chat_parsers_refusals_name_this_apis_fields_and_positions() -> None:
    # The instructions' message comes first in the chat, not in input: positions still match.
    error = refusal(instructions="Be brief.", input=[_user("Hi"), _user("Hi again")])
    assert error.message.startswith("input[1] should be a")
    assert error_param(error) == "input"
    error = refusal(input=[_user("   ")])
    assert error.message.startswith("input[0].content is empty")
    error = refusal(max_output_tokens=0)
    assert error_param(error) == "max_output_tokens"
    assert error.message.startswith("max_output_tokens must be a whole number from 1 to 1024")
    error = refusal(temperature=3)
    assert error_param(error) == "temperature"
    assert openai_status(error) == 400


TOOL_OUTPUT = {"type": "function_call_output", "call_id": "c", "output": "1"}
FILE = {"type": "input_file", "file_id": "f"}
CITED = {
    "role": "assistant",
    "content": [{"type": "output_text", "text": "a", "annotations": [{"type": "url_citation"}]}],
}


@pytest.mark.parametrize(
    ("fields", "param", "words"),
    [
        ({"previous_response_id": "resp_1"}, "previous_response_id", "keeps no responses"),
        ({"conversation": "conv_1"}, "conversation", "keeps no responses"),
        ({"background": True}, "background", "keeps no responses"),
        ({"prompt": {"id": "pmpt_1"}}, "prompt", "no stored prompts"),
        ({"tools": [{"type": "web_search"}]}, "tools", "do not call tools"),
        ({"tool_choice": "required"}, "tool_choice", "do not call tools"),
        ({"reasoning": {"effort": "low"}}, "reasoning", "do not reason"),
        ({"include": ["message.output_text.logprobs"]}, "include", "only the answer's text"),
        ({"top_logprobs": 2}, "top_logprobs", "log probabilities"),
        ({"truncation": "auto"}, "truncation", "whole input"),
        ({"text": {"format": {"type": "json_object"}}}, "text.format", "only text"),
        ({"text": {"verbosity": "low"}}, "text.verbosity", "how much to write"),
        ({"stream_options": {"include_obfuscation": False}}, "stream_options", "stream is true"),
        ({"frequency_penalty": 1}, "frequency_penalty", "Unrecognized"),
        ({"instructions": ["Be brief."]}, "instructions", "must be a string"),
        ({"input": []}, "input", "non-empty list"),
        ({"input": " "}, "input", "empty"),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input", "item_reference"),
        ({"input": [TOOL_OUTPUT]}, "input", "function_call_output"),
        ({"input": [{"role": "tool", "content": "1"}]}, "input", "input[0].role"),
        ({"input": [{**_user("Hi"), "name": "x"}]}, "input", "cannot honour: name"),
        ({"input": [{"role": "user", "content": [FILE]}]}, "input", "text only"),
        ({"input": [CITED, _user("Hi")]}, "input", "annotations"),
        ({"input": [{"role": "user", "content": 3}]}, "input", "must be a string or a list"),
    ],
)  # fmt: skip
def test_what_cannot_be_honoured_is_refused_naming_the_parameter(
    fields: dict[str, Any], param: str, words: str
) -> None:
    error = refusal(**fields)
    assert error.kind == "invalid_request"
    assert error_param(error) == param
    assert words in error.message


def test_harmless_fields_and_neutral_values_are_accepted() -> None:
    request = responses(
        store=True,
        metadata={"team": "a"},
        user="u",
        service_tier="auto",
        prompt_cache_key="k",
        prompt_cache_retention="24h",
        safety_identifier="s",
        parallel_tool_calls=True,
        max_tool_calls=3,
        tools=[],
        tool_choice="auto",
        reasoning=None,
        include=[],
        top_logprobs=0,
        truncation="disabled",
        text={"format": {"type": "text"}, "verbosity": "medium"},
        background=False,
        stream=True,
        stream_options={"include_obfuscation": True},
    )
    assert request.chat.generate.inputs == "User: Hi\nFalcon:"
    assert request.metadata == {"team": "a"}


def test_a_body_that_is_not_an_object_or_lacks_input_is_refused() -> None:
    with pytest.raises(ApiError) as caught:
        parse_responses_request([], template=TEMPLATE, max_new_tokens_limit=LIMIT)
    assert caught.value.kind == "invalid_body"
    with pytest.raises(ApiError) as caught:
        parse_responses_request({"model": "m"}, template=TEMPLATE, max_new_tokens_limit=LIMIT)
    assert error_param(caught.value) == "input"


def test_without_a_prompt_template_the_input_cannot_be_laid_out() -> None:
    with pytest.raises(ApiError) as caught:
        parse_responses_request({"input": "Hi"}, template=None, max_new_tokens_limit=LIMIT)
    assert error_param(caught.value) == "input"
    assert "/v1/completions" in caught.value.message
