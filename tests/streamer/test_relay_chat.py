"""Chat `messages` on POST /: laid out with the model's template, checked before SageMaker.

Each model's real layout is pinned in tests/stacks/test_prompt_templates.py; these tests show the
relay uses the template the stack hands it, adds and cuts its stop sequences, and refuses a bad
conversation with a 422 without calling SageMaker.
"""

from __future__ import annotations

from typing import Any

import pytest
from relay_support import (
    RINNA_3_6B,
    ScriptedUpstream,
    answer_events,
    call,
    catalog_template,
    final_event,
    make_app,
    token_event,
)

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
        "<s>[INST] Be brief.\n\nCapital of France? [/INST]Paris.</s>[INST] And Japan? [/INST]"
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
    assert response.text == " Paris."
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


def test_the_chat_page_and_its_script_come_from_this_origin_only() -> None:
    app = make_app(ScriptedUpstream())
    page = call(app, "GET", "/chat")
    script = call(app, "GET", "/chat.js")
    assert page.status_code == script.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert '<script src="chat.js"></script>' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    # The page sends the conversation as messages and reads the relay's own SSE.
    assert '"text/event-stream"' in script.text
    assert "messages" in script.text
