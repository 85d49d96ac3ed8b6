"""The stand-in model: its answers and TGI's stopping criteria applied to them, without sockets."""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jumpstream.emulator import answers
from jumpstream.emulator.model import (
    DEFAULT_MODEL_ID,
    StandInModel,
    generate_response,
    profile_for,
    stream_events,
)
from jumpstream.emulator.request import DEFAULT_MAX_NEW_TOKENS, GenerateRequest
from jumpstream.emulator.tokenizer import estimate_input_tokens

KANA = re.compile(r"[\u3040-\u30ff]")
KANJI = re.compile(r"[\u4e00-\u9fff]")
ENGLISH_PROMPTS = ["What is streaming?", "Tell me about SageMaker.", "hi", "Explain tokens."]
JAPANESE_PROMPTS = [
    "日本の首都は？",
    "こんにちは",
    "ストリーミングとは何ですか",
    "説明してください",
]
MODEL = StandInModel()


def answer_text(model: StandInModel, prompt: str) -> str:
    return "".join(token.text for token in model.answer(prompt) if not token.special)


@pytest.mark.parametrize("prompt", ENGLISH_PROMPTS + JAPANESE_PROMPTS)
def test_the_same_prompt_always_gets_the_same_tokens(prompt: str) -> None:
    assert StandInModel().answer(prompt) == StandInModel().answer(prompt)


@pytest.mark.parametrize("prompt", ENGLISH_PROMPTS)
def test_an_english_prompt_gets_an_english_answer_in_word_pieces(prompt: str) -> None:
    tokens = MODEL.answer(prompt)
    text = answer_text(MODEL, prompt)
    assert text.isascii()
    assert len(text.split()) > 10
    assert tokens[0].text.startswith(" ")
    assert all(token.text for token in tokens)


@pytest.mark.parametrize("prompt", JAPANESE_PROMPTS)
def test_a_japanese_prompt_gets_a_japanese_answer(prompt: str) -> None:
    text = answer_text(MODEL, prompt)
    assert KANA.search(text)
    assert KANJI.search(text)
    pieces = [token.text for token in MODEL.answer(prompt)[:-1]]
    japanese_only = [piece for piece in pieces if piece and not piece.isascii()]
    assert all(len(piece) <= 2 for piece in japanese_only)


def test_japanese_answers_hold_back_some_characters_over_an_empty_token() -> None:
    held = 0
    for prompt in JAPANESE_PROMPTS:
        tokens = MODEL.answer(prompt)
        for token, following in itertools.pairwise(tokens):
            if token.text == "":
                held += 1
                assert not token.special
                assert KANJI.match(following.text), following
    assert held > 0


@pytest.mark.parametrize(
    ("model_id", "eos"),
    [
        (DEFAULT_MODEL_ID, "<|endoftext|>"),
        ("huggingface-llm-falcon-40b-bf16", "<|endoftext|>"),
        ("huggingface-llm-mistral-7b-instruct", "</s>"),
        ("huggingface-llm-rinna-3-6b-instruction-ppo-bf16", "</s>"),
        ("huggingface-llm-bilingual-rinna-4b-instruction-ppo-bf16", "</s>"),
    ],
)
def test_the_answer_ends_with_the_models_eos_special_token(model_id: str, eos: str) -> None:
    tokens = StandInModel(model_id).answer("Hello")
    assert tokens[-1].text == eos
    assert tokens[-1].special
    assert not any(token.special for token in tokens[:-1])


def test_rinna_3_6b_writes_newlines_as_nl_and_others_as_newlines() -> None:
    rinna = answer_text(
        StandInModel("huggingface-llm-rinna-3-6b-instruction-ppo-bf16"), "こんにちは"
    )
    assert "<NL>" in rinna
    assert "\n" not in rinna
    assert "\n\n" in answer_text(MODEL, "こんにちは")


@pytest.mark.parametrize("prompt", ["What is streaming?", "こんにちは"])
def test_markdown_answers_the_markdown_sample_whatever_the_prompt(prompt: str) -> None:
    tokens = MODEL.answer(prompt, markdown=True)
    assert "".join(token.text for token in tokens[:-1]) == answers.MARKDOWN
    assert tokens[-1].special
    assert MODEL.answer(prompt, markdown=True, answer_length=5)[:-1] == tokens[:5]
    generation = MODEL.generate(GenerateRequest(inputs=prompt, max_new_tokens=256), markdown=True)
    assert generation.finish_reason == "eos_token"  # a chat page's default budget holds it all
    rinna = StandInModel("huggingface-llm-rinna-3-6b-instruction-ppo-bf16")
    in_rinna = "".join(token.text for token in rinna.answer(prompt, markdown=True)[:-1])
    assert in_rinna == answers.MARKDOWN.replace("\n", "<NL>")


def test_mistral_allows_its_longer_context() -> None:
    assert profile_for("huggingface-llm-mistral-7b").limits.max_total_tokens == 8192
    assert profile_for(DEFAULT_MODEL_ID).limits.max_total_tokens == 2048


def test_the_natural_answer_fits_tgis_default_token_budget() -> None:
    for prompt in ENGLISH_PROMPTS + JAPANESE_PROMPTS:
        generation = MODEL.generate(GenerateRequest(inputs=prompt))
        assert generation.finish_reason == "eos_token"
        assert len(generation.tokens) < DEFAULT_MAX_NEW_TOKENS


@settings(max_examples=200)
@given(st.integers(min_value=1, max_value=150), st.sampled_from(ENGLISH_PROMPTS + JAPANESE_PROMPTS))
def test_max_new_tokens_is_honoured_like_tgi(limit: int, prompt: str) -> None:
    natural = MODEL.answer(prompt)
    generation = MODEL.generate(GenerateRequest(inputs=prompt, max_new_tokens=limit))
    assert len(generation.tokens) == min(limit, len(natural))
    assert list(generation.tokens) == natural[: len(generation.tokens)]
    if limit < len(natural):
        assert generation.finish_reason == "length"
        assert not generation.tokens[-1].special
    elif limit == len(natural):
        # TGI checks the length before EOS: an EOS landing on the limit reports "length".
        assert generation.finish_reason == "length"
        assert generation.tokens[-1].special
    else:
        assert generation.finish_reason == "eos_token"


@settings(max_examples=100)
@given(st.integers(min_value=0, max_value=400), st.sampled_from(ENGLISH_PROMPTS + JAPANESE_PROMPTS))
def test_answer_length_stretches_the_answer_to_exactly_n_tokens(length: int, prompt: str) -> None:
    tokens = MODEL.answer(prompt, answer_length=length)
    assert len(tokens) == length + 1
    assert tokens[-1].special
    if tokens[:-1]:
        assert tokens[-2].text != ""


def test_a_stop_sequence_ends_the_generation_and_stays_in_the_text() -> None:
    natural = answer_text(MODEL, "What is streaming?")
    stop = natural.split()[3]
    generation = MODEL.generate(
        GenerateRequest(inputs="What is streaming?", stop=(stop,), return_full_text=False)
    )
    assert generation.finish_reason == "stop_sequence"
    assert generation.generated_text.endswith(stop)
    assert len(generation.generated_text) < len(natural)


def test_a_stop_sequence_that_never_appears_changes_nothing() -> None:
    request = GenerateRequest(inputs="hi", stop=("zzz-never",))
    assert MODEL.generate(request).finish_reason == "eos_token"


@pytest.mark.parametrize("full_text", [None, True, False])
def test_return_full_text_prepends_the_prompt_by_default(full_text: bool | None) -> None:
    prompt = "What is streaming?"
    generation = MODEL.generate(GenerateRequest(inputs=prompt, return_full_text=full_text))
    answer = answer_text(MODEL, prompt)
    expected = answer if full_text is False else prompt + answer
    assert generation.generated_text == expected


def test_stream_events_look_like_tgis() -> None:
    request = GenerateRequest(inputs="hi", stream=True)
    generation = MODEL.generate(request)
    events = stream_events(generation, request)
    assert [event["index"] for event in events] == list(range(1, len(events) + 1))
    for event in events:
        assert list(event) == ["index", "token", "generated_text", "details"]
        assert list(event["token"]) == ["id", "text", "logprob", "special"]
        assert event["token"]["logprob"] < 0
    assert all(event["generated_text"] is None for event in events[:-1])
    assert all(event["details"] is None for event in events)
    assert events[-1]["generated_text"] == generation.generated_text


def test_details_appear_only_in_the_final_event_when_asked() -> None:
    request = GenerateRequest(inputs="日本の首都は？", stream=True, details=True, max_new_tokens=7)
    events = stream_events(MODEL.generate(request), request)
    assert all(event["details"] is None for event in events[:-1])
    assert events[-1]["details"] == {
        "finish_reason": "length",
        "generated_tokens": 7,
        "seed": None,
        "input_length": estimate_input_tokens("日本の首都は？"),
    }


def test_sampling_reports_the_seed() -> None:
    request = GenerateRequest(inputs="hi", do_sample=True, seed=42, details=True)
    assert MODEL.generate(request).seed == 42
    unseeded = MODEL.generate(GenerateRequest(inputs="hi", do_sample=True))
    assert isinstance(unseeded.seed, int)


def test_the_non_streaming_reply_is_a_one_element_list() -> None:
    request = GenerateRequest(inputs="hi")
    generation = MODEL.generate(request)
    assert generate_response(generation, request) == [{"generated_text": generation.generated_text}]
    detailed = GenerateRequest(inputs="hi", details=True)
    (reply,) = generate_response(MODEL.generate(detailed), detailed)
    assert reply["details"]["generated_tokens"] == len(reply["details"]["tokens"])
