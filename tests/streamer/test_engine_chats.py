"""Chats an engine lays out with the model's own chat template (ENGINE_CHAT_TEMPLATE): checked
generically, sent as `messages` as they are, never laid out by the relay; and an engine's refusal
of a parameter it cannot honour, on the routes, before SageMaker is called."""

from __future__ import annotations

import json
from typing import Any

import pytest
from streamer.errors import ApiError
from streamer.openai.requests import parse_chat_request
from streamer.openai.response_requests import parse_responses_request
from streamer.prompt_template import Message
from streamer.validation import parse_request

from tests.streamer.engine_streams import vllm_chat_answer, vllm_completion_answer
from tests.streamer.support import ScriptedUpstream, call, make_app

LIMIT = 1024
ENGINE_CHAT = {"serving_engine": "vllm", "engine_chat_template": True}
REGEX = {"type": "regex", "value": "a+"}


def text_part(text: str) -> dict[str, str]:
    return {"type": "text", "text": text}


def engine_chat(body: dict[str, Any]) -> Any:
    return parse_request(json.dumps(body).encode(), max_new_tokens_limit=LIMIT, engine_chat=True)


def refusal(body: dict[str, Any]) -> ApiError:
    with pytest.raises(ApiError) as caught:
        engine_chat(body)
    return caught.value


# --- POST / -------------------------------------------------------------------------------------


def test_messages_are_kept_as_they_are_for_the_engine() -> None:
    request = engine_chat(
        {
            "messages": [
                {"role": "developer", "content": "Be brief."},
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "Hi "}, {"type": "text", "text": "日本"}],
                },
                {"role": "assistant", "content": "Hello.", "refusal": None},
                {"role": "user", "content": "And?", "name": "ann"},
            ],
            "parameters": {"max_new_tokens": 9},
        }
    )
    assert request.messages == (
        Message("system", "Be brief."),  # OpenAI's newer name for it
        Message("user", "Hi 日本"),  # text parts joined
        Message("assistant", "Hello."),
        Message("user", "And?"),
    )
    assert request.inputs == ""
    assert request.added_stop_sequences == ()  # the engine knows the model's stops
    assert not request.chat_turn  # the engine's answer as it is
    assert request.max_new_tokens == 9


def test_the_engines_template_decides_the_conversations_shape() -> None:
    """No alternation rule of the relay's: the model's own template has its own, and the engine
    says so if the chat breaks it."""
    request = engine_chat(
        {
            "messages": [
                {"role": "user", "content": "a"},
                {"role": "user", "content": "b"},
                {"role": "system", "content": "late"},
            ]
        }
    )
    assert [message.role for message in request.messages] == ["user", "user", "system"]


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"messages": []}, "messages must be a non-empty array"),
        ({"messages": [{"role": "system", "content": "x"}]}, "messages need a user message"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "role must be system, user or"),
        ({"messages": [{"role": "user", "content": ""}]}, "a user message needs text"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
            "must be a text part",
        ),
        ({"messages": [{"role": "user", "content": "x"}], "inputs": "y"}, "not both"),
    ],
)
def test_a_bad_chat_is_refused_before_the_engine(body: dict[str, Any], says: str) -> None:
    error = refusal(body)
    assert (error.kind, error.status) == ("invalid_request", 422)
    assert says in error.message


def test_the_native_route_sends_the_messages_to_vllm() -> None:
    upstream = ScriptedUpstream(vllm_chat_answer(["Hel", "lo"]))
    body = {"messages": [{"role": "user", "content": "Hi"}], "parameters": {"stop": ["x"]}}
    response = call(make_app(upstream, **ENGINE_CHAT), json_body=body)
    assert (response.status_code, response.text) == (200, "Hello")
    (sent,) = upstream.bodies
    assert sent["messages"] == [{"role": "user", "content": "Hi"}]
    assert sent["stop"] == ["x"]
    assert "inputs" not in sent


@pytest.mark.parametrize(
    ("settings", "parameters", "name", "where"),
    [
        (
            {"serving_engine": "vllm"},
            {"grammar": {"type": "regex", "value": "a+"}},
            "grammar",
            "vLLM",
        ),
        ({"serving_engine": "lmi"}, {"watermark": True}, "watermark", "LMI"),
        (
            {"serving_engine": "lmi", "engine_chat_template": True},
            {"top_k": 5},
            "top_k",
            "LMI for a chat it lays out itself",
        ),
    ],
)
def test_a_parameter_the_engine_cannot_honour_is_a_422_and_sagemaker_is_never_called(
    settings: dict[str, Any], parameters: dict[str, Any], name: str, where: str
) -> None:
    upstream = ScriptedUpstream(vllm_completion_answer(["never"]))
    prompt: dict[str, Any] = (
        {"messages": [{"role": "user", "content": "Hi"}]}
        if settings.get("engine_chat_template")
        else {"inputs": "Hi"}
    )
    response = call(make_app(upstream, **settings), json_body={**prompt, "parameters": parameters})
    assert response.status_code == 422
    assert response.json() == {
        "error": (
            f"parameters.{name} has no equivalent on {where}, the server this model runs on: "
            "leave it out."
        ),
        "type": "invalid_request",
    }
    assert upstream.bodies == []


def test_a_value_that_asks_for_nothing_is_accepted_on_any_engine() -> None:
    upstream = ScriptedUpstream(vllm_completion_answer(["ok"]))
    parameters = {"watermark": False, "decoder_input_details": False, "top_n_tokens": None}
    body = {"inputs": "Hi", "parameters": parameters}
    response = call(make_app(upstream, serving_engine="vllm"), json_body=body)
    assert (response.status_code, response.text) == (200, "ok")


# --- OpenAI's routes ----------------------------------------------------------------------------


def test_an_openai_chat_for_the_engine_is_its_messages_and_openais_sampling() -> None:
    request = parse_chat_request(
        {"messages": [{"role": "user", "content": "Hi"}], "temperature": 0, "stop": "END"},
        template=None,
        max_new_tokens_limit=LIMIT,
        engine_chat=True,
    )
    assert request.generate.messages == (Message("user", "Hi"),)
    assert request.generate.parameters == {"do_sample": False, "stop": ["END"]}
    assert request.stop_sequences == ("END",)  # still never shown, as OpenAI promises
    assert not request.generate.chat_turn


def test_the_responses_instructions_lead_the_engines_messages() -> None:
    request = parse_responses_request(
        {"instructions": "Be brief.", "input": "Hi"},
        template=None,
        max_new_tokens_limit=LIMIT,
        engine_chat=True,
    )
    assert request.chat.generate.messages == (
        Message("system", "Be brief."),
        Message("user", "Hi"),
    )


def test_without_a_layout_of_either_kind_a_chat_is_refused_with_a_way_out() -> None:
    upstream = ScriptedUpstream(vllm_completion_answer(["never"]))
    app = make_app(upstream, serving_engine="vllm")  # a base model: no chat at all
    chat = {"messages": [{"role": "user", "content": "Hi"}]}
    response = call(app, path="/v1/chat/completions", json_body=chat)
    assert response.status_code == 400
    assert "use /v1/completions" in response.json()["error"]["message"]
    assert upstream.bodies == []
