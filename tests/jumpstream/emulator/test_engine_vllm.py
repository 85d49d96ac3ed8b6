"""The emulator as AWS's vLLM container (``--engine vllm``), through the real boto3: OpenAI's
server-sent chunks for completions and chats, vLLM's 400s, and every fault in vLLM's shape."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from jumpstream.emulator.chat import ChatMessage, render
from jumpstream.emulator.engine_vllm import SERVED_MODEL_NAME, VLLM_ERRORS
from jumpstream.emulator.tokenizer import estimate_input_tokens
from tests.jumpstream.emulator.emulator_harness import (
    ENDPOINT,
    PROMPT,
    QUESTION,
    invoke_json,
    invoke_whole,
    parse_openai_sse,
    parts_until_error,
    payload_parts,
    shown,
    tokens,
)

USAGE = {"include_usage": True}
#: The context of the model the emulator stands in for by default (Falcon 7B Instruct's).
CONTEXT = 2048


#: The emulator this module's tests run against (conftest.py's `url`).
EMULATOR_ARGS = ("--engine", "vllm")


def rendered(messages: list[dict[str, str]]) -> str:
    return render([ChatMessage(m["role"], m["content"]) for m in messages])


def events(client: Any, body: dict[str, Any]) -> list[Any]:
    response = invoke_json(client, body)
    assert response["ContentType"] == "text/event-stream; charset=utf-8"
    return parse_openai_sse(b"".join(payload_parts(response)))


def test_a_completion_streams_text_chunks_then_usage_then_done(client: Any) -> None:
    got = events(
        client, {"prompt": PROMPT, "max_tokens": 80, "stream": True, "stream_options": USAGE}
    )
    expected = tokens(PROMPT, 80)
    assert expected[-1].special
    assert got[-1] == "[DONE]"
    *chunks, usage = got[:-1]
    assert {c["object"] for c in chunks} == {usage["object"]} == {"text_completion"}
    assert {c["model"] for c in chunks} == {SERVED_MODEL_NAME}
    assert [c["choices"][0]["text"] for c in chunks] == [shown(t) for t in expected]
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None] * (len(chunks) - 1) + [
        "stop"
    ]
    assert chunks[-1]["choices"][0]["stop_reason"] is None  # the EOS token, not a stop string
    assert usage["choices"] == []
    assert usage["usage"] == {
        "prompt_tokens": estimate_input_tokens(PROMPT),
        "total_tokens": estimate_input_tokens(PROMPT) + len(expected),
        "completion_tokens": len(expected),
    }


def test_without_include_usage_there_is_no_usage_chunk(client: Any) -> None:
    got = events(client, {"prompt": PROMPT, "max_tokens": 4, "stream": True})
    assert len(got) == 5
    assert got[-1] == "[DONE]"
    assert got[-2]["choices"][0]["finish_reason"] == "length"


def test_a_chat_starts_with_the_assistants_role_and_ends_with_stop(client: Any) -> None:
    got = events(
        client, {"messages": QUESTION, "max_tokens": 80, "stream": True, "stream_options": USAGE}
    )
    expected = tokens(rendered(QUESTION), 80, chat=True)
    first, *chunks, usage, done = got
    assert done == "[DONE]"
    assert first["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert [c["choices"][0]["delta"] for c in chunks] == [{"content": shown(t)} for t in expected]
    assert not chunks[0]["choices"][0]["delta"]["content"].startswith(" ")
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"][0]["stop_reason"] is None
    assert all("stop_reason" not in c["choices"][0] for c in chunks[:-1])
    assert {c["object"] for c in got[:-1]} == {"chat.completion.chunk"}
    assert usage["usage"]["prompt_tokens"] == estimate_input_tokens(rendered(QUESTION))
    assert usage["usage"]["completion_tokens"] == len(expected)


def test_a_matched_stop_string_is_cut_from_the_answer_and_named(client: Any) -> None:
    natural = [shown(t) for t in tokens(PROMPT, 80)]
    stop = natural[4].strip()
    got = events(client, {"prompt": PROMPT, "stop": stop, "max_tokens": 80, "stream": True})
    chunks = got[:-1]
    text = "".join(c["choices"][0]["text"] for c in chunks)
    assert text == "".join(natural[:5]).removesuffix(stop)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"][0]["stop_reason"] == stop


def test_without_max_tokens_the_answer_may_fill_the_context(client: Any) -> None:
    got = events(client, {"prompt": "word " * 2040 + "[[length:100]]", "stream": True})
    chunks = got[:-1]
    assert len(chunks) == CONTEXT - 2040
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"


def test_spellings_change_only_the_bytes(client: Any) -> None:
    body = {"prompt": PROMPT, "max_tokens": 9, "stream": True}
    plain = events(client, body)
    odd = invoke_json(client, {**body, "prompt": PROMPT + "[[nospace]][[crlf]][[keepalive]]"})
    raw = b"".join(payload_parts(odd))
    assert raw.startswith(b":\r\n\r\n")
    assert b"data: " not in raw
    assert raw.endswith(b"data:[DONE]\r\n\r\n")
    assert parse_openai_sse(raw) == plain


def test_split_cuts_anywhere_and_rebuilds_the_same_stream(client: Any) -> None:
    body = {"messages": [{"role": "user", "content": "日本の首都は？"}], "max_tokens": 10}
    whole = b"".join(payload_parts(invoke_json(client, {**body, "stream": True})))
    cut = [{"role": "user", "content": "日本の首都は？[[split:random]]"}]
    parts = payload_parts(invoke_json(client, {**body, "messages": cut, "stream": True}))
    assert len(parts) > 10
    assert b"".join(parts) == whole


def test_documents_for_bodies_that_do_not_stream(client: Any) -> None:
    completion = json.loads(
        invoke_whole(client, {"prompt": PROMPT, "max_tokens": 6})["Body"].read()
    )
    assert completion["object"] == "text_completion"
    assert completion["choices"][0]["text"] == "".join(shown(t) for t in tokens(PROMPT, 6))
    assert completion["choices"][0]["finish_reason"] == "length"
    assert completion["usage"]["completion_tokens"] == 6
    response = invoke_json(client, {"messages": QUESTION, "max_tokens": 80})
    assert response["ContentType"] == "application/json"
    (part,) = payload_parts(response)
    chat = json.loads(part)
    expected = tokens(rendered(QUESTION), 80, chat=True)
    assert chat["object"] == "chat.completion"
    assert chat["choices"][0]["message"] == {
        "role": "assistant",
        "content": "".join(shown(t) for t in expected),
    }
    assert chat["choices"][0]["finish_reason"] == "stop"
    assert chat["usage"]["completion_tokens"] == len(expected)


def test_invoke_endpoint_returns_a_streamed_body_whole(client: Any) -> None:
    body = {"prompt": PROMPT, "max_tokens": 5, "stream": True, "stream_options": USAGE}
    whole = invoke_whole(client, body)
    assert whole["ContentType"] == "text/event-stream; charset=utf-8"
    assert whole["Body"].read() == b"".join(payload_parts(invoke_json(client, body)))


# --- Failures, in vLLM's shapes -----------------------------------------------------------------


def refusal(client: Any, body: Any) -> tuple[int, dict[str, Any]]:
    """The container's status and vLLM's error object from the ModelError SageMaker raises."""
    with pytest.raises(client.exceptions.ModelError) as raised:
        invoke_json(client, body)
    error = raised.value.response
    original = json.loads(error["OriginalMessage"])
    assert set(original) == {"error"}
    assert set(original["error"]) == {"message", "type", "param", "code"}
    assert original["error"]["code"] == error["OriginalStatusCode"]
    return error["OriginalStatusCode"], original["error"]


NO_HANDLER = "Cannot find suitable handler for request."


@pytest.mark.parametrize(
    "body",
    [
        {"inputs": PROMPT, "parameters": {"max_new_tokens": 5}, "stream": True},
        {"text": PROMPT},
        {"prompt": PROMPT, "max_tokens": "five"},
        {"prompt": PROMPT, "stream": "yes"},
        {"messages": "hello", "stream": True},
        {"messages": [{"role": "user"}], "stream": True},
        ["not", "an", "object"],
    ],
)
def test_a_body_vllm_has_no_handler_for_is_a_400(client: Any, body: Any) -> None:
    status, error = refusal(client, body)
    assert status == 400
    assert error["type"] == "BadRequestError"
    assert error["message"].startswith(NO_HANDLER)
    assert "ChatCompletionRequest" in error["message"]


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"temperature": -0.5}, "temperature must be non-negative, got -0.5."),
        ({"top_p": 0}, "top_p must be in (0, 1], got 0.0."),
        ({"max_tokens": 0}, "max_tokens must be at least 1, got 0."),
        ({"frequency_penalty": 3}, "frequency_penalty must be in [-2, 2], got 3.0."),
        ({"stream": False, "stream_options": USAGE}, "Stream options can only be defined"),
        (
            {"max_tokens": 2045},
            "This model's maximum context length is 2048 tokens. However, you requested 2049 "
            "tokens (4 in the messages, 2045 in the completion).",
        ),
    ],
)
def test_values_vllm_refuses_are_a_400_before_the_stream(
    client: Any, fields: dict[str, Any], says: str
) -> None:
    body = {"prompt": "one two three four", "stream": True, **fields}
    status, error = refusal(client, body)
    assert status == 400
    assert says in error["message"]


def test_a_prompt_that_fills_the_context_is_refused(client: Any) -> None:
    _, error = refusal(client, {"messages": [{"role": "user", "content": "word " * 2100}]})
    assert "However, your messages resulted in 2102 tokens" in error["message"]


def test_a_body_that_is_not_json_is_a_400(client: Any) -> None:
    with pytest.raises(client.exceptions.ModelError) as raised:
        client.invoke_endpoint_with_response_stream(
            EndpointName=ENDPOINT, Body=b"{oops", ContentType="application/json"
        )
    assert raised.value.response["OriginalStatusCode"] == 400
    assert "JSON decode error" in raised.value.response["OriginalMessage"]


def test_what_the_emulator_does_not_emulate_is_its_own_usage_error(client: Any) -> None:
    with pytest.raises(ClientError) as raised:
        invoke_json(client, {"prompt": ["a", "b"], "stream": True})
    assert raised.value.response["Error"]["Code"] == "ValidationError"
    assert raised.value.response["Error"]["Message"].startswith("jumpstream emulator:")


def test_a_failure_before_the_stream_is_vllms_500(client: Any) -> None:
    status, error = refusal(client, {"prompt": f"{PROMPT}[[fault:model_error]]", "stream": True})
    assert status == 500
    assert error["type"] == "InternalServerError"


@pytest.mark.parametrize("kind", list(VLLM_ERRORS))
@pytest.mark.parametrize("chat", [False, True], ids=["completion", "chat"])
def test_engine_faults_are_an_error_event_then_done(client: Any, kind: str, chat: bool) -> None:
    prompt = f"{PROMPT}[[fault:{kind}@3]]"
    body: dict[str, Any] = (
        {"messages": [{"role": "user", "content": prompt}]} if chat else {"prompt": prompt}
    )
    got = events(client, {**body, "max_tokens": 20, "stream": True, "stream_options": USAGE})
    texts = got[1:4] if chat else got[0:3]
    assert all(chunk["choices"][0]["finish_reason"] is None for chunk in texts)
    message, error_type, code = VLLM_ERRORS[kind]
    assert got[-2:] == [
        {"error": {"message": message, "type": error_type, "param": None, "code": code}},
        "[DONE]",
    ]
    assert len(got) == len(texts) + (3 if chat else 2)


@pytest.mark.parametrize("kind", list(VLLM_ERRORS))
def test_engine_faults_without_streaming_are_http_errors(client: Any, kind: str) -> None:
    status, error = refusal(client, {"prompt": f"{PROMPT}[[fault:{kind}@2]]"})
    message, error_type, code = VLLM_ERRORS[kind]
    assert (status, error["type"], error["message"]) == (code, error_type, message)


def test_a_fault_at_the_start_of_a_chat_comes_after_the_role_chunk(client: Any) -> None:
    asked = [{"role": "user", "content": "hi [[fault:overloaded]]"}]
    got = events(client, {"messages": asked, "stream": True})
    assert got[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert got[1]["error"]["code"] == 503
    assert got[2:] == ["[DONE]"]


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        ("stream_broken", "ModelStreamError"),
        ("timeout", "ModelStreamError"),
        ("internal_stream", "InternalStreamFailure"),
    ],
)
def test_sagemaker_faults_break_vllms_stream_mid_iteration(
    client: Any, kind: str, code: str
) -> None:
    body = {"prompt": f"{PROMPT}[[fault:{kind}@2]]", "stream": True, "stream_options": USAGE}
    received, error = parts_until_error(invoke_json(client, body))
    assert len(parse_openai_sse(b"".join(received))) == 2
    assert error.response["Error"]["Code"] == code


def test_truncate_ends_without_finish_usage_or_done(client: Any) -> None:
    body = {"prompt": f"{PROMPT}[[fault:truncate@4]]", "stream": True, "stream_options": USAGE}
    got = events(client, body)
    assert len(got) == 4
    assert all(chunk["choices"][0]["finish_reason"] is None for chunk in got)


def test_a_fault_past_the_end_costs_the_last_token_and_what_follows(client: Any) -> None:
    body = {"prompt": f"{PROMPT}[[fault:truncate@99]]", "max_tokens": 6, "stream": True}
    got = events(client, body)
    assert len(got) == 5
    assert "[DONE]" not in got
