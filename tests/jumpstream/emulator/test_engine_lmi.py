"""The emulator as an LMI endpoint (``--engine lmi``), through the real boto3: LMI's JSON lines
for prompts and chats, its refusals before the stream, and every fault in LMI's own shape."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from jumpstream.emulator.chat import ChatMessage, render
from jumpstream.emulator.engine_lmi import DEFAULT_MAX_NEW_TOKENS, LMI_ERRORS
from jumpstream.emulator.model import StandInModel
from jumpstream.emulator.request import GenerateRequest
from jumpstream.emulator.tokenizer import estimate_input_tokens
from tests.jumpstream.emulator.emulator_harness import (
    PROMPT,
    QUESTION,
    invoke_json,
    invoke_whole,
    parse_json_lines,
    parts_until_error,
    payload_parts,
    shown,
    tokens,
)

MODEL = StandInModel()


#: The emulator this module's tests run against (conftest.py's `url`).
EMULATOR_ARGS = ("--engine", "lmi")


def text_body(inputs: str, **parameters: Any) -> dict[str, Any]:
    return {"inputs": inputs, "parameters": parameters, "stream": True}


def chat_body(messages: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    return {"messages": messages, "stream": True, **fields}


def lines(client: Any, body: dict[str, Any]) -> list[Any]:
    response = invoke_json(client, body)
    assert response["ContentType"] == "application/jsonlines"
    return parse_json_lines(b"".join(payload_parts(response)))


def rendered(messages: list[dict[str, str]]) -> str:
    return render([ChatMessage(m["role"], m["content"]) for m in messages])


def test_a_prompt_streams_one_token_line_per_token_and_the_last_carries_the_answer(
    client: Any,
) -> None:
    got = lines(client, text_body(PROMPT, max_new_tokens=80, details=True))
    expected = tokens(PROMPT, 80)
    assert expected[-1].special  # the natural answer ends with EOS within 80 tokens
    assert [line["token"] for line in got] == [
        {"id": t.id, "text": shown(t), "log_prob": t.logprob} for t in expected
    ]
    assert all(set(line) == {"token"} for line in got[:-1])
    assert got[-1]["generated_text"] == "".join(shown(t) for t in expected)
    assert got[-1]["details"] == {
        "finish_reason": "eos_token",
        "generated_tokens": len(expected),
        "inputs": PROMPT,
    }


def test_the_wire_is_json_lines_in_pythons_spelling_without_sse_or_done(client: Any) -> None:
    raw = b"".join(payload_parts(invoke_json(client, text_body(PROMPT, max_new_tokens=3))))
    assert raw.startswith(b'{"token": {"id": ')
    assert b"data:" not in raw
    assert b"[DONE]" not in raw
    assert raw.count(b"\n") == 3


def test_details_only_when_asked_and_the_prompt_only_with_return_full_text(client: Any) -> None:
    plain = lines(client, text_body(PROMPT, max_new_tokens=4))
    assert set(plain[-1]) == {"token", "generated_text"}
    full = lines(client, text_body(PROMPT, max_new_tokens=4, return_full_text=True))
    assert full[-1]["generated_text"] == PROMPT + plain[-1]["generated_text"]


def test_lmis_own_default_length_and_its_finish_words(client: Any) -> None:
    got = lines(client, {"inputs": PROMPT, "parameters": {"details": True}, "stream": True})
    assert len(got) == DEFAULT_MAX_NEW_TOKENS
    assert got[-1]["details"]["finish_reason"] == "length"
    stop = shown(tokens(PROMPT, 80)[4])
    stopped = lines(
        client, text_body(PROMPT, max_new_tokens=80, details=True, stop_sequences=[stop])
    )
    # Rolling batch says eos_token for vLLM's `stop`, and vLLM cuts the stop sequence.
    assert stopped[-1]["details"]["finish_reason"] == "eos_token"
    assert len(stopped) == 5
    answer = "".join(shown(t) for t in tokens(PROMPT, 80)[:5])
    assert stopped[-1]["generated_text"] == answer.removesuffix(stop)
    assert "".join(line["token"]["text"] for line in stopped) == answer.removesuffix(stop)


def test_japanese_arrives_as_raw_utf8_cut_anywhere_by_split(client: Any) -> None:
    prompt = "日本の首都はどこですか？"
    whole = b"".join(payload_parts(invoke_json(client, text_body(prompt, max_new_tokens=12))))
    split_parts = payload_parts(
        invoke_json(client, text_body(prompt + "[[split:1]]", max_new_tokens=12))
    )
    assert all(len(part) == 1 for part in split_parts)
    assert b"".join(split_parts) == whole
    texts = [line["token"]["text"] for line in parse_json_lines(whole)]
    assert texts == [shown(t) for t in tokens(prompt, 12)]
    japanese = [text for text in texts if text and not text.isascii()]
    assert japanese
    assert all(text.encode("utf-8") in whole for text in japanese)  # raw UTF-8, no \u escapes


def test_crlf_and_keepalive_change_only_the_spelling(client: Any) -> None:
    plain = lines(client, text_body(PROMPT, max_new_tokens=9))
    response = invoke_json(client, text_body(PROMPT + "[[crlf]][[keepalive]]", max_new_tokens=9))
    raw = b"".join(payload_parts(response))
    assert raw.startswith(b"\r\n")  # a blank line keeps the stream alive before the first token
    assert b"\r\n\r\n" in raw
    assert parse_json_lines(raw) == plain


def test_a_chat_streams_chunks_with_the_role_first_and_lmis_finish_word_last(
    client: Any,
) -> None:
    got = lines(client, chat_body(QUESTION, max_tokens=80))
    expected = tokens(rendered(QUESTION), 80, chat=True)
    assert {chunk["object"] for chunk in got} == {"chat.completion.chunk"}
    assert len({chunk["id"] for chunk in got}) == 1
    deltas = [chunk["choices"][0]["delta"] for chunk in got]
    assert deltas[0] == {"content": shown(expected[0]), "role": "assistant"}
    assert [d["content"] for d in deltas] == [shown(t) for t in expected]
    assert not deltas[0]["content"].startswith(" ")  # a chat turn starts without a space
    finishes = [chunk["choices"][0]["finish_reason"] for chunk in got]
    assert finishes == [None] * (len(got) - 1) + ["eos_token"]
    assert all("usage" not in chunk and "model" not in chunk for chunk in got)


def test_a_chat_cut_by_max_tokens_finishes_with_length(client: Any) -> None:
    got = lines(client, chat_body(QUESTION, max_tokens=5))
    assert len(got) == 5
    assert got[-1]["choices"][0]["finish_reason"] == "length"


def test_directives_in_a_message_steer_the_chat(client: Any) -> None:
    asked = [{"role": "user", "content": [{"type": "text", "text": f"{PROMPT}[[length:3]]"}]}]
    got = lines(client, chat_body(asked, max_tokens=80))
    assert len(got) == 4  # three tokens, then EOS
    assert got[-1]["choices"][0]["finish_reason"] == "eos_token"
    request = GenerateRequest(inputs=rendered([{"role": "user", "content": PROMPT}]))
    expected = MODEL.generate(request, answer_length=3, chat_turn=True).tokens
    assert [chunk["choices"][0]["delta"]["content"] for chunk in got] == [
        shown(t) for t in expected
    ]


def test_a_body_that_does_not_stream_gets_one_json_document(client: Any) -> None:
    body = {"inputs": PROMPT, "parameters": {"max_new_tokens": 6, "details": True}}
    response = invoke_json(client, body)
    assert response["ContentType"] == "application/json"
    (part,) = payload_parts(response)
    document = json.loads(part)
    expected = tokens(PROMPT, 6)
    assert document["generated_text"] == "".join(shown(t) for t in expected)
    assert document["details"]["finish_reason"] == "length"
    assert len(document["details"]["tokens"]) == 6
    whole = invoke_whole(client, body)
    assert whole["ContentType"] == "application/json"
    assert json.loads(whole["Body"].read()) == document


def test_a_chat_that_does_not_stream_gets_a_chat_completion_with_usage(client: Any) -> None:
    reply = json.loads(invoke_whole(client, {"messages": QUESTION, "max_tokens": 7})["Body"].read())
    expected = tokens(rendered(QUESTION), 7, chat=True)
    assert reply["object"] == "chat.completion"
    assert reply["choices"][0]["message"] == {
        "role": "assistant",
        "content": "".join(shown(t) for t in expected),
    }
    assert reply["choices"][0]["finish_reason"] == "length"
    prompt_tokens = estimate_input_tokens(rendered(QUESTION))
    assert reply["usage"] == {
        "prompt_tokens": prompt_tokens,
        "total_tokens": prompt_tokens + 7,
        "completion_tokens": 7,
    }


def test_invoke_endpoint_returns_a_streamed_body_whole(client: Any) -> None:
    body = text_body(PROMPT, max_new_tokens=5)
    streamed = b"".join(payload_parts(invoke_json(client, body)))
    whole = invoke_whole(client, body)
    assert whole["ContentType"] == "application/jsonlines"
    assert whole["Body"].read() == streamed


# --- Failures, in LMI's shapes ------------------------------------------------------------------


def model_error(client: Any, body: Any) -> dict[str, Any]:
    with pytest.raises(client.exceptions.ModelError) as raised:
        invoke_json(client, body)
    return raised.value.response


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"prompt": PROMPT, "stream": True}, "Invalid Request Property: 'inputs'"),
        ({"inputs": ["a", "b"], "stream": True}, "inputs must be a string"),
        ({"inputs": PROMPT, "parameters": [1]}, "parameters must be an object"),
        ([PROMPT], "the payload must be a JSON object"),
        (chat_body([{"content": "no role"}]), "'role' and a 'content' key"),
        (chat_body(QUESTION, temperature=3), "temperature must be between 0 and 2."),
        (chat_body(QUESTION, max_tokens="many"), "max_tokens must be an integer"),
    ],
)
def test_what_lmi_cannot_parse_is_refused_before_the_stream_with_424(
    client: Any, body: Any, says: str
) -> None:
    error = model_error(client, body)
    assert error["OriginalStatusCode"] == 424
    original = json.loads(error["OriginalMessage"])
    assert set(original) == {"error", "code"}
    assert original["code"] == 424
    assert original["error"].startswith("Input Parsing failed. Ensure that the request payload")
    assert says in original["error"]


def test_a_body_that_is_not_json_is_an_input_parsing_failure(client: Any) -> None:
    with pytest.raises(client.exceptions.ModelError) as raised:
        client.invoke_endpoint_with_response_stream(
            EndpointName="jumpstream-local", Body=b"{not json", ContentType="application/json"
        )
    assert raised.value.response["OriginalStatusCode"] == 424
    assert "Input Parsing failed" in raised.value.response["OriginalMessage"]


def test_a_failure_before_the_stream_is_lmis_invoke_handler_failure(client: Any) -> None:
    error = model_error(client, text_body(f"{PROMPT}[[fault:model_error]]"))
    assert error["OriginalStatusCode"] == 424
    assert json.loads(error["OriginalMessage"]) == {
        "code": 424,
        "message": "invoke handler failure",
        "error": LMI_ERRORS["generation"],
    }


@pytest.mark.parametrize(
    ("kind", "code", "status"),
    [
        ("throttling", "ThrottlingException", 400),
        ("unavailable", "ServiceUnavailable", 503),
        ("internal_failure", "InternalFailure", 500),
        ("no_capacity", "ValidationError", 400),
    ],
)
def test_sagemakers_own_refusals_do_not_depend_on_the_engine(
    client: Any, kind: str, code: str, status: int
) -> None:
    with pytest.raises(ClientError) as raised:
        invoke_json(client, chat_body([{"role": "user", "content": f"hi [[fault:{kind}]]"}]))
    assert raised.value.response["Error"]["Code"] == code
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == status


ERROR_MEMBERS = {
    "validation": {"error_code": 400, "error_msg": LMI_ERRORS["validation"]},
    "overloaded": {"error_code": 429, "error_msg": LMI_ERRORS["overloaded"]},
    "generation": LMI_ERRORS["generation"],
}


@pytest.mark.parametrize("kind", list(ERROR_MEMBERS))
def test_engine_faults_end_a_prompts_stream_with_lmis_error_token(client: Any, kind: str) -> None:
    got = lines(client, text_body(f"{PROMPT}[[fault:{kind}@3]]", max_new_tokens=20, details=True))
    expected = tokens(PROMPT, 20)[:3]
    assert [line["token"]["text"] for line in got[:3]] == [shown(t) for t in expected]
    error = got[3]
    assert len(got) == 4
    assert error["token"] == {
        "id": -1,
        "text": "",
        "log_prob": -1,
        "special_token": True,
        "error_msg": LMI_ERRORS[kind],
    }
    assert error["generated_text"] == "".join(shown(t) for t in expected)
    assert error["details"] == {"finish_reason": "error", "generated_tokens": 4, "inputs": PROMPT}
    assert error["error"] == ERROR_MEMBERS[kind]


@pytest.mark.parametrize("kind", list(ERROR_MEMBERS))
def test_engine_faults_end_a_chat_with_a_chunk_that_finishes_in_error(
    client: Any, kind: str
) -> None:
    asked = [{"role": "user", "content": f"{PROMPT}[[fault:{kind}@2]]"}]
    got = lines(client, chat_body(asked, max_tokens=20))
    assert len(got) == 3
    assert [chunk["choices"][0]["finish_reason"] for chunk in got] == [None, None, "error"]
    assert got[2]["choices"][0]["delta"] == {"content": ""}
    assert got[2]["error"] == ERROR_MEMBERS[kind]


def test_a_fault_before_any_token_is_still_an_error_line_after_http_200(client: Any) -> None:
    (error,) = lines(client, text_body(f"{PROMPT}[[fault:overloaded]]"))
    assert error["details"] == {"finish_reason": "error"}  # details were not asked for
    assert error["generated_text"] == ""
    (chunk,) = lines(client, chat_body([{"role": "user", "content": "hi[[fault:validation]]"}]))
    assert chunk["choices"][0]["delta"] == {"content": "", "role": "assistant"}


@pytest.mark.parametrize(
    ("parameters", "says"),
    [
        ({"temperature": -1}, "temperature must be non-negative, got -1.0."),
        ({"top_p": 1.5}, "top_p must be in (0, 1], got 1.5."),
        ({"max_new_tokens": 0}, "max_tokens must be at least 1, got 0."),
        ({"top_k": -5}, "top_k must be -1 (disable), or at least 1, got -5."),
        ({"max_new_tokens": "ten"}, "max_new_tokens must be an integer"),
    ],
)
def test_parameters_vllm_refuses_fail_inside_the_stream_as_a_refusal(
    client: Any, parameters: dict[str, Any], says: str
) -> None:
    (error,) = lines(client, text_body(PROMPT, **parameters))
    assert error["details"]["finish_reason"] == "error"
    assert error["error"]["error_code"] == 400
    assert says in error["error"]["error_msg"]


def test_a_prompt_longer_than_the_context_fails_inside_the_stream(client: Any) -> None:
    (error,) = lines(client, text_body("word " * 2100))
    assert error["error"] == {
        "error_code": 400,
        "error_msg": "Input prompt (2100 tokens) is too long and exceeds limit of 2048",
    }


def test_the_answer_stops_where_the_context_ends(client: Any) -> None:
    got = lines(client, text_body("word " * 2040, max_new_tokens=50, details=True))
    assert len(got) == 8
    assert got[-1]["details"]["finish_reason"] == "length"


@pytest.mark.parametrize(
    ("kind", "status", "says"),
    [
        ("validation", 400, LMI_ERRORS["validation"]),
        ("overloaded", 429, LMI_ERRORS["overloaded"]),
        ("generation", 424, LMI_ERRORS["generation"]),
    ],
)
def test_engine_faults_without_streaming_are_http_errors(
    client: Any, kind: str, status: int, says: str
) -> None:
    error = model_error(client, {"inputs": f"{PROMPT}[[fault:{kind}@2]]"})
    assert error["OriginalStatusCode"] == status
    assert json.loads(error["OriginalMessage"]) == {"error": says, "code": status}


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        ("stream_broken", "ModelStreamError"),
        ("timeout", "ModelStreamError"),
        ("internal_stream", "InternalStreamFailure"),
    ],
)
def test_sagemaker_faults_break_lmis_stream_mid_iteration(
    client: Any, kind: str, code: str
) -> None:
    received, error = parts_until_error(
        invoke_json(client, chat_body([{"role": "user", "content": f"hi[[fault:{kind}@2]]"}]))
    )
    assert len(parse_json_lines(b"".join(received))) == 2
    assert error.response["Error"]["Code"] == code


def test_truncate_ends_without_the_last_line(client: Any) -> None:
    got = lines(client, text_body(f"{PROMPT}[[fault:truncate@4]]", max_new_tokens=20))
    assert len(got) == 4
    assert all(set(line) == {"token"} for line in got)
