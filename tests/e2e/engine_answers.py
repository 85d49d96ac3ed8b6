"""What the emulated model says on each engine, for the end-to-end tests of every engine.

Computed from the emulator's own parts, as tests/e2e/support.py computes TGI's: a prompt gets the
same tokens on every engine; a chat is laid out by the relay with the catalog's template on TGI,
and by the engine with its chat template on LMI and vLLM (the emulator's stand-in template,
``jumpstream.emulator.chat.render``), after which the model starts its turn without a space. What
differs on the wire (LMI's empty EOS text, vLLM cutting a matched stop string) is the engines'
own code (engine_lmi.shown_text, engine_vllm.shown_texts), used here as it is.
"""

from __future__ import annotations

from typing import Any, Final

from streamer.prompt_template import Message, PromptTemplate

from jumpstream.emulator.chat import read_messages, render
from jumpstream.emulator.directives import parse_directives, read_directives
from jumpstream.emulator.engine_vllm import shown_texts
from jumpstream.emulator.model import Generation, StandInModel
from jumpstream.emulator.request import GenerateRequest, input_tokens, parse_body
from jumpstream.emulator.tokenizer import estimate_input_tokens
from jumpstream.local import DEFAULT_MODEL_ID
from stacks.catalog import load_catalog

ENGINES: Final = ("tgi", "lmi", "vllm")
#: More than any natural answer: a chat without max_tokens ends with the model's EOS.
_ROOMY: Final = 1000
_MODEL: Final = StandInModel(DEFAULT_MODEL_ID)
_TEMPLATE: Final = PromptTemplate.from_json(load_catalog().get(DEFAULT_MODEL_ID).prompt_template)


def prompt_generation(
    inputs: str, max_new_tokens: int = _ROOMY, stop: tuple[str, ...] = ()
) -> Generation:
    """The model's generation for a prompt (directives stripped), on any engine."""
    prompt, directives = parse_directives(inputs)
    request = GenerateRequest(inputs=prompt, max_new_tokens=max_new_tokens, stop=stop)
    return _MODEL.generate(
        request, answer_length=directives.answer_length, markdown=directives.markdown
    )


def prompt_tokens(
    engine: str, inputs: str, max_new_tokens: int = _ROOMY, stop: tuple[str, ...] = ()
) -> list[str]:
    """The text of each token the caller sees for a prompt, in order, empty ones included."""
    generation = prompt_generation(inputs, max_new_tokens, stop)
    if engine in ("lmi", "vllm"):  # vLLM, and LMI around it, cut a stop sequence from the text
        return shown_texts(generation, stop)[0]
    return [token.text for token in generation.tokens if not token.special]


def chat_prompt(engine: str, messages: list[dict[str, Any]]) -> str:
    """The prompt the model is given for a chat on ``engine``, directives stripped."""
    if engine == "tgi":
        rendered = _TEMPLATE.render([Message(m["role"], m["content"]) for m in messages])
        return parse_directives(rendered)[0]
    body, _ = read_directives({"messages": messages})
    return render(read_messages(body["messages"]))


def chat_generation(
    engine: str, messages: list[dict[str, Any]], max_new_tokens: int = _ROOMY
) -> Generation:
    """The model's generation for a chat on ``engine``."""
    _, directives = read_directives({"messages": messages})
    request = GenerateRequest(inputs=chat_prompt(engine, messages), max_new_tokens=max_new_tokens)
    return _MODEL.generate(
        request,
        answer_length=directives.answer_length,
        markdown=directives.markdown,
        chat_turn=engine != "tgi",
    )


def chat_tokens(
    engine: str, messages: list[dict[str, Any]], max_new_tokens: int = _ROOMY
) -> list[str]:
    generation = chat_generation(engine, messages, max_new_tokens)
    return [token.text for token in generation.tokens if not token.special]


def chat_answer(engine: str, messages: list[dict[str, Any]], max_new_tokens: int = _ROOMY) -> str:
    """A chat's answer as the relay's chat routes show it: without leading whitespace."""
    return "".join(chat_tokens(engine, messages, max_new_tokens)).lstrip()


def chat_prompt_tokens(engine: str, messages: list[dict[str, Any]]) -> int:
    """The prompt's length in tokens, as the engine (vLLM) or the relay's stand-in tokenizer
    (TGI here, whose version reports none) counts the prompt the model is given."""
    prompt = chat_prompt(engine, messages)
    if engine == "tgi":
        return input_tokens(parse_body({"inputs": prompt}))
    return estimate_input_tokens(prompt)
