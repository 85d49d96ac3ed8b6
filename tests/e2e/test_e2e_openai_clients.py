"""Multi-turn conversations through the OpenAI clients people build on, against the real relay
(`jumpstream local`: run.sh in front of the emulator), each called as its users call it by
default: no max_tokens, and each turn's history built from the client's own returned objects.

The `openai` package sync and async (its message sent back with `model_dump()`, OpenAI's empty
fields and all), LangChain's ChatOpenAI (its own AIMessage objects) and LiteLLM. The first
question asks for a long answer (`[[length:N]]`, longer than TGI's 100-token default): every
turn must come back whole, finished by the model, not cut. Every answer is compared with what the
emulator's stand-in model says to the prompt the relay must have rendered for the whole
conversation, so a pass means the history was read, laid out and answered exactly.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from streamer.prompt_template import Message, PromptTemplate

from jumpstream.local import DEFAULT_MODEL_ID, LocalStack
from stacks.catalog import load_catalog
from tests.e2e.support import HANG_GUARD_SECONDS, PROMPT, chat_turn, expected_answer

# LiteLLM fetches a price list from GitHub when imported, unless told to use its own copy.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

TEMPLATE = PromptTemplate.from_json(load_catalog().get(DEFAULT_MODEL_ID).prompt_template)
#: Longer than the 100 tokens TGI generates when max_new_tokens is left out.
ANSWER_TOKENS = 150
SYSTEM = "Be thorough."
QUESTIONS = (f"{PROMPT} [[length:{ANSWER_TOKENS}]]", "Say more about that.", "And finally?")


def expected_turn(history: list[tuple[str, str]]) -> str:
    """The answer a chat client is shown for a conversation of (role, text) turns."""
    prompt = TEMPLATE.render([Message(role, text) for role, text in history])  # type: ignore[arg-type]
    answer = chat_turn(expected_answer(prompt, {"max_new_tokens": 1024}))
    assert len(answer.split()) > 100  # long enough that TGI's default would have cut it
    return answer


def _conversation(answers: list[str]) -> list[tuple[str, str]]:
    """(role, text) turns so far: the system message, each question, the answers given."""
    history = [("system", SYSTEM)]
    for question, answer in zip(QUESTIONS, [*answers, None], strict=False):
        history.append(("user", question))
        if answer is not None:
            history.append(("assistant", answer))
    return history


@pytest.fixture(scope="module")
def base_url(stack: LocalStack) -> str:
    return f"{stack.relay_url}/v1"


@pytest.fixture(scope="module")
def client(base_url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=base_url, api_key="unused", max_retries=0, timeout=HANG_GUARD_SECONDS
    ) as client:
        yield client


def test_openai_sync_multi_turn_sends_its_own_messages_back(client: openai.OpenAI) -> None:
    """Turn by turn, alternating whole and streamed answers; a whole answer's message goes back
    as `model_dump()` gives it (refusal, tool_calls, annotations, audio: all null)."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM}]
    answers: list[str] = []
    for turn, question in enumerate(QUESTIONS):
        messages.append({"role": "user", "content": question})
        expected = expected_turn(_conversation(answers))
        if turn % 2 == 0:
            completion = client.chat.completions.create(model="any", messages=messages)  # type: ignore[arg-type]
            choice = completion.choices[0]
            assert (choice.message.content, choice.finish_reason) == (expected, "stop")
            returned = choice.message.model_dump()
            assert {"refusal", "tool_calls", "function_call", "annotations", "audio"} <= set(
                returned
            )
            messages.append(returned)
        else:
            stream = client.chat.completions.create(model="any", messages=messages, stream=True)  # type: ignore[arg-type]
            chunks = [chunk for chunk in stream if chunk.choices]
            text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks)
            assert (text, chunks[-1].choices[0].finish_reason) == (expected, "stop")
            messages.append({"role": "assistant", "content": text})
        answers.append(expected)


def test_openai_async_multi_turn_with_the_stream_helpers_final_message(base_url: str) -> None:
    """The async client: `chat.completions.stream()`'s final completion (its message carries
    `parsed: null` too) and a whole answer, each sent back with `model_dump()`."""

    async def converse() -> None:
        async with openai.AsyncOpenAI(
            base_url=base_url, api_key="unused", max_retries=0, timeout=HANG_GUARD_SECONDS
        ) as client:
            messages: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM}]
            answers: list[str] = []
            for turn, question in enumerate(QUESTIONS):
                messages.append({"role": "user", "content": question})
                expected = expected_turn(_conversation(answers))
                if turn % 2 == 0:
                    async with client.chat.completions.stream(
                        model="any",
                        messages=messages,  # type: ignore[arg-type]
                    ) as stream:
                        deltas = [
                            event.delta async for event in stream if event.type == "content.delta"
                        ]
                        final = await stream.get_final_completion()
                    assert "".join(deltas) == expected
                    message, finish = final.choices[0].message, final.choices[0].finish_reason
                    assert "parsed" in message.model_dump()
                else:
                    completion = await client.chat.completions.create(
                        model="any",
                        messages=messages,  # type: ignore[arg-type]
                    )
                    message = completion.choices[0].message
                    finish = completion.choices[0].finish_reason
                assert (message.content, finish) == (expected, "stop")
                messages.append(message.model_dump())
                answers.append(expected)

    asyncio.run(converse())


def test_langchain_chat_openai_multi_turn_with_its_own_messages(base_url: str) -> None:
    """ChatOpenAI as its docs show it: no max_tokens; invoke, then stream, then invoke, each
    turn's history the AIMessage (or the chunks' sum) LangChain returned."""
    from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
    from langchain_openai import ChatOpenAI

    model = ChatOpenAI(
        model="any", base_url=base_url, api_key="unused", max_retries=0, timeout=HANG_GUARD_SECONDS
    )
    history: list[BaseMessage] = [SystemMessage(SYSTEM)]
    answers: list[str] = []
    for turn, question in enumerate(QUESTIONS):
        history.append(HumanMessage(question))
        expected = expected_turn(_conversation(answers))
        if turn % 2 == 0:
            reply = model.invoke(history)
            assert isinstance(reply, AIMessage)
            assert reply.response_metadata["finish_reason"] == "stop"
        else:
            chunks = list(model.stream(history))
            reply = chunks[0]
            for chunk in chunks[1:]:
                reply = reply + chunk
            assert len([chunk for chunk in chunks if chunk.content]) > 1  # it came in pieces
        assert reply.content == expected
        history.append(reply)
        answers.append(expected)


def test_litellm_multi_turn_through_its_openai_provider(base_url: str) -> None:
    """`litellm.completion(model="openai/...", api_base=...)`, streamed and not, each answer's
    message sent back as LiteLLM returned it."""
    import litellm

    messages: list[Any] = [{"role": "system", "content": SYSTEM}]
    answers: list[str] = []
    for turn, question in enumerate(QUESTIONS):
        messages.append({"role": "user", "content": question})
        expected = expected_turn(_conversation(answers))
        common = {
            "model": "openai/any",
            "api_base": base_url,
            "api_key": "unused",
            "messages": messages,
            "num_retries": 0,
            "timeout": HANG_GUARD_SECONDS,
        }
        if turn % 2 == 0:
            response = litellm.completion(**common)
            choice = response.choices[0]
            assert (choice.message.content, choice.finish_reason) == (expected, "stop")
            messages.append(choice.message)
        else:
            chunks = list(litellm.completion(**common, stream=True))
            text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks)
            assert text == expected
            assert chunks[-1].choices[0].finish_reason == "stop"
            messages.append({"role": "assistant", "content": text})
        answers.append(expected)


def test_models_retrieve_gives_the_served_model_and_openais_404_for_another(
    client: openai.OpenAI,
) -> None:
    model = client.models.retrieve(DEFAULT_MODEL_ID)
    assert (model.id, model.object) == (DEFAULT_MODEL_ID, "model")
    assert [listed.id for listed in client.models.list()] == [model.id]
    with pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve("gpt-4o")
    assert caught.value.body["param"] == "model"  # type: ignore[index]


def test_harmless_fields_current_tools_send_are_ignored(client: openai.OpenAI) -> None:
    """What current clients add on their own; the answer is the one without them."""
    question = [{"role": "user", "content": PROMPT}]
    plain = client.chat.completions.create(model="any", messages=question, max_tokens=8)  # type: ignore[arg-type]
    decorated = client.chat.completions.create(
        model="any",
        messages=question,  # type: ignore[arg-type]
        max_tokens=8,
        reasoning_effort="low",
        prompt_cache_key="conversation-1",
        safety_identifier="user-hash",
        metadata={"app": "test"},
        store=False,
        user="someone",
        service_tier="auto",
        seed=None,
    )
    assert decorated.choices[0].message.content == plain.choices[0].message.content
    streamed = client.chat.completions.create(
        model="any",
        messages=question,  # type: ignore[arg-type]
        max_tokens=8,
        stream=True,
        stream_options={"include_usage": True, "include_obfuscation": False},
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in streamed if chunk.choices)
    assert text == plain.choices[0].message.content
    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model="any", prompt=PROMPT, logprobs=0)
    assert caught.value.body["param"] == "logprobs"  # type: ignore[index]


def test_a_prompt_near_the_models_context_gets_the_room_left_not_a_refusal(
    client: openai.OpenAI,
) -> None:
    """Mistral 7B Instruct's TGI takes 8192 tokens of prompt and answer together, and refuses a
    max_new_tokens that does not fit (so does the emulator): without max_tokens, the relay asks
    for what the prompt leaves, counted with the model's tokenizer, and the answer runs to it."""
    prompt = "word " * 7600 + f"[[length:{ANSWER_TOKENS * 10}]]"
    completion = client.completions.create(model="any", prompt=prompt)
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None
    assert completion.usage.total_tokens == 8192
