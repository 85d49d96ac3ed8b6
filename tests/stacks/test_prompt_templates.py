"""Every model's chat prompt, rendered from the catalog, pinned against its model card.

The expected strings are written out by hand from each model's own documentation (quoted in the
comments), not computed: a change to the catalog's template or to the renderer that alters a
prompt a model was trained on fails here.
"""

from __future__ import annotations

import json

import pytest
from streamer.prompt_template import Message, PromptTemplate, parse_messages
from streamer.stop_sequences import StopSequenceTrimmer

from stacks.catalog import CATALOG_PATH

SYSTEM = Message("system", "Be brief.")
ASK = Message("user", "What is the capital of France?")
ANSWER = Message("assistant", "Paris.")
ASK_AGAIN = Message("user", "And of Japan?")
CONVERSATION = [SYSTEM, ASK, ANSWER, ASK_AGAIN]


def _templates() -> dict[str, PromptTemplate]:
    """The relay's layouts: the catalog's `chat` objects (models whose engine lays out chats
    itself, or that take prompts only, have none)."""
    catalog = json.loads(CATALOG_PATH.read_text(encoding="utf-8"))
    return {
        model["id"]: PromptTemplate.from_mapping(model["chat"])
        for model in catalog["models"]
        if isinstance(model["chat"], dict)
    }


TEMPLATES = _templates()

# Each model's expected prompt for CONVERSATION, and for the lone question ASK.
PINNED: dict[str, tuple[str, str]] = {
    # Base models are not trained on a chat layout: the text is continued as it stands.
    "huggingface-llm-falcon-7b-bf16": (
        "Be brief.\nWhat is the capital of France?\nParis.\nAnd of Japan?",
        "What is the capital of France?",
    ),
    "huggingface-llm-falcon-40b-bf16": (
        "Be brief.\nWhat is the capital of France?\nParis.\nAnd of Japan?",
        "What is the capital of France?",
    ),
    "huggingface-llm-falcon-180b-bf16": (
        "Be brief.\nWhat is the capital of France?\nParis.\nAnd of Japan?",
        "What is the capital of France?",
    ),
    "huggingface-llm-mistral-7b": (
        "Be brief.\nWhat is the capital of France?\nParis.\nAnd of Japan?",
        "What is the capital of France?",
    ),
    # tiiuae/falcon-7b-instruct's tokenizer chat template: the system text first (stripped), then
    # "\n\nUser: " and "\n\nAssistant: " turns (stripped, blank lines folded), ending with
    # "\n\nAssistant:".
    "huggingface-llm-falcon-7b-instruct-bf16": (
        "Be brief.\n\nUser: What is the capital of France?\n\nAssistant: Paris."
        "\n\nUser: And of Japan?\n\nAssistant:",
        "\n\nUser: What is the capital of France?\n\nAssistant:",
    ),
    "huggingface-llm-falcon-40b-instruct-bf16": (
        "Be brief.\n\nUser: What is the capital of France?\n\nAssistant: Paris."
        "\n\nUser: And of Japan?\n\nAssistant:",
        "\n\nUser: What is the capital of France?\n\nAssistant:",
    ),
    # tiiuae/falcon-180B-chat: "System: ...\nUser: ...\nFalcon: ...\nUser: ...\nFalcon:".
    "huggingface-llm-falcon-180b-chat-bf16": (
        "System: Be brief.\nUser: What is the capital of France?\nFalcon: Paris.\n"
        "User: And of Japan?\nFalcon:",
        "User: What is the capital of France?\nFalcon:",
    ),
    # Mistral 7B Instruct v0.1: "<s>[INST] {user} [/INST]{answer}</s> [INST] {next} [/INST]",
    # the "<s>" being the BOS TGI's tokenizer adds (tests/stacks/test_chat_templates.py); it has
    # no system turn, so the system text leads the first instruction.
    "huggingface-llm-mistral-7b-instruct": (
        "[INST] Be brief.\n\nWhat is the capital of France? [/INST]Paris.</s> "
        "[INST] And of Japan? [/INST]",
        "[INST] What is the capital of France? [/INST]",
    ),
    # rinna japanese-gpt-neox-3.6b-instruction-ppo: "ユーザー: " / "システム: " utterances joined
    # by "<NL>", newlines inside written "<NL>", ending with "<NL>システム: ". No system turn.
    "huggingface-llm-rinna-3-6b-instruction-ppo-bf16": (
        "ユーザー: Be brief.<NL>What is the capital of France?<NL>システム: Paris.<NL>"
        "ユーザー: And of Japan?<NL>システム: ",
        "ユーザー: What is the capital of France?<NL>システム: ",
    ),
    # rinna bilingual-gpt-neox-4b-instruction-ppo: the same utterances joined by "\n".
    "huggingface-llm-bilingual-rinna-4b-instruction-ppo-bf16": (
        "ユーザー: Be brief.\nWhat is the capital of France?\nシステム: Paris.\n"
        "ユーザー: And of Japan?\nシステム: ",
        "ユーザー: What is the capital of France?\nシステム: ",
    ),
}


def test_every_catalog_model_has_a_pinned_prompt() -> None:
    assert set(PINNED) == set(TEMPLATES)


@pytest.mark.parametrize("model_id", sorted(PINNED))
def test_conversation_renders_as_the_model_card_documents(model_id: str) -> None:
    template = TEMPLATES[model_id]
    checked = parse_messages(
        [{"role": m.role, "content": m.content} for m in CONVERSATION], template=template
    )
    assert template.render(checked) == PINNED[model_id][0]


@pytest.mark.parametrize("model_id", sorted(PINNED))
def test_single_question_renders_as_the_model_card_documents(model_id: str) -> None:
    assert TEMPLATES[model_id].render([ASK]) == PINNED[model_id][1]


def test_rinna_3_6b_writes_newlines_as_nl_both_ways() -> None:
    template = TEMPLATES["huggingface-llm-rinna-3-6b-instruction-ppo-bf16"]
    prompt = template.render([Message("user", "一行目\n二行目\r\n三行目")])
    assert prompt == "ユーザー: 一行目<NL>二行目<NL>三行目<NL>システム: "
    assert template.output_replacements == (("<NL>", "\n"),)


def test_falcon_instruct_folds_blank_lines_as_its_template_does() -> None:
    template = TEMPLATES["huggingface-llm-falcon-7b-instruct-bf16"]
    prompt = template.render([Message("user", "  one\n\ntwo  ")])
    assert prompt == "\n\nUser: one\ntwo\n\nAssistant:"


@pytest.mark.parametrize(
    "model_id", ["huggingface-llm-falcon-7b-instruct-bf16", "huggingface-llm-falcon-180b-chat-bf16"]
)
def test_falcon_chat_models_stop_before_writing_the_next_user_turn(model_id: str) -> None:
    template = TEMPLATES[model_id]
    assert template.stop == ("\nUser:",)
    trimmer = StopSequenceTrimmer(template.stop)
    streamed = [" Tokyo", ".", "\n", "User", ":"]
    assert "".join(trimmer.feed(piece) for piece in streamed) + trimmer.flush() == " Tokyo."


@pytest.mark.parametrize("model_id", sorted(PINNED))
def test_stop_sequences_fit_within_tgis_limit_with_room_for_the_callers(model_id: str) -> None:
    # TGI takes at most 4 stop sequences; a caller must be able to add some of their own.
    assert len(TEMPLATES[model_id].stop) <= 1
