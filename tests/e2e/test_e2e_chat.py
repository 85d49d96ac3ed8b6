"""Chat messages through the real relay (run.sh, the catalog's template as the stack sets it)."""

from __future__ import annotations

import httpx
from streamer.prompt_template import Message, PromptTemplate

from jumpstream.local import DEFAULT_MODEL_ID, LocalStack
from stacks.catalog import load_catalog
from tests.e2e.support import PROMPT, chat_turn, expected_answer, parse_sse


def test_a_chat_is_answered_as_the_model_answers_its_rendered_prompt(
    stack: LocalStack, relay: httpx.Client
) -> None:
    template = PromptTemplate.from_json(load_catalog().get(DEFAULT_MODEL_ID).prompt_template)
    rendered = template.render([Message("system", "Keep it short."), Message("user", PROMPT)])
    # The stand-in model's answer depends on the exact prompt: the layout must reach it.
    assert expected_answer(rendered) != expected_answer(PROMPT)
    body = {
        "messages": [
            {"role": "system", "content": "Keep it short."},
            {"role": "user", "content": PROMPT},
        ]
    }
    response = relay.post("/", json=body, headers={"accept": "text/event-stream"})
    assert response.status_code == 200
    events = parse_sse(response.content)
    assert "".join(data["text"] for event, data in events if event == "token") == (
        chat_turn(expected_answer(rendered))
    )
    assert events[-1][0] == "done"


def test_a_bad_chat_is_refused_before_the_emulator_is_called(
    stack: LocalStack, relay: httpx.Client, emulator: httpx.Client
) -> None:
    streams_before = len(emulator.get("/_emulator/streams").json())
    response = relay.post("/", json={"messages": [{"role": "assistant", "content": "hi"}]})
    assert response.status_code == 422
    assert response.json()["type"] == "invalid_request"
    assert len(emulator.get("/_emulator/streams").json()) == streams_before
