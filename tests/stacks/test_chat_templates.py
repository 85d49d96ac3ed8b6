"""Each model's prompt from the relay equals its own chat template's, for every pattern of roles.

The model's template (tests/stacks/chat_templates.py: its tokenizer's Jinja where it has one,
its card's documented layout transcribed where it does not) is rendered as transformers'
`apply_chat_template` renders it: a sandboxed Jinja environment with trim_blocks and
lstrip_blocks, `raise_exception` defined, the tokenizer's bos/eos tokens. Beside it, the relay's
renderer reads the catalog's `prompt_template` exactly as the function does (the stack's
PROMPT_TEMPLATE setting). Where the template refuses a conversation, the relay must refuse it
too. The relay always asks for an answer, so its prompt is compared with the template rendered
with add_generation_prompt=True; without it, the template gives the relay's prompt minus the
generation cue.
"""

from __future__ import annotations

from collections.abc import Sequence

import jinja2.sandbox
import pytest
from streamer.errors import ApiError
from streamer.prompt_template import PromptTemplate, parse_messages

from stacks.catalog import load_catalog
from tests.stacks.chat_templates import BASE_MODELS, CHAT_TEMPLATES, ChatTemplate

Conversation = Sequence[dict[str, str]]


class TemplateRefusal(Exception):
    """The model's template called raise_exception: it does not take this conversation."""


def _raise_exception(message: str) -> None:
    raise TemplateRefusal(message)


# As transformers' apply_chat_template compiles a chat template.
_JINJA = jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
_JINJA.globals["raise_exception"] = _raise_exception

CATALOG = load_catalog()


def _relay(model_id: str) -> PromptTemplate:
    return PromptTemplate.from_json(CATALOG.get(model_id).prompt_template)


def _render(chat: ChatTemplate, messages: Conversation, *, add_generation_prompt: bool) -> str:
    return _JINJA.from_string(chat.jinja).render(
        messages=list(messages),
        add_generation_prompt=add_generation_prompt,
        bos_token=chat.bos_token,
        eos_token=chat.eos_token,
    )


def _as_documented(chat: ChatTemplate, messages: Conversation) -> list[dict[str, str]]:
    """The conversation as the model's documented convention gives it a system message: in
    front of the first user message (for templates without a system role)."""
    if chat.system_joiner is None or messages[0]["role"] != "system":
        return list(messages)
    system, first, *rest = messages
    folded = {"role": "user", "content": system["content"] + chat.system_joiner + first["content"]}
    return [folded, *rest]


def _relay_prompt(model_id: str, messages: Conversation) -> str:
    template = _relay(model_id)
    return template.render(parse_messages(list(messages), template=template))


def _chat(*turns: tuple[str, str]) -> list[dict[str, str]]:
    return [{"role": role, "content": content} for role, content in turns]


# Texts that exercise what the templates do to content: surrounding spaces, a blank line, CRLF.
PLAIN = {
    "system": "Be brief.",
    "q1": "What is the capital of France?",
    "a1": "Paris.",
    "q2": "And of Japan?",
}
AWKWARD = {
    "system": "  Be brief.\n\nAnswer in English.  ",
    "q1": " First line\r\n\r\nsecond ",
    "a1": "Paris.\n\nIt is.",
    "q2": "One\n\n\nmore\n",
}


def _patterns(text: dict[str, str]) -> dict[str, list[dict[str, str]]]:
    return {
        "user": _chat(("user", text["q1"])),
        "system+user": _chat(("system", text["system"]), ("user", text["q1"])),
        "user+assistant+user": _chat(
            ("user", text["q1"]), ("assistant", text["a1"]), ("user", text["q2"])
        ),
        "system+user+assistant+user": _chat(
            ("system", text["system"]),
            ("user", text["q1"]),
            ("assistant", text["a1"]),
            ("user", text["q2"]),
        ),
    }


CASES = [
    pytest.param(model_id, messages, id=f"{model_id}-{texts}-{name}")
    for model_id in sorted(CHAT_TEMPLATES)
    for texts, text in (("plain", PLAIN), ("awkward", AWKWARD))
    for name, messages in _patterns(text).items()
]


def test_every_catalog_model_has_a_template_or_is_a_base_model() -> None:
    """Of the models the relay lays chats out for (the others' engines use the model's own
    template: test_catalog.py)."""
    relay_laid_out = {m.id for m in CATALOG.models.values() if m.prompt_template is not None}
    assert set(CHAT_TEMPLATES) | set(BASE_MODELS) == relay_laid_out
    assert not set(CHAT_TEMPLATES) & set(BASE_MODELS)


@pytest.mark.parametrize(("model_id", "messages"), CASES)
def test_the_relays_prompt_is_the_models_own(model_id: str, messages: Conversation) -> None:
    chat = CHAT_TEMPLATES[model_id]
    expected = _render(chat, _as_documented(chat, messages), add_generation_prompt=True)
    # What the model reads: what TGI puts in front (its tokenizer's BOS), then the relay's text.
    assert chat.tgi_prefix + _relay_prompt(model_id, messages) == expected


@pytest.mark.parametrize(("model_id", "messages"), CASES)
def test_without_the_generation_cue_the_template_gives_the_relays_history(
    model_id: str, messages: Conversation
) -> None:
    chat = CHAT_TEMPLATES[model_id]
    template = _relay(model_id)
    cue = template.separator + template.generation if template.generation else ""
    prompt = chat.tgi_prefix + _relay_prompt(model_id, messages)
    history = _render(chat, _as_documented(chat, messages), add_generation_prompt=False)
    assert prompt == history + cue


# Conversations a chat template may refuse; where the model's template does, so must the relay.
REFUSABLE = {
    "assistant first": _chat(("assistant", "Hi."), ("user", "Hello?")),
    "two users": _chat(("user", "Hello?"), ("user", "Anyone?")),
    "system then assistant": _chat(
        ("system", "Be brief."), ("assistant", "Hi."), ("user", "Hello?")
    ),
    "two assistants": _chat(
        ("user", "Hello?"), ("assistant", "Hi."), ("assistant", "Hi."), ("user", "Hello?")
    ),
}


@pytest.mark.parametrize("model_id", sorted(CHAT_TEMPLATES))
@pytest.mark.parametrize("pattern", sorted(REFUSABLE))
def test_what_the_models_template_refuses_the_relay_refuses(model_id: str, pattern: str) -> None:
    chat = CHAT_TEMPLATES[model_id]
    messages = REFUSABLE[pattern]
    # Every template here takes turns starting with the user: each of these breaks that.
    with pytest.raises(TemplateRefusal):
        _render(chat, _as_documented(chat, messages), add_generation_prompt=True)
    with pytest.raises(ApiError) as refused:
        parse_messages(list(messages), template=_relay(model_id))
    assert refused.value.kind == "invalid_request"


@pytest.mark.parametrize("model_id", sorted(CHAT_TEMPLATES))
def test_a_system_message_after_the_first_is_refused_though_some_templates_take_it(
    model_id: str,
) -> None:
    # Falcon Instruct's template skips such a message silently and the 180B layout would label it
    # "Falcon:"; Mistral's refuses it. The relay refuses it for every model: a 422 says why.
    messages = _chat(("user", "Hello?"), ("system", "Be brief."), ("user", "Hello?"))
    with pytest.raises(ApiError, match="only the first message may be one"):
        parse_messages(messages, template=_relay(model_id))


@pytest.mark.parametrize(
    "model_id", [m for m, chat in sorted(CHAT_TEMPLATES.items()) if chat.system_joiner]
)
def test_a_template_without_a_system_role_refuses_one_the_relay_folds_in(model_id: str) -> None:
    # The one place the relay takes what the template does not: a system message, which it
    # lays out as the model's documented convention does (in front of the first question).
    chat = CHAT_TEMPLATES[model_id]
    messages = _chat(("system", "Be brief."), ("user", "Hello?"))
    with pytest.raises(TemplateRefusal):
        _render(chat, messages, add_generation_prompt=True)
    assert chat.system_joiner is not None
    assert _relay_prompt(model_id, messages).startswith(
        _render(
            chat,
            _chat(("user", f"Be brief.{chat.system_joiner}Hello?")),
            add_generation_prompt=True,
        )[len(chat.tgi_prefix) :]
    )


def test_mistral_prompt_leaves_the_bos_token_to_tgi() -> None:
    # Mistral 7B Instruct's tokenizer adds BOS itself (tokenizer_config.json add_bos_token true;
    # its model card encodes a "<s>[INST] ..." text with add_special_tokens=False for that
    # reason), and TGI 2.0.0, which serves it here, tokenizes `inputs` with the tokenizer's
    # defaults: text_generation_server/models/flash_causal_lm.py batch_tokenized_inputs calls
    # tokenizer(batch_inputs, truncation=True, max_length=...) (add_special_tokens=True), and
    # router/src/validation.rs encodes with `tokenizer.encode(tokenizer_query, true)`
    # (huggingface/text-generation-inference v2.0.0 = c38a7d7ddd9c612e368adec1ef94583be602fc7e;
    # v1.4.0 the same; from v2.1 only TGI's own chat route turns it off, and a request cannot).
    # A literal "<s>" is the BOS special token, so "<s>" in `inputs` gave the model two BOS.
    prompt = _relay_prompt(
        "huggingface-llm-mistral-7b-instruct", _chat(("user", "What is a falcon?"))
    )
    assert prompt == "[INST] What is a falcon? [/INST]"
    assert CHAT_TEMPLATES["huggingface-llm-mistral-7b-instruct"].tgi_prefix == "<s>"


def test_mistral_answer_history_is_followed_by_a_space_as_in_v0_1() -> None:
    prompt = _relay_prompt(
        "huggingface-llm-mistral-7b-instruct",
        _chat(("user", "Hi?"), ("assistant", "Hello."), ("user", "Bye?")),
    )
    assert prompt == "[INST] Hi? [/INST]Hello.</s> [INST] Bye? [/INST]"


def test_falcon_instruct_only_strips_the_system_text() -> None:
    for model_id in (
        "huggingface-llm-falcon-7b-instruct-bf16",
        "huggingface-llm-falcon-40b-instruct-bf16",
    ):
        prompt = _relay_prompt(
            model_id, _chat(("system", " Rules:\n\n1. Be brief. "), ("user", "a\n\nb"))
        )
        assert prompt == "Rules:\n\n1. Be brief.\n\nUser: a\nb\n\nAssistant:"


@pytest.mark.parametrize("model_id", BASE_MODELS)
def test_base_models_continue_the_text_as_it_stands(model_id: str) -> None:
    # The base models have no prompt format (huggingface/blog falcon-180b.md: "The base model has
    # no prompt format"; Falcon 7B/40B and Mistral 7B's cards document plain text generation):
    # the text goes as it is, nothing added, for TGI to continue.
    text = "The falcon is a bird of prey that"
    assert _relay_prompt(model_id, _chat(("user", text))) == text
    conversation = _chat(("system", "A"), ("user", "B"), ("assistant", "C"), ("user", "D"))
    assert _relay_prompt(model_id, conversation) == "A\nB\nC\nD"
    assert _relay(model_id).generation == ""
