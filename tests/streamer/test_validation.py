"""Request validation: every TGI rule, and no body at all can make the relay fail with a 5xx;
chat `messages` on POST /, laid out with the model's template and checked before SageMaker
(each model's real layout is pinned in tests/stacks/test_prompt_templates.py).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from streamer.contract import ERROR_KINDS
from streamer.errors import ApiError
from streamer.validation import KNOWN_PARAMETERS, parse_request

from tests.streamer.support import (
    RINNA_3_6B,
    ScriptedUpstream,
    answer_events,
    call,
    catalog_template,
    final_event,
    make_app,
    token_event,
)

LIMIT = 1024


def parse(body: Any) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return parse_request(raw, max_new_tokens_limit=LIMIT)


def refusal(body: Any) -> ApiError:
    with pytest.raises(ApiError) as caught:
        parse(body)
    return caught.value


def with_parameter(name: str, value: Any) -> dict[str, Any]:
    return {"inputs": "Hi", "parameters": {name: value}}


def test_a_plain_request_is_forwarded_streaming_with_details() -> None:
    request = parse({"inputs": "東京の天気は?"})
    assert request.inputs == "東京の天気は?"
    upstream = json.loads(request.upstream_body())
    assert upstream == {
        "inputs": "東京の天気は?",
        "parameters": {"details": True, "max_new_tokens": 100, "return_full_text": False},
        "stream": True,
    }
    assert "東京".encode() in request.upstream_body()  # raw UTF-8, not \\u escapes


def test_the_callers_parameters_and_details_choice_are_kept() -> None:
    request = parse(
        {"inputs": "x", "parameters": {"details": False, "temperature": 0.5}, "stream": False}
    )
    upstream = json.loads(request.upstream_body())
    assert upstream["parameters"] == {
        "details": False,
        "temperature": 0.5,
        "max_new_tokens": 100,
        "return_full_text": False,
    }
    assert upstream["stream"] is True


@pytest.mark.parametrize(("given", "sent"), [(True, True), (False, False), (None, False)])
def test_return_full_text_is_off_unless_the_caller_turns_it_on(
    given: bool | None, sent: bool
) -> None:
    """SageMaker's default (true) would repeat the whole prompt in TGI's final event."""
    request = parse(with_parameter("return_full_text", given))
    assert json.loads(request.upstream_body())["parameters"]["return_full_text"] is sent


@pytest.mark.parametrize("inputs", [" ", "\n", " \n\t ", "\u3000"])
def test_a_prompt_of_only_whitespace_is_forwarded_as_tgi_takes_it(inputs: str) -> None:
    request = parse({"inputs": inputs})
    assert json.loads(request.upstream_body())["inputs"] == inputs


def test_a_missing_max_new_tokens_gets_tgis_usual_default_within_the_limit() -> None:
    tight = parse_request(
        b'{"inputs": "x", "parameters": {"max_new_tokens": null}}', max_new_tokens_limit=30
    )
    assert json.loads(tight.upstream_body())["parameters"]["max_new_tokens"] == 30
    given = parse(with_parameter("max_new_tokens", 7))
    assert json.loads(given.upstream_body())["parameters"]["max_new_tokens"] == 7


def test_every_known_parameter_at_a_valid_value_passes() -> None:
    valid = {
        "best_of": 1,
        "temperature": 0.7,
        "repetition_penalty": 1.1,
        "frequency_penalty": -2,
        "top_k": 50,
        "top_p": 0.95,
        "typical_p": 0.5,
        "do_sample": True,
        "max_new_tokens": LIMIT,
        "return_full_text": False,
        "stop": ["\n\n", "User:", "。", "###"],
        "truncate": 1000,
        "watermark": False,
        "details": True,
        "decoder_input_details": False,
        "seed": 2**64 - 1,
        "top_n_tokens": 5,
        "grammar": {"type": "json", "value": {"type": "object"}},
        "adapter_id": "my-adapter",
    }
    assert set(valid) == set(KNOWN_PARAMETERS)
    request = parse({"inputs": "x", "parameters": valid})
    assert json.loads(request.upstream_body())["parameters"] == valid


@pytest.mark.parametrize(
    ("body", "status", "kind", "words"),
    [
        (b"\xff\xfe{}", 400, "invalid_body", "UTF-8"),
        (b"", 400, "invalid_body", "empty"),
        (b"   ", 400, "invalid_body", "empty"),
        (b"{inputs: 1}", 400, "invalid_body", "not valid JSON"),
        (b'{"inputs": "x", "parameters": {"temperature": NaN}}', 400, "invalid_body", "NaN"),
        (b'{"inputs": "x", "parameters": {"temperature": Infinity}}', 400, "invalid_body", "Inf"),
        (b'{"inputs": "x", "parameters": {"top_p": -Infinity}}', 400, "invalid_body", "Inf"),
        (b'{"inputs": "x", "parameters": {"temperature": 1e999}}', 400, "invalid_body", "large"),
        (b'{"inputs": "\\ud800"}', 400, "invalid_body", "surrogate"),
        (b"[" * 100_000 + b"]" * 100_000, 400, "invalid_body", "nested"),
        (b'{"inputs": "x", "seed": ' + b"9" * 5000 + b"}", 400, "invalid_body", "number"),
        (b'["inputs"]', 400, "invalid_body", "JSON object"),
        (b'"just a string"', 400, "invalid_body", "JSON object"),
        (b"null", 400, "invalid_body", "JSON object"),
    ],
)
def test_bodies_that_are_not_json_objects(body: bytes, status: int, kind: str, words: str) -> None:
    error = refusal(body)
    assert (error.status, error.kind) == (status, kind)
    assert words in error.message


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"prompt": "x"}, 'Unknown field "prompt"'),
        ({"inputs": "x", "extra": 1}, 'Unknown field "extra"'),
        ({}, "inputs is missing"),
        ({"parameters": {}}, "inputs is missing"),
        ({"inputs": ""}, "non-empty string (got an empty string)"),
        ({"inputs": None}, "non-empty string (got null)"),
        ({"inputs": 42}, "non-empty string (got a number)"),
        ({"inputs": ["a"]}, "non-empty string (got a list)"),
        ({"inputs": "x", "stream": "yes"}, "stream must be true or false"),
        ({"inputs": "x", "stream": None}, "stream must be true or false"),
        ({"inputs": "x", "parameters": None}, "parameters must be an object (got null)"),
        ({"inputs": "x", "parameters": []}, "parameters must be an object (got a list)"),
        ({"inputs": "x", "parameters": {"temp": 1}}, 'Unknown parameter "temp"'),
        ({"inputs": "x", "parameters": {"stream": True}}, 'Unknown parameter "stream"'),
    ],
)
def test_request_shape_errors_are_422(body: dict[str, Any], words: str) -> None:
    error = refusal(body)
    assert (error.status, error.kind) == (422, "invalid_request")
    assert words in error.message


_OUT_OF_RANGE = [
    ("temperature", 0, "greater than 0"),
    ("temperature", -0.5, "greater than 0"),
    ("temperature", True, "greater than 0"),
    ("temperature", "0.7", "greater than 0"),
    ("repetition_penalty", 0, "greater than 0"),
    ("repetition_penalty", -1, "greater than 0"),
    ("frequency_penalty", -2.01, "from -2 to 2"),
    ("frequency_penalty", 2.5, "from -2 to 2"),
    ("top_k", 0, "from 1 to 2147483647"),
    ("top_k", 2**31, "from 1 to 2147483647"),
    ("top_k", 10.0, "from 1 to"),
    ("top_k", True, "from 1 to"),
    ("top_p", 0, "greater than 0 and less than 1"),
    ("top_p", 1, "greater than 0 and less than 1"),
    ("top_p", 1.0, "greater than 0 and less than 1"),
    ("typical_p", 0.0, "greater than 0 and less than 1"),
    ("typical_p", 1.5, "greater than 0 and less than 1"),
    ("max_new_tokens", 0, f"from 1 to {LIMIT}"),
    ("max_new_tokens", LIMIT + 1, f"from 1 to {LIMIT}"),
    ("max_new_tokens", 20.0, f"from 1 to {LIMIT}"),
    ("max_new_tokens", True, f"from 1 to {LIMIT}"),
    ("max_new_tokens", "20", f"from 1 to {LIMIT}"),
    ("stop", ["a", "b", "c", "d", "e"], "at most 4 non-empty strings"),
    ("stop", [""], "at most 4 non-empty strings"),
    ("stop", "\n", "at most 4 non-empty strings"),
    ("stop", [1], "at most 4 non-empty strings"),
    ("stop", None, "at most 4 non-empty strings"),
    ("truncate", 0, "from 1 to"),
    ("truncate", -5, "from 1 to"),
    ("seed", -1, "from 0 to 18446744073709551615"),
    ("seed", 2**64, "from 0 to 18446744073709551615"),
    ("seed", 1.5, "from 0 to"),
    ("top_n_tokens", 6, "from 0 to 5"),
    ("top_n_tokens", -1, "from 0 to 5"),
    ("best_of", 2, "1 (TGI streams only with best_of 1)"),
    ("best_of", 0, "1 (TGI streams only with best_of 1)"),
    ("best_of", True, "1 (TGI streams only"),
    ("decoder_input_details", True, "false (TGI cannot stream"),
    ("decoder_input_details", None, "false (TGI cannot stream"),
    ("do_sample", 1, "true or false"),
    ("do_sample", None, "true or false"),
    ("return_full_text", "false", "true or false"),
    ("watermark", 0, "true or false"),
    ("details", "true", "true or false"),
    ("details", None, "true or false"),
    ("grammar", "json", "an object"),
    ("grammar", {"type": "xml", "value": "x"}, "an object"),
    ("grammar", {"type": "regex"}, "an object"),
    ("grammar", {"type": "regex", "value": 3}, "an object"),
    ("grammar", {"type": "json", "value": None}, "an object"),
    ("grammar", {"type": "json", "value": [1]}, "an object"),
    ("grammar", {"type": "json", "value": {}, "extra": 1}, "an object"),
    ("adapter_id", 7, "a string"),
]


@pytest.mark.parametrize(("name", "value", "words"), _OUT_OF_RANGE)
def test_parameters_outside_tgis_rules_are_422(name: str, value: Any, words: str) -> None:
    error = refusal(with_parameter(name, value))
    assert (error.status, error.kind) == (422, "invalid_request")
    assert error.message.startswith(f"parameters.{name} must be ")
    assert words in error.message


def test_every_parameter_has_a_range_test() -> None:
    assert {name for name, _, _ in _OUT_OF_RANGE} == set(KNOWN_PARAMETERS)


def test_numbers_are_shown_other_values_only_by_kind() -> None:
    assert "(got -0.5)" in refusal(with_parameter("temperature", -0.5)).message
    secret = refusal(with_parameter("adapter_id", {"password": "hunter2"})).message
    assert "hunter2" not in secret
    assert "(got an object)" in secret


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("temperature", 1),
        ("temperature", 1e-9),
        ("frequency_penalty", 2),
        ("frequency_penalty", -2.0),
        ("top_k", 1),
        ("top_p", 0.999),
        ("max_new_tokens", 1),
        ("stop", []),
        ("seed", 0),
        ("top_n_tokens", 0),
        ("grammar", {"type": "regex", "value": "[0-9]+"}),
        ("grammar", {"type": "grammar", "value": "root ::= 'a'"}),
        ("grammar", {"type": "json", "value": '{"type": "string"}'}),
    ],
)
def test_boundary_values_tgi_accepts_pass(name: str, value: Any) -> None:
    assert parse(with_parameter(name, value)).parameters == {name: value}


@pytest.mark.parametrize(
    "name",
    [
        "best_of",
        "temperature",
        "top_k",
        "top_p",
        "max_new_tokens",
        "seed",
        "grammar",
        "adapter_id",
        "return_full_text",
    ],
)
def test_null_means_default_where_tgi_takes_null(name: str) -> None:
    assert parse(with_parameter(name, None)).parameters == {name: None}


def test_a_huge_integer_for_a_float_parameter_is_a_range_question_not_a_crash() -> None:
    assert parse(with_parameter("temperature", 10**400)).parameters["temperature"] == 10**400
    assert "greater than 0" in refusal(with_parameter("temperature", -(10**400))).message


def test_long_unknown_names_are_cut_in_messages() -> None:
    error = refusal(with_parameter("x" * 10_000, 1))
    assert len(error.message) < 600


def test_max_new_tokens_limit_comes_from_settings() -> None:
    body = json.dumps(with_parameter("max_new_tokens", 50)).encode()
    with pytest.raises(ApiError, match="from 1 to 10"):
        parse_request(body, max_new_tokens_limit=10)
    assert parse_request(body, max_new_tokens_limit=50).parameters == {"max_new_tokens": 50}


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


_parameters = st.dictionaries(
    st.sampled_from(KNOWN_PARAMETERS) | st.text(max_size=12), _json, max_size=5
)


_bodies = st.one_of(
    _json,
    st.fixed_dictionaries({"inputs": _json}),
    st.fixed_dictionaries({"inputs": st.text(max_size=30), "parameters": _parameters}),
    st.fixed_dictionaries(
        {"inputs": st.text(min_size=1, max_size=30), "parameters": _parameters},
        optional={"stream": _json, "extra": _json},
    ),
)


_app = make_app(ScriptedUpstream(answer_events(["ok"])))


def assert_handled(response: Any) -> None:
    assert response.status_code < 500, response.text
    assert "Traceback" not in response.text
    assert response.headers["x-request-id"]
    if response.status_code != 200:
        error = response.json()
        assert set(error) == {"error", "type"}
        assert error["type"] in ERROR_KINDS
        assert error["error"].endswith(".")


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=_bodies)
def test_any_json_body_gets_a_clean_answer(body: Any) -> None:
    response = call(_app, content=json.dumps(body).encode())
    assert_handled(response)
    if response.status_code == 200:
        assert response.text == "ok"


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.binary(max_size=200))
def test_any_bytes_get_a_clean_answer(body: bytes) -> None:
    assert_handled(call(_app, content=body))


# --- Chat messages on POST / ----------------------------------------------------------------------


FALCON_CHAT = "huggingface-llm-falcon-180b-chat-bf16"


MISTRAL_INSTRUCT = "huggingface-llm-mistral-7b-instruct"


QUESTION = [{"role": "user", "content": "Capital of France?"}]


TEXT = {"accept": "text/plain"}


def _chat_app(model_id: str, upstream: ScriptedUpstream) -> Any:
    return make_app(upstream, prompt_template=catalog_template(model_id))


def test_messages_are_sent_as_the_models_prompt() -> None:
    upstream = ScriptedUpstream(answer_events(["Paris."]))
    messages = [
        {"role": "system", "content": "Be brief."},
        *QUESTION,
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "And Japan?"},
    ]
    response = call(
        _chat_app(MISTRAL_INSTRUCT, upstream), json_body={"messages": messages}, headers=TEXT
    )
    assert response.status_code == 200
    assert response.text == "Paris."
    (sent,) = upstream.bodies
    assert sent["inputs"] == (
        "[INST] Be brief.\n\nCapital of France? [/INST]Paris.</s> [INST] And Japan? [/INST]"
    )
    assert "messages" not in sent
    assert "stop" not in sent["parameters"]  # Mistral ends its turn with </s>


def test_the_templates_stop_sequence_is_sent_and_cut_from_the_answer() -> None:
    script = [
        token_event(" Paris."),
        token_event("\n"),
        token_event("User"),
        final_event(
            ":", generated_text=" Paris.\nUser:", special=False, finish_reason="stop_sequence"
        ),
    ]
    upstream = ScriptedUpstream(script)
    body = {"messages": QUESTION, "parameters": {"stop": ["###"]}}
    response = call(_chat_app(FALCON_CHAT, upstream), json_body=body, headers=TEXT)
    assert response.status_code == 200
    # Cut before the stop, and shown as a chat turn: without the space the model put first.
    assert response.text == "Paris."
    (sent,) = upstream.bodies
    assert sent["inputs"] == "User: Capital of France?\nFalcon:"
    assert sent["parameters"]["stop"] == ["\nUser:", "###"]


def test_a_callers_own_stop_sequence_keeps_tgis_meaning_on_post() -> None:
    # With `inputs` the relay adds nothing and cuts nothing: TGI's answer includes the stop.
    script = [token_event("a"), final_event("###", generated_text="a###", special=False)]
    upstream = ScriptedUpstream(script)
    body = {"inputs": "x", "parameters": {"stop": ["###"]}}
    response = call(_chat_app(FALCON_CHAT, upstream), json_body=body, headers=TEXT)
    assert response.text == "a###"


def test_rinna_chat_gets_nl_in_the_prompt_and_newlines_in_the_answer() -> None:
    upstream = ScriptedUpstream(answer_events(["一行目<N", "L>二行目"]))
    body = {"messages": [{"role": "user", "content": "二行で\nお願いします"}]}
    response = call(_chat_app(RINNA_3_6B, upstream), json_body=body, headers=TEXT)
    assert response.text == "一行目\n二行目"
    assert upstream.bodies[0]["inputs"] == "ユーザー: 二行で<NL>お願いします<NL>システム: "


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"messages": []}, "messages must be a non-empty array"),
        ({"messages": [{"role": "assistant", "content": "hi"}]}, "should be a user message"),
        ({"messages": [{"role": "robot", "content": "hi"}]}, "role must be system, user or"),
        ({"messages": QUESTION, "inputs": "x"}, "either inputs (a prompt) or messages"),
        (
            {"messages": QUESTION, "parameters": {"stop": ["a", "b", "c", "d"]}},
            "parameters.stop may hold at most 3 sequences with chat messages",
        ),
        ({"messages": QUESTION, "parameters": {"top_p": 1.0}}, "parameters.top_p must be"),
    ],
)
def test_a_bad_chat_is_a_422_and_sagemaker_is_never_called(body: object, says: str) -> None:
    upstream = ScriptedUpstream(answer_events(["never"]))
    response = call(_chat_app(FALCON_CHAT, upstream), json_body=body)
    assert response.status_code == 422
    assert response.json()["type"] == "invalid_request"
    assert says in response.json()["error"]
    assert upstream.bodies == []


def test_messages_without_a_prompt_template_are_refused_with_a_way_out() -> None:
    upstream = ScriptedUpstream(answer_events(["never"]))
    response = call(make_app(upstream), json_body={"messages": QUESTION})
    assert response.status_code == 422
    assert "send the prompt as inputs" in response.json()["error"]
    assert upstream.bodies == []


def test_a_chat_answer_starts_without_the_models_space_and_a_prompts_keeps_it() -> None:
    """Messages make a chat turn, shown as a chat shows it; `inputs` keeps TGI's text as it is."""
    chat_upstream = ScriptedUpstream(answer_events([" Paris", " is", " lovely."]))
    body = {"messages": QUESTION}
    chat = call(_chat_app(FALCON_CHAT, chat_upstream), json_body=body, headers=TEXT)
    assert chat.text == "Paris is lovely."
    prompt_upstream = ScriptedUpstream(answer_events([" Paris", " is", " lovely."]))
    body = {"inputs": "Capital of France?"}
    prompt = call(_chat_app(FALCON_CHAT, prompt_upstream), json_body=body, headers=TEXT)
    assert prompt.text == " Paris is lovely."


def test_an_answer_sent_back_as_history_renders_as_the_template_expects() -> None:
    """Falcon's `Falcon: {content}` puts the one space itself: the answer brings none."""
    upstream = ScriptedUpstream(answer_events([" Paris."]))
    first = call(_chat_app(FALCON_CHAT, upstream), json_body={"messages": QUESTION}, headers=TEXT)
    history = [*QUESTION, {"role": "assistant", "content": first.text}]
    follow_up = {"messages": [*history, {"role": "user", "content": "And Italy?"}]}
    call(_chat_app(FALCON_CHAT, upstream), json_body=follow_up, headers=TEXT)
    assert upstream.bodies[-1]["inputs"] == (
        "User: Capital of France?\nFalcon: Paris.\nUser: And Italy?\nFalcon:"
    )
