"""What the model catalog says about the model the emulator stands in for, read in one place.

The emulator and ``jumpstream local`` need the same few facts about a model: the engine that
serves it (which decides every byte the emulated endpoint sends and every setting the relay gets),
how its chats are laid out, and whether it reports a prompt's length in tokens. They are the
catalog's (``stacks/models.json``, read through ``stacks.catalog``); this module only says what
they mean here. A model the catalog does not know runs on a current TGI and has no chat layout.

The catalog's ``engine`` and ``chat`` facts are read by their ``models.json`` names, with TGI's
meaning when a model does not state them (the catalog before issue #18 states neither).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Final

from streamer import contract

from stacks.catalog import load_catalog

__all__ = [
    "DEFAULT_ENGINE",
    "ChatLayout",
    "catalog_engine",
    "chat_layout",
    "engine_reports_prompt_tokens",
    "reports_prompt_tokens",
    "serving_engine",
]

#: The engine of a model whose catalog entry names none: TGI, as the relay assumes too.
DEFAULT_ENGINE: Final = contract.SERVING_ENGINE.default
#: The catalog's `chat` value for a model whose engine applies the model's own chat template.
ENGINE_CHAT: Final = "engine"


def _catalog_model(model_id: str) -> Any | None:
    return load_catalog().models.get(model_id)


@functools.cache
def catalog_engine(model_id: str) -> str:
    """The engine the catalog says serves ``model_id`` (``tgi`` when it says none)."""
    model = _catalog_model(model_id)
    engine = DEFAULT_ENGINE if model is None else getattr(model, "engine", DEFAULT_ENGINE)
    return str(engine)


def serving_engine(model_id: str, engine: str | None = None) -> str:
    """The engine an endpoint runs ``model_id`` on: ``engine`` when one is chosen (``--engine``),
    else the catalog's."""
    return engine or catalog_engine(model_id)


@functools.cache
def reports_prompt_tokens(model_id: str) -> bool:
    """The catalog's word on whether the model's TGI reports prompt tokens (StreamDetails'
    input_length, since TGI 2.3); a model the catalog does not know runs a current TGI."""
    model = _catalog_model(model_id)
    return model is None or bool(model.reports_prompt_tokens)


def engine_reports_prompt_tokens(engine: str, model_id: str) -> bool:
    """Whether the endpoint tells the relay a prompt's length in tokens: TGI as the catalog
    says, vLLM always (its usage chunk), LMI's rolling batch never (its details carry none)."""
    if engine == "vllm":
        return True
    if engine == "lmi":
        return False
    return reports_prompt_tokens(model_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatLayout:
    """How chats reach the model: the relay lays them out (``prompt_template``, the catalog's
    JSON), or the engine does with the model's own template (``engine_chat_template``), or
    neither (a base model takes prompts only). Never both: the relay's settings exclude it."""

    prompt_template: str | None = None
    engine_chat_template: bool = False


def chat_layout(model_id: str, engine: str) -> ChatLayout:
    """The chat layout of ``model_id`` served by ``engine``.

    The catalog's own pairing is taken as it is. A model with a relay-side layout that is made
    to run on LMI or vLLM instead (``--engine``) is an instruct model there: those engines lay
    out its chats with its own template, as JumpStart deploys instruct models on them.
    """
    model = _catalog_model(model_id)
    if model is None:
        return ChatLayout()
    template = getattr(model, "prompt_template", None) or None
    engine_side = (
        bool(getattr(model, "engine_chat_template", False))
        or getattr(model, "chat", None) == ENGINE_CHAT
    )
    if engine == DEFAULT_ENGINE:
        return ChatLayout(prompt_template=template)
    return ChatLayout(engine_chat_template=engine_side or template is not None)
