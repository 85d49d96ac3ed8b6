"""The relay in front of every engine a model may run on (TGI, LMI, vLLM), through the emulator
speaking that engine: a caller gets the same answers and the same kinds of error whichever
engine serves the model.

Each engine gets a local stack of its own, started as ``jumpstream local --engine`` starts it:
the emulator on that engine, the relay told the engine and that the engine lays out chats
(SERVING_ENGINE, ENGINE_CHAT_TEMPLATE). Callers are the relay's own routes (text, SSE, NDJSON)
and the official ``openai`` package (chat and completions, streamed and not); failures come
before the first text and after it. The expected answers are the stand-in model's
(tests/e2e/engine_answers.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from jumpstream.emulator.directives import parse_directives
from jumpstream.local import DEFAULT_MODEL_ID, LocalStack, start_stack
from jumpstream.procs import LineBuffer
from tests.e2e.engine_answers import (
    ENGINES,
    chat_answer,
    chat_generation,
    chat_prompt_tokens,
    chat_tokens,
    prompt_generation,
    prompt_tokens,
)
from tests.e2e.support import (
    FORMATS,
    HANG_GUARD_SECONDS,
    PROMPT,
    fast_config,
    generate_body,
    parse_ndjson,
    parse_sse,
    stream_ids,
    wait_for_new_stream,
)
from tests.e2e.test_e2e_errors import (
    BEFORE_TEXT,
    MID_STREAM,
    TOKENS_BEFORE_FAULT,
    assert_json_error,
    check_mid_stream_error,
    mid_stream,
)

JAPANESE = "ストリーミングについて日本語で説明してください。"
QUESTION = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": PROMPT}]
SSE = {"accept": "text/event-stream"}
TORTURE = ["[[split:1]]", "[[split:random]]", "[[crlf]]", "[[nospace]]", "[[keepalive]]"]
TORTURE_TOKENS = 16


@dataclasses.dataclass(frozen=True)
class EngineStack:
    engine: str
    stack: LocalStack


@pytest.fixture(scope="session", params=ENGINES)
def served(request: pytest.FixtureRequest) -> Iterator[EngineStack]:
    """The local stack with the model on one engine, at full speed."""
    output = LineBuffer(keep=500)
    config = dataclasses.replace(fast_config(), engine=request.param)
    try:
        with start_stack(config, sink=output) as stack:
            yield EngineStack(request.param, stack)
    except Exception:
        print(output.render())
        raise


@pytest.fixture
def relay(served: EngineStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.stack.relay_url, timeout=HANG_GUARD_SECONDS) as client:
        yield client


@pytest.fixture
def emulator(served: EngineStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.stack.emulator_url, timeout=HANG_GUARD_SECONDS) as client:
        yield client


@pytest.fixture
def client(served: EngineStack) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=f"{served.stack.relay_url}/v1",
        api_key="unused",
        max_retries=0,
        timeout=HANG_GUARD_SECONDS,
    ) as client:
        yield client


def sse_events(relay: httpx.Client, body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    response = relay.post("/", json=body, headers=SSE)
    assert response.status_code == 200, response.text
    return parse_sse(response.content)


def token_events(texts: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """The relay sends no event for an empty token (a held-back half character, LMI's EOS)."""
    return [("token", {"text": text}) for text in texts if text]


# --- The relay's own routes ---------------------------------------------------------------------


@pytest.mark.parametrize("prompt", [PROMPT, JAPANESE])
def test_plain_text_is_the_models_answer(
    served: EngineStack, relay: httpx.Client, prompt: str
) -> None:
    response = relay.post("/", json=generate_body(prompt))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.text == "".join(prompt_tokens(served.engine, prompt))


@pytest.mark.parametrize("prompt", [PROMPT, JAPANESE])
def test_sse_and_ndjson_send_each_token_then_done(
    served: EngineStack, relay: httpx.Client, prompt: str
) -> None:
    texts = prompt_tokens(served.engine, prompt)
    generated = len(prompt_generation(prompt).tokens)  # the EOS token included
    done = {"finish_reason": "eos_token", "generated_tokens": generated}
    assert sse_events(relay, generate_body(prompt)) == [*token_events(texts), ("done", done)]
    response = relay.post("/", json=generate_body(prompt), headers={"accept": FORMATS["ndjson"]})
    assert parse_ndjson(response.content) == [
        *({"event": "token", "text": text} for text in texts if text),
        {"event": "done", **done},
    ]


def test_max_new_tokens_ends_the_answer_with_length(
    served: EngineStack, relay: httpx.Client
) -> None:
    events = sse_events(relay, generate_body(PROMPT, max_new_tokens=5))
    texts = prompt_tokens(served.engine, PROMPT, 5)
    assert events == [
        *token_events(texts),
        ("done", {"finish_reason": "length", "generated_tokens": 5}),
    ]


def test_a_stop_sequence_ends_the_answer(served: EngineStack, relay: httpx.Client) -> None:
    stop = prompt_tokens("tgi", PROMPT)[3]
    events = sse_events(relay, generate_body(PROMPT, stop=[stop]))
    # LMI's rolling batch cannot tell a stop sequence from the end of the text.
    finish = "eos_token" if served.engine == "lmi" else "stop_sequence"
    assert events[-1] == ("done", {"finish_reason": finish, "generated_tokens": 4})
    # TGI shows the stop sequence; vLLM, and LMI around it, cut it from the answer.
    assert events[:-1] == token_events(prompt_tokens(served.engine, PROMPT, stop=(stop,)))


@pytest.mark.parametrize("directive", TORTURE)
def test_part_boundaries_and_spellings_change_nothing(
    served: EngineStack, relay: httpx.Client, directive: str
) -> None:
    limit = {"max_new_tokens": TORTURE_TOKENS}
    tortured = f"{JAPANESE} {directive}"
    text = relay.post("/", json=generate_body(tortured, **limit)).text
    assert text == "".join(prompt_tokens(served.engine, tortured, TORTURE_TOKENS))
    normal = sse_events(relay, generate_body(f"{JAPANESE} ", **limit))
    assert sse_events(relay, generate_body(tortured, **limit)) == normal


def test_chat_messages_are_answered_as_the_engine_lays_them_out(
    served: EngineStack, relay: httpx.Client
) -> None:
    events = sse_events(relay, {"messages": QUESTION})
    answer = "".join(data["text"] for name, data in events if name == "token")
    assert answer == chat_answer(served.engine, QUESTION)
    assert events[-1] == (
        "done",
        {
            "finish_reason": "eos_token",
            "generated_tokens": len(chat_generation(served.engine, QUESTION).tokens),
        },
    )


@pytest.mark.parametrize(("directive", "status", "kind"), BEFORE_TEXT)
@pytest.mark.parametrize("output_format", list(FORMATS))
def test_failures_before_text_are_the_same_http_errors(
    relay: httpx.Client,
    emulator: httpx.Client,
    directive: str,
    status: int,
    kind: str,
    output_format: str,
) -> None:
    before = stream_ids(emulator)
    response = relay.post(
        "/", json=generate_body(f"{PROMPT} {directive}"), headers={"accept": FORMATS[output_format]}
    )
    assert_json_error(response, status, kind)
    _, directives = parse_directives(directive)
    # An in-stream fault means the engine took the request (its stream is recorded before it
    # starts) and the stream failed, rather than the engine refusing the body.
    assert len(stream_ids(emulator) - before) == (directives.stream_fault is not None)


@pytest.mark.parametrize(("fault", "kind"), MID_STREAM)
@pytest.mark.parametrize("output_format", list(FORMATS))
def test_failures_after_text_end_the_body_with_the_same_error(
    relay: httpx.Client, fault: str, kind: str, output_format: str
) -> None:
    check_mid_stream_error(mid_stream(relay, fault, output_format), output_format, kind)


@pytest.mark.parametrize(
    ("fault", "kind"), [("validation", "validation"), ("generation", "model_error")]
)
def test_a_chat_failing_after_text_ends_with_the_same_error(
    served: EngineStack, relay: httpx.Client, fault: str, kind: str
) -> None:
    asked = [{"role": "user", "content": f"{PROMPT} [[fault:{fault}@{TOKENS_BEFORE_FAULT}]]"}]
    events = sse_events(relay, {"messages": asked})
    texts = chat_tokens(served.engine, asked)[:TOKENS_BEFORE_FAULT]
    shown = "".join(data["text"] for name, data in events if name == "token")
    assert shown == "".join(texts).lstrip()
    name, data = events[-1]
    assert (name, data["type"]) == ("error", kind)


def test_a_chat_failing_before_text_is_an_http_error(relay: httpx.Client) -> None:
    asked = [{"role": "user", "content": f"{PROMPT} [[fault:overloaded]]"}]
    assert_json_error(relay.post("/", json={"messages": asked}), 503, "overloaded")


# --- The openai package -------------------------------------------------------------------------


def test_a_chat_completion_is_the_models_answer(served: EngineStack, client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(model="any", messages=QUESTION, max_tokens=12)  # type: ignore[arg-type]
    assert answer.object == "chat.completion"
    assert answer.model == DEFAULT_MODEL_ID
    assert answer.choices[0].message.content == chat_answer(served.engine, QUESTION, 12)
    assert answer.choices[0].finish_reason == "length"
    assert answer.usage is not None
    assert answer.usage.completion_tokens == 12
    if served.engine == "lmi":
        # LMI's rolling batch reports no prompt length, and the relay cannot count a chat laid
        # out by a template it never sees: unknown, not guessed.
        assert answer.usage.prompt_tokens is None
    else:
        assert answer.usage.prompt_tokens == chat_prompt_tokens(served.engine, QUESTION)


def test_a_streamed_chat_adds_up_to_the_answer_with_usage_last(
    served: EngineStack, client: openai.OpenAI
) -> None:
    stream = client.chat.completions.create(
        model="any",
        messages=QUESTION,  # type: ignore[arg-type]
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    texts = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    assert "".join(texts) == chat_answer(served.engine, QUESTION)
    assert len([t for t in texts if t]) > 1
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop"
    assert set(finishes[:-1]) == {None}
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == len(
        chat_generation(served.engine, QUESTION).tokens
    )


def test_completions_streamed_and_not(served: EngineStack, client: openai.OpenAI) -> None:
    whole = client.completions.create(model="any", prompt=PROMPT, max_tokens=8)
    assert whole.choices[0].text == "".join(prompt_tokens(served.engine, PROMPT, 8))
    assert whole.choices[0].finish_reason == "length"
    assert whole.usage is not None
    assert (whole.usage.prompt_tokens, whole.usage.completion_tokens) == (
        len(PROMPT.split()),
        8,
    )
    pieces = list(client.completions.create(model="any", prompt=PROMPT, stream=True))
    assert "".join(p.choices[0].text for p in pieces) == "".join(
        prompt_tokens(served.engine, PROMPT)
    )
    assert pieces[-1].choices[0].finish_reason == "stop"


def test_throttling_before_the_answer_is_a_rate_limit_error(client: openai.OpenAI) -> None:
    question = [{"role": "user", "content": f"{PROMPT} [[fault:throttling]]"}]
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="any", messages=question)  # type: ignore[arg-type]
    assert caught.value.response.headers["retry-after"]


def test_the_model_refusing_the_request_is_a_bad_request(client: openai.OpenAI) -> None:
    question = [{"role": "user", "content": f"{PROMPT} [[fault:validation]]"}]
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="any", messages=question, stream=True)  # type: ignore[arg-type]
    with pytest.raises(openai.BadRequestError):
        client.completions.create(model="any", prompt=f"{PROMPT} [[fault:validation]]")


def test_an_overloaded_model_before_the_answer_is_a_503(client: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        client.completions.create(model="any", prompt=f"{PROMPT} [[fault:overloaded]]", stream=True)
    assert caught.value.status_code == 503


def test_a_failure_mid_stream_raises_in_the_callers_loop(
    served: EngineStack, client: openai.OpenAI
) -> None:
    question = [{"role": "user", "content": f"{PROMPT} [[fault:generation@3]]"}]
    received: list[str] = []
    stream = client.chat.completions.create(model="any", messages=question, stream=True)  # type: ignore[arg-type]
    with pytest.raises(openai.APIError):
        received.extend(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert "".join(received) == "".join(chat_tokens(served.engine, question)[:3]).lstrip()


def test_a_failure_mid_answer_without_streaming_is_a_502(
    client: openai.OpenAI, emulator: httpx.Client
) -> None:
    before = stream_ids(emulator)
    with pytest.raises(openai.InternalServerError) as caught:
        client.completions.create(model="any", prompt=f"{PROMPT} [[fault:generation@3]]")
    assert caught.value.status_code == 502
    assert caught.value.code == "model_error"  # the model's failure, not a garbled stream
    # The engine took the request and failed after three tokens, as asked.
    (record,) = [r for r in emulator.get("/_emulator/streams").json() if r["id"] not in before]
    assert record["tokens_sent"] == 3


def test_the_first_chunk_arrives_while_the_model_still_holds_the_rest(
    served: EngineStack, client: openai.OpenAI, emulator: httpx.Client
) -> None:
    question = [{"role": "user", "content": f"{PROMPT} [[hold@1]]"}]
    before = stream_ids(emulator)
    try:
        stream = client.chat.completions.create(model="any", messages=question, stream=True)  # type: ignore[arg-type]
        texts = []
        for chunk in stream:
            texts.append(chunk.choices[0].delta.content or "" if chunk.choices else "")
            if any(texts):
                break  # a hang here means someone on the way buffered the answer
        assert wait_for_new_stream(emulator, before, held=True)["tokens_sent"] == 1
        emulator.post("/_emulator/release")
        texts.extend(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    finally:
        emulator.post("/_emulator/release")
    assert "".join(texts) == chat_answer(served.engine, question)
