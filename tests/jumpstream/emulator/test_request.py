"""TGI's request body: what it deserializes, and its validation messages, without sockets."""

from __future__ import annotations

from typing import Any

import pytest

from jumpstream.emulator.request import (
    BodyError,
    GenerateRequest,
    Limits,
    parse_body,
    validation_error,
)


def test_parse_body_reads_tgis_fields() -> None:
    request = parse_body(
        {
            "inputs": "hi",
            "stream": True,
            "parameters": {"max_new_tokens": 5, "stop": ["\n"], "details": True, "top_p": 0.9},
        }
    )
    assert request == GenerateRequest(
        inputs="hi", stream=True, max_new_tokens=5, stop=("\n",), details=True, top_p=0.9
    )


def test_stream_inside_parameters_does_not_stream() -> None:
    assert not parse_body({"inputs": "hi", "parameters": {"stream": True}}).stream


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"parameters": {}},
        {"inputs": 3},
        {"inputs": "hi", "stream": "yes"},
        {"inputs": "hi", "parameters": {"max_new_tokens": "5"}},
        {"inputs": "hi", "parameters": {"max_new_tokens": -1}},
        {"inputs": "hi", "parameters": {"temperature": True}},
        {"inputs": "hi", "parameters": {"stop": "x"}},
        {"inputs": "hi", "parameters": []},
    ],
)
def test_bodies_tgi_cannot_deserialize_are_rejected(body: Any) -> None:
    with pytest.raises(BodyError, match="Failed to deserialize the JSON body"):
        parse_body(body)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"temperature": 0.0}, "`temperature` must be strictly positive"),
        ({"temperature": -1}, "`temperature` must be strictly positive"),
        ({"top_p": 1.0}, "`top_p` must be > 0.0 and < 1.0"),
        ({"top_p": 0.0}, "`top_p` must be > 0.0 and < 1.0"),
        ({"top_k": 0}, "`top_k` must be strictly positive"),
        ({"max_new_tokens": 0}, "`max_new_tokens` must be strictly positive"),
        ({"stop": ("a", "b", "c", "d", "e")}, "`stop` supports up to 4 stop sequences. Given: 5"),
        ({"best_of": 2, "do_sample": True}, "`best_of` != 1 is not supported when streaming"),
        ({"decoder_input_details": True}, "`decoder_input_details` == true is not supported"),
        ({"repetition_penalty": 0.0}, "`repetition_penalty` must be strictly positive"),
        ({"inputs": ""}, "`inputs` cannot be empty"),
        (
            {"max_new_tokens": 2000, "inputs": "word " * 49},
            "`inputs` tokens + `max_new_tokens` must be <= 2048. "
            "Given: 49 `inputs` tokens and 2000 `max_new_tokens`",
        ),
        ({"inputs": "word " * 1500}, "`inputs` must have less than 1024 tokens. Given: 1500"),
    ],
)
def test_streaming_validation_matches_tgis_messages(fields: dict[str, Any], message: str) -> None:
    values = {"inputs": "hi", "stream": True, **fields}
    error = validation_error(GenerateRequest(**values), Limits())
    assert error is not None
    assert error.startswith("Input validation error: ")
    assert message in error


def test_best_of_without_streaming_is_checked_against_the_servers_maximum() -> None:
    assert (
        validation_error(GenerateRequest(inputs="hi", best_of=2, do_sample=True), Limits()) is None
    )
    error = validation_error(GenerateRequest(inputs="hi", best_of=3, do_sample=True), Limits())
    assert error is not None
    assert "`best_of` must be > 0 and <= 2. Given: 3" in error
    error = validation_error(GenerateRequest(inputs="hi", best_of=2), Limits())
    assert error is not None
    assert "you must use sampling" in error


@pytest.mark.parametrize("fields", [{}, {"top_p": 0.99, "top_k": 1, "temperature": 0.01}])
def test_valid_requests_pass(fields: dict[str, Any]) -> None:
    assert validation_error(GenerateRequest(inputs="hi", stream=True, **fields), Limits()) is None
