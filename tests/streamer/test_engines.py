"""The engine table: the body each engine takes for each kind of request, in its own words, with
the same meaning as TGI's; what it cannot honour is refused by name."""

from __future__ import annotations

import json
from typing import Any

import pytest
from streamer import contract
from streamer.decoder import StreamDecoder
from streamer.engines import ENGINES_BY_NAME, LMI, TGI, VLLM, Engine, engine_named
from streamer.errors import ApiError
from streamer.lmi_decoder import LmiTokenDecoder
from streamer.openai_decoder import OpenAIChunkDecoder
from streamer.prompt_template import Message
from streamer.validation import KNOWN_PARAMETERS, GenerateRequest, parse_request

LIMIT = 1024
CHAT = (Message("system", "Be brief."), Message("user", "Hi 日本"))


def prompt(**parameters: object) -> GenerateRequest:
    return GenerateRequest(inputs="Hello 日本", parameters=parameters, default_max_new_tokens=100)


def chat(**parameters: object) -> GenerateRequest:
    return GenerateRequest(
        inputs="", messages=CHAT, parameters=parameters, default_max_new_tokens=100
    )


def body(engine: Engine, request: GenerateRequest) -> dict[str, Any]:
    sent = engine.route(request).body(request)
    assert "日本".encode() in sent  # raw UTF-8, as TGI's body
    return json.loads(sent)


def test_the_table_has_a_row_for_each_engine_the_contract_names() -> None:
    assert tuple(ENGINES_BY_NAME) == contract.ENGINES
    assert [engine_named(name).name for name in contract.ENGINES] == list(contract.ENGINES)


def test_each_engine_reads_its_own_stream() -> None:
    assert isinstance(TGI.prompt.stream.decoder(max_line_bytes=10), StreamDecoder)
    assert isinstance(LMI.prompt.stream.decoder(max_line_bytes=10), LmiTokenDecoder)
    assert TGI.chat is None
    assert LMI.chat is not None
    assert VLLM.chat is not None
    for decoder in (LMI.chat.stream.decoder, VLLM.prompt.stream.decoder, VLLM.chat.stream.decoder):
        assert isinstance(decoder(max_line_bytes=10), OpenAIChunkDecoder)


# --- The bodies -----------------------------------------------------------------------------------


def test_tgis_body_is_the_relays_own_request() -> None:
    request = prompt(temperature=0.5, stop=["\n"])
    assert TGI.route(request).body(request) == request.upstream_body()
    assert body(TGI, request) == {
        "inputs": "Hello 日本",
        "parameters": {
            "details": True,
            "temperature": 0.5,
            "stop": ["\n"],
            "max_new_tokens": 100,
            "return_full_text": False,
        },
        "stream": True,
    }


def test_lmis_prompt_body_uses_lmis_names() -> None:
    request = prompt(
        max_new_tokens=20,
        temperature=0.7,
        top_k=40,
        top_p=0.9,
        repetition_penalty=1.1,
        frequency_penalty=0.5,
        seed=7,
        stop=["\nUser:"],
    )
    assert body(LMI, request) == {
        "inputs": "Hello 日本",
        "parameters": {
            "do_sample": True,
            "max_new_tokens": 20,
            "details": True,
            "temperature": 0.7,
            "top_k": 40,
            "top_p": 0.9,
            "repetition_penalty": 1.1,
            "frequency_penalty": 0.5,
            "seed": 7,
            "stop_sequences": ["\nUser:"],
        },
        "stream": True,
    }


def test_lmis_prompt_body_is_greedy_as_tgis_default_is_and_always_asks_for_details() -> None:
    assert body(LMI, prompt()) == {
        "inputs": "Hello 日本",
        "parameters": {"do_sample": False, "max_new_tokens": 100, "details": True},
        "stream": True,
    }
    # A caller who turns details off gets no finish reason, as from TGI.
    assert body(LMI, prompt(details=False))["parameters"]["details"] is False


def test_vllms_prompt_body_is_an_openai_completion() -> None:
    request = prompt(max_new_tokens=20, do_sample=True, top_k=40, seed=3, stop=["##"])
    assert body(VLLM, request) == {
        "prompt": "Hello 日本",
        "max_tokens": 20,
        "temperature": 1.0,
        "top_k": 40,
        "seed": 3,
        "stop": ["##"],
        "stream": True,
        "stream_options": {"include_usage": True},
    }


@pytest.mark.parametrize("engine", [LMI, VLLM], ids=["lmi", "vllm"])
def test_a_chat_the_engine_lays_out_is_sent_as_messages(engine: Engine) -> None:
    sent = body(engine, chat(max_new_tokens=50, temperature=0.2, top_p=0.5, stop=["x"]))
    assert sent == {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi 日本"},
        ],
        "max_tokens": 50,
        "temperature": 0.2,
        "top_p": 0.5,
        "stop": ["x"],
        "stream": True,
        "stream_options": {"include_usage": True},
    }


@pytest.mark.parametrize(
    ("parameters", "temperature"),
    [
        ({}, 0.0),  # TGI's default: the most likely token every time
        ({"do_sample": False}, 0.0),
        ({"do_sample": True}, 1.0),  # sampling at the OpenAI servers' default
        ({"do_sample": True, "temperature": 0.3}, 0.3),
        # TGI samples whenever a sampling setting is given, do_sample or not.
        ({"temperature": 0.3}, 0.3),
        ({"do_sample": False, "top_k": 5}, 1.0),
        ({"top_p": 0.5}, 1.0),
        ({"temperature": 1.0}, 0.0),  # 1 changes nothing, so TGI stays greedy
    ],
)
def test_greedy_or_sampled_means_what_it_means_to_tgi(
    parameters: dict[str, object], temperature: float
) -> None:
    assert body(VLLM, prompt(**parameters))["temperature"] == temperature
    assert body(VLLM, chat(**parameters))["temperature"] == temperature
    if "top_k" not in parameters:  # which LMI's chats do not take
        assert body(LMI, chat(**parameters))["temperature"] == temperature
    assert body(LMI, prompt(**parameters))["parameters"]["do_sample"] is (temperature != 0.0)


def test_the_answers_length_is_always_sent_within_the_limit() -> None:
    request = parse_request(b'{"inputs": "x"}', max_new_tokens_limit=30)
    assert body_of(LMI, request)["parameters"]["max_new_tokens"] == 30
    assert body_of(VLLM, request)["max_tokens"] == 30


def body_of(engine: Engine, request: GenerateRequest) -> dict[str, Any]:
    return json.loads(engine.route(request).body(request))


@pytest.mark.parametrize("engine", [LMI, VLLM], ids=["lmi", "vllm"])
def test_what_changes_nothing_the_caller_sees_is_accepted_and_not_sent(engine: Engine) -> None:
    sent = body(
        engine,
        prompt(
            best_of=1,
            return_full_text=True,
            watermark=False,
            decoder_input_details=False,
            top_n_tokens=0,
            truncate=None,
            grammar=None,
        ),
    )
    flat = json.dumps(sent)
    for name in (
        "best_of",
        "return_full_text",
        "watermark",
        "decoder_input",
        "top_n",
        "truncate",
        "grammar",
        "echo",
    ):
        assert name not in flat


# --- What an engine cannot honour ---------------------------------------------------------------

TGI_ONLY = {
    "typical_p": 0.5,
    "truncate": 100,
    "watermark": True,
    "decoder_input_details": True,
    "top_n_tokens": 3,
    "grammar": {"type": "json", "value": {}},
    "adapter_id": "my-lora",
}


@pytest.mark.parametrize("name", sorted(TGI_ONLY))
@pytest.mark.parametrize(
    ("engine", "kind", "where"),
    [
        (LMI, "prompt", "LMI"),
        (LMI, "chat", "LMI for a chat it lays out itself"),
        (VLLM, "prompt", "vLLM"),
        (VLLM, "chat", "vLLM"),
    ],
)
def test_tgis_own_parameters_are_refused_naming_them_and_the_engine(
    name: str, engine: Engine, kind: str, where: str
) -> None:
    request = (prompt if kind == "prompt" else chat)(**{name: TGI_ONLY[name]})
    with pytest.raises(ApiError) as caught:
        engine.route(request)
    assert caught.value.kind == "invalid_request"
    assert caught.value.status == 422
    assert caught.value.message == (
        f"parameters.{name} has no equivalent on {where}, the server this model runs on: "
        "leave it out."
    )


@pytest.mark.parametrize("name", ["top_k", "repetition_penalty"])
def test_lmis_chats_take_only_openais_sampling(name: str) -> None:
    with pytest.raises(ApiError, match=f"parameters.{name} has no equivalent on LMI for a chat"):
        LMI.route(chat(**{name: 2}))
    LMI.route(prompt(**{name: 2}))  # LMI's own prompts take them
    VLLM.route(chat(**{name: 2}))  # and so does vLLM


def test_tgi_honours_every_parameter_the_relay_checks() -> None:
    values = {
        "best_of": 1,
        "temperature": 0.5,
        "repetition_penalty": 1.1,
        "frequency_penalty": 0.1,
        "top_k": 3,
        "top_p": 0.5,
        "typical_p": 0.5,
        "do_sample": True,
        "max_new_tokens": 3,
        "return_full_text": False,
        "stop": ["x"],
        "truncate": 10,
        "watermark": True,
        "details": True,
        "decoder_input_details": False,
        "seed": 1,
        "top_n_tokens": 2,
        "grammar": {"type": "regex", "value": "a+"},
        "adapter_id": "lora",
    }
    assert set(values) == set(KNOWN_PARAMETERS)
    request = prompt(**values)
    assert TGI.route(request) is TGI.prompt
    assert json.loads(TGI.route(request).body(request))["parameters"]["adapter_id"] == "lora"


def test_a_chat_for_an_engine_without_a_chat_template_is_a_bug_not_a_request() -> None:
    """Settings refuse ENGINE_CHAT_TEMPLATE on TGI, so the relay never makes such a request."""
    with pytest.raises(ValueError, match="does not lay out chats"):
        TGI.route(chat())
