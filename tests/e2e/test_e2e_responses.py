"""The `openai` package's Responses API (`client.responses`) against the relay (jumpstream local).

As in test_e2e_openai.py, the expected text is the emulator's stand-in model's answer to the
prompt the relay must have rendered, so a pass means the input was laid out, answered and
written back exactly: `create` streamed and not, the `responses.stream` helper, a conversation
built from the returned output items, and the failures a caller must see as failures.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from jumpstream.local import DEFAULT_MODEL_ID, LocalStack
from tests.e2e.support import (
    HANG_GUARD_SECONDS,
    PROMPT,
    chat_turn,
    expected_answer,
    expected_tokens,
)
from tests.e2e.test_e2e_openai import expected_counts, rendered

INSTRUCTIONS = "Be brief."
#: The conversation the relay must render for `INSTRUCTIONS` and `PROMPT`.
QUESTION = [{"role": "system", "content": INSTRUCTIONS}, {"role": "user", "content": PROMPT}]
#: The Responses API's event types of a streamed answer, in order, with the deltas collapsed.
EVENT_ORDER = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.completed",
]


@pytest.fixture(scope="module")
def client(stack: LocalStack) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=f"{stack.relay_url}/v1",
        api_key="unused",
        max_retries=0,
        timeout=HANG_GUARD_SECONDS,
    ) as client:
        yield client


def _collapsed(types: list[str]) -> list[str]:
    return [t for i, t in enumerate(types) if i == 0 or t != types[i - 1]]


def test_a_response_is_the_models_answer_to_its_rendered_input(client: openai.OpenAI) -> None:
    response = client.responses.create(
        model="any", instructions=INSTRUCTIONS, input=PROMPT, max_output_tokens=12
    )
    parameters = {"max_new_tokens": 12}
    assert response.object == "response"
    assert response.model == DEFAULT_MODEL_ID
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.output_text == chat_turn(expected_answer(rendered(QUESTION), parameters))
    [message] = response.output
    assert message.type == "message"
    assert message.role == "assistant"
    assert [part.type for part in message.content] == ["output_text"]
    input_tokens, output_tokens = expected_counts(rendered(QUESTION), parameters)
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (
        input_tokens,
        output_tokens,
    )
    assert response.usage.total_tokens == input_tokens + output_tokens


def test_streamed_events_come_in_the_apis_order_and_add_up_to_the_answer(
    client: openai.OpenAI,
) -> None:
    events = list(
        client.responses.create(model="any", instructions=INSTRUCTIONS, input=PROMPT, stream=True)
    )
    types = [event.type for event in events]
    assert _collapsed(types) == EVENT_ORDER
    assert [event.sequence_number for event in events] == list(range(len(events)))
    deltas = [event.delta for event in events if event.type == "response.output_text.delta"]
    assert len(deltas) > 1  # it came in pieces
    assert "".join(deltas) == chat_turn(expected_answer(rendered(QUESTION)))
    completed = events[-1]
    assert completed.type == "response.completed"
    assert completed.response.status == "completed"
    assert completed.response.id == events[0].response.id  # type: ignore[union-attr]
    assert completed.response.output_text == "".join(deltas)
    assert completed.response.usage is not None
    assert completed.response.usage.output_tokens == expected_counts(rendered(QUESTION), {})[1]


def test_the_stream_helper_gives_text_deltas_and_the_final_response(
    client: openai.OpenAI,
) -> None:
    texts: list[str] = []
    with client.responses.stream(
        model="any", input=[{"role": "developer", "content": INSTRUCTIONS}, _said(PROMPT)]
    ) as stream:
        for event in stream:
            if event.type == "response.output_text.delta":
                texts.append(event.delta)
        final = stream.get_final_response()
    assert "".join(texts) == chat_turn(expected_answer(rendered(QUESTION)))
    assert final.status == "completed"
    assert final.output_text == "".join(texts)


def test_a_conversation_goes_on_from_the_output_items_the_api_returned(
    client: openai.OpenAI,
) -> None:
    history: list[Any] = [_said(PROMPT)]
    first = client.responses.create(model="any", input=history)
    history += [*first.output, _said("And why does latency matter?")]
    second = client.responses.create(model="any", input=history, stream=True)
    deltas = [e.delta for e in second if e.type == "response.output_text.delta"]
    conversation = [
        {"role": "user", "content": PROMPT},
        {"role": "assistant", "content": first.output_text},
        {"role": "user", "content": "And why does latency matter?"},
    ]
    assert first.output_text
    assert "".join(deltas) == chat_turn(expected_answer(rendered(conversation)))


def test_what_needs_state_or_tools_is_a_bad_request_naming_the_parameter(
    client: openai.OpenAI,
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="any", input=PROMPT, previous_response_id="resp_1")
    assert caught.value.body["param"] == "previous_response_id"  # type: ignore[index]
    assert "keeps no responses" in caught.value.message
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(
            model="any",
            input=PROMPT,
            tools=[{"type": "function", "name": "f", "parameters": {}, "strict": True}],
        )
    assert caught.value.body["param"] == "tools"  # type: ignore[index]
    image = {"type": "input_image", "image_url": "https://example.com/a.png", "detail": "auto"}
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(
            model="any",
            input=[{"role": "user", "content": [{"type": "input_text", "text": "What?"}, image]}],
        )
    assert caught.value.body["param"] == "input"  # type: ignore[index]
    assert "input[0].content[1]" in caught.value.message


def test_throttling_before_the_answer_is_a_rate_limit_error(client: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        client.responses.create(model="any", input=f"{PROMPT} [[fault:throttling]]", stream=True)
    assert caught.value.response.headers["retry-after"]


def test_a_failure_mid_stream_raises_in_the_callers_loop(client: openai.OpenAI) -> None:
    question = f"{PROMPT} [[fault:generation@3]]"
    received: list[str] = []
    stream = client.responses.create(model="any", input=question, stream=True)
    with pytest.raises(openai.APIError, match="generation"):
        received.extend(e.delta for e in stream if e.type == "response.output_text.delta")
    assert "".join(received) == chat_turn(
        "".join(expected_tokens(rendered([{"role": "user", "content": question}]))[:3])
    )


def test_a_failure_mid_answer_without_streaming_is_an_http_error(client: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        client.responses.create(model="any", input=f"{PROMPT} [[fault:generation@3]]")
    assert caught.value.status_code == 502


def _said(text: str) -> dict[str, Any]:
    return {"role": "user", "content": [{"type": "input_text", "text": text}]}
