"""How long an OpenAI answer without max_tokens may run: the limit, within the context's room.

TGI refuses prompt + max_new_tokens above MAX_TOTAL_TOKENS (it never lowers max_new_tokens), so
the room must never be overestimated; the relay's tokenizer, where it has one, is the emulator's
stand-in here, which counts words.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st
from streamer.answer_room import AnswerRoom, ContextWindow
from streamer.prompt_tokens import PromptCounter

from jumpstream.emulator.tokenizer import estimate_input_tokens, stand_in_tokenizer_json
from tests.streamer.support import (
    CapturedLog,
    ScriptedUpstream,
    answer_events,
    call,
    catalog_template,
    make_app,
)

FALCON = ContextWindow(max_total_tokens=2048, max_input_tokens=1024)
MISTRAL = ContextWindow(max_total_tokens=8192, max_input_tokens=8191)
MISTRAL_INSTRUCT = "huggingface-llm-mistral-7b-instruct"


@pytest.fixture
def counter(tmp_path: Path) -> PromptCounter:
    path = tmp_path / "tokenizer.json"
    path.write_text(stand_in_tokenizer_json(), encoding="utf-8")
    return PromptCounter(str(path), region="us-east-1", logger=CapturedLog().logger)


def room(limit: int, window: ContextWindow | None, counter: PromptCounter | None = None) -> int:
    answer_room = AnswerRoom(limit=limit, window=window, counter=counter)
    return anyio.run(answer_room.max_new_tokens, "word " * 3000)


def test_a_limit_every_prompt_leaves_room_for_is_asked_for_as_it_is() -> None:
    # Falcon's 2048 minus its longest prompt (1024) leaves 1024 after any prompt TGI takes.
    assert room(1024, FALCON) == 1024
    assert room(1024, None) == 1024  # a relay that does not know the context: only the limit


def test_with_the_tokenizer_the_room_is_what_the_counted_prompt_leaves(
    counter: PromptCounter,
) -> None:
    # 3000 words: 3000 tokens for the stand-in tokenizer, so 8192 - 3000 are left.
    assert room(8000, MISTRAL, counter) == 8192 - 3000
    assert room(1024, MISTRAL, counter) == 1024
    short = AnswerRoom(limit=1024, window=MISTRAL, counter=counter)
    assert anyio.run(short.max_new_tokens, "Hello") == 1024


def test_without_the_tokenizer_the_prompts_bytes_bound_its_tokens() -> None:
    # 15000 bytes are more than any prompt Mistral takes: the room after its longest prompt.
    assert room(1024, MISTRAL) == 1
    falcon_limit = AnswerRoom(limit=1500, window=FALCON, counter=None)
    assert anyio.run(falcon_limit.max_new_tokens, "Hi") == 1500
    assert anyio.run(falcon_limit.max_new_tokens, "x" * 700) == 2048 - 708


def test_a_tokenizer_that_cannot_be_loaded_falls_back_to_the_byte_bound(tmp_path: Path) -> None:
    broken = PromptCounter(
        str(tmp_path / "missing.json"), region="us-east-1", logger=CapturedLog().logger
    )
    assert room(1024, MISTRAL, broken) == 1


@given(st.text(max_size=300), st.integers(min_value=1, max_value=4096))
def test_the_room_never_lets_the_emulated_tgi_refuse(prompt: str, limit: int) -> None:
    """Whatever the prompt, prompt tokens + the room fit the context (the emulator's count)."""
    window = ContextWindow(max_total_tokens=2048, max_input_tokens=2047)
    tokens = estimate_input_tokens(prompt)
    length = anyio.run(AnswerRoom(limit=limit, window=window, counter=None).max_new_tokens, prompt)
    assert 1 <= length <= limit
    assert tokens + length <= window.max_total_tokens


def test_an_openai_request_without_max_tokens_asks_for_the_room(tmp_path: Path) -> None:
    """The route narrows the default; a caller's own max_tokens is sent as it is; POST / keeps
    TGI's own default."""
    path = tmp_path / "tokenizer.json"
    path.write_text(stand_in_tokenizer_json(), encoding="utf-8")
    prompt = "word " * 3000
    chat = {"messages": [{"role": "user", "content": prompt}]}
    requests: list[tuple[str, dict[str, object], int]] = [
        ("/v1/completions", {"prompt": "Hello"}, 8000),
        ("/v1/completions", {"prompt": prompt}, 8192 - 3000),
        ("/v1/chat/completions", chat, 8192 - 3000 - 2),  # the template's `[INST] `, ` [/INST]`
        ("/v1/completions", {"prompt": prompt, "max_tokens": 7000}, 7000),
        ("/", {"inputs": "Hello"}, 100),
    ]
    upstream = ScriptedUpstream(answer_events(["Hi"]))
    app = make_app(
        upstream,
        max_new_tokens_limit=8000,
        context_window=MISTRAL,
        tokenizer_uri=str(path),
        prompt_template=catalog_template(MISTRAL_INSTRUCT),
    )
    for route, body, expected in requests:
        response = call(app, path=route, json_body=body)
        assert response.status_code == 200, response.text
        assert upstream.bodies[-1]["parameters"]["max_new_tokens"] == expected, route
    assert len(upstream.bodies) == len(requests)
    # Without the tokenizer, the prompt's 15000 bytes bound it: the room after any prompt.
    no_tokenizer = make_app(upstream, max_new_tokens_limit=8000, context_window=MISTRAL)
    call(no_tokenizer, path="/v1/completions", json_body={"prompt": prompt})
    assert upstream.bodies[-1]["parameters"]["max_new_tokens"] == 1


def test_a_chat_the_engine_lays_out_leaves_room_for_what_its_template_adds(
    counter: PromptCounter,
) -> None:
    """The relay never sees the model's own chat template: each message is allowed 8 tokens of
    it, and the template 64 besides."""
    answer_room = AnswerRoom(limit=8000, window=MISTRAL, counter=counter)
    text = "word " * 3000
    assert anyio.run(answer_room.max_new_tokens, text) == 8192 - 3000
    laid_out = anyio.run(lambda: answer_room.max_new_tokens(text, engine_turns=2))
    assert laid_out == 8192 - 3000 - 64 - 2 * 8
    no_tokenizer = AnswerRoom(limit=1500, window=FALCON, counter=None)
    assert anyio.run(lambda: no_tokenizer.max_new_tokens("x" * 700, engine_turns=1)) == (
        2048 - 708 - 64 - 8
    )


@pytest.mark.parametrize("engine", ["lmi", "vllm"])
def test_an_openai_chat_laid_out_by_the_engine_asks_for_the_room_its_messages_leave(
    engine: str, tmp_path: Path
) -> None:
    path = tmp_path / "tokenizer.json"
    path.write_text(stand_in_tokenizer_json(), encoding="utf-8")
    upstream = ScriptedUpstream([])
    app = make_app(
        upstream,
        serving_engine=engine,
        engine_chat_template=True,
        max_new_tokens_limit=8000,
        context_window=MISTRAL,
        tokenizer_uri=str(path),
    )
    messages = [
        {"role": "system", "content": "word " * 1000},
        {"role": "user", "content": "word " * 2000},
    ]
    call(app, path="/v1/chat/completions", json_body={"messages": messages})
    # 3000 words of messages (joined by a blank line), two turns of the template's allowance.
    assert upstream.bodies[-1]["max_tokens"] == 8192 - 3000 - 64 - 2 * 8
    call(app, path="/v1/chat/completions", json_body={"messages": messages, "max_tokens": 9})
    assert upstream.bodies[-1]["max_tokens"] == 9
