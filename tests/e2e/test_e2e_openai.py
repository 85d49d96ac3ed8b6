"""The official `openai` package against the relay: directly (jumpstream local) and through the
signing proxy in front of a SigV4-checking function URL stand-in.

What the model says is computed from the emulator's own stand-in model for the prompt the relay
must have rendered, so a passing test means the request was translated, laid out and answered
exactly, not merely that something came back.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from streamer.prompt_template import Message, PromptTemplate

from jumpstream.emulator.directives import parse_directives
from jumpstream.emulator.model import StandInModel
from jumpstream.emulator.request import input_tokens, parse_body
from jumpstream.local import DEFAULT_MODEL_ID, LocalStack
from jumpstream.proxy import ProxyOptions, create_proxy_app
from stacks.catalog import load_catalog
from tests.e2e.support import (
    HANG_GUARD_SECONDS,
    PROMPT,
    chat_turn,
    expected_answer,
    expected_tokens,
    stream_ids,
    wait_for_new_stream,
)
from tests.function_url_standin import CREDENTIALS, StandInLog, function_url_standin
from tests.serving import serving

TEMPLATE = PromptTemplate.from_json(load_catalog().get(DEFAULT_MODEL_ID).prompt_template)
QUESTION = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": PROMPT}]


def rendered(messages: list[dict[str, str]]) -> str:
    return TEMPLATE.render([Message(m["role"], m["content"]) for m in messages])  # type: ignore[arg-type]


def expected_counts(inputs: str, parameters: dict[str, Any]) -> tuple[int, int]:
    """(prompt tokens, completion tokens) as the emulated model counts them. The model here
    (Mistral 7B Instruct) runs a TGI that does not report prompt tokens: the relay counts them
    with the tokenizer `jumpstream local` hands it, which must agree."""
    prompt, directives = parse_directives(inputs)
    body = {"inputs": prompt, "parameters": {"details": True, **parameters}, "stream": True}
    request = parse_body(body)
    model = StandInModel(DEFAULT_MODEL_ID)
    assert not model.profile.reports_prompt_tokens
    generation = model.generate(request, answer_length=directives.answer_length)
    return input_tokens(request), len(generation.tokens)


@pytest.fixture(scope="module")
def client(stack: LocalStack) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=f"{stack.relay_url}/v1",
        api_key="unused",
        max_retries=0,
        timeout=HANG_GUARD_SECONDS,
    ) as client:
        yield client


def test_chat_completion_is_the_models_answer_to_its_rendered_prompt(
    client: openai.OpenAI,
) -> None:
    answer = client.chat.completions.create(model="any", messages=QUESTION, max_tokens=12)  # type: ignore[arg-type]
    parameters = {"max_new_tokens": 12}
    assert answer.object == "chat.completion"
    assert answer.model == DEFAULT_MODEL_ID
    assert answer.choices[0].message.role == "assistant"
    assert answer.choices[0].message.content == chat_turn(
        expected_answer(rendered(QUESTION), parameters)
    )
    assert answer.choices[0].finish_reason == "length"
    prompt_tokens, completion_tokens = expected_counts(rendered(QUESTION), parameters)
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (
        prompt_tokens,
        completion_tokens,
    )
    assert answer.usage.total_tokens == prompt_tokens + completion_tokens


def test_streamed_chat_chunks_add_up_to_the_answer_with_usage_last(
    client: openai.OpenAI,
) -> None:
    stream = client.chat.completions.create(
        model="any",
        messages=QUESTION,  # type: ignore[arg-type]
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    texts = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    assert "".join(texts) == chat_turn(expected_answer(rendered(QUESTION)))
    assert len([t for t in texts if t]) > 1  # it came in pieces
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop"
    assert set(finishes[:-1]) == {None}
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == expected_counts(rendered(QUESTION), {})[1]


def test_text_completions_streamed_and_not(client: openai.OpenAI) -> None:
    whole = client.completions.create(model="any", prompt=PROMPT, max_tokens=8)
    assert whole.choices[0].text == expected_answer(PROMPT, {"max_new_tokens": 8})
    assert whole.choices[0].finish_reason == "length"
    pieces = list(client.completions.create(model="any", prompt=PROMPT, stream=True))
    assert "".join(p.choices[0].text for p in pieces) == expected_answer(PROMPT)


def test_models_lists_the_deployed_model(client: openai.OpenAI) -> None:
    assert [model.id for model in client.models.list()] == [DEFAULT_MODEL_ID]


def test_what_cannot_be_honoured_is_a_bad_request(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="any", messages=QUESTION, n=2)  # type: ignore[arg-type]
    assert "n is not supported" in caught.value.message
    assert caught.value.body["param"] == "n"  # type: ignore[index]


def test_throttling_before_the_answer_is_a_rate_limit_error_clients_retry(
    client: openai.OpenAI,
) -> None:
    question = [{"role": "user", "content": f"{PROMPT} [[fault:throttling]]"}]
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="any", messages=question)  # type: ignore[arg-type]
    assert caught.value.response.headers["retry-after"]


def test_a_failure_mid_stream_raises_in_the_callers_loop(client: openai.OpenAI) -> None:
    question = [{"role": "user", "content": f"{PROMPT} [[fault:generation@3]]"}]
    received: list[str] = []
    stream = client.chat.completions.create(model="any", messages=question, stream=True)  # type: ignore[arg-type]
    with pytest.raises(openai.APIError, match="generation"):
        received.extend(chunk.choices[0].delta.content or "" for chunk in stream)
    assert "".join(received) == chat_turn("".join(expected_tokens(rendered(question))[:3]))


def test_a_failure_mid_answer_without_streaming_is_an_http_error(client: openai.OpenAI) -> None:
    question = [{"role": "user", "content": f"{PROMPT} [[fault:generation@3]]"}]
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="any", messages=question)  # type: ignore[arg-type]
    assert caught.value.status_code == 502


def test_the_first_chunk_arrives_while_the_model_still_holds_the_rest(
    client: openai.OpenAI, emulator: httpx.Client
) -> None:
    question = [{"role": "user", "content": f"{PROMPT} [[hold@1]]"}]
    before = stream_ids(emulator)
    try:
        stream = client.chat.completions.create(model="any", messages=question, stream=True)  # type: ignore[arg-type]
        texts = []
        for chunk in stream:
            texts.append(chunk.choices[0].delta.content or "")
            if any(texts):
                break  # a hang here means someone on the way buffered the answer
        assert wait_for_new_stream(emulator, before, held=True)["tokens_sent"] == 1
        emulator.post("/_emulator/release")
        texts.extend(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    finally:
        emulator.post("/_emulator/release")
    assert "".join(texts) == chat_turn(expected_answer(rendered(question)))


@pytest.fixture(scope="module")
def signed_client(stack: LocalStack) -> Iterator[tuple[openai.OpenAI, StandInLog]]:
    with function_url_standin(stack.relay_url) as (standin_url, log):
        options = ProxyOptions(url=standin_url, region="eu-west-1")
        app = create_proxy_app(options, signing=((lambda: CREDENTIALS), "eu-west-1"))
        with (
            serving(app) as proxy_url,
            openai.OpenAI(
                base_url=f"{proxy_url}/v1",
                api_key="sk-the-proxy-drops-this",
                max_retries=0,
                timeout=HANG_GUARD_SECONDS,
            ) as client,
        ):
            yield client, log


def test_openai_through_the_proxy_reaches_a_sigv4_function_url(
    signed_client: tuple[openai.OpenAI, StandInLog],
) -> None:
    client, log = signed_client
    accepted = len(log.accepted)
    stream = client.chat.completions.create(model="any", messages=QUESTION, stream=True)  # type: ignore[arg-type]
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == chat_turn(expected_answer(rendered(QUESTION)))
    whole = client.completions.create(model="any", prompt=PROMPT, max_tokens=5)
    assert whole.choices[0].text == expected_answer(PROMPT, {"max_new_tokens": 5})
    assert [m.id for m in client.models.list()] == [DEFAULT_MODEL_ID]
    assert len(log.accepted) == accepted + 3
    assert log.refused == []
