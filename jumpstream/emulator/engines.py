"""The engines the emulator can stand in for, by the name the catalog and the relay use.

Why a table: everything the server does is the same for every engine (signing and target checks,
directives, SageMaker's own faults, pacing, part boundaries); only three things differ, and each
engine module gives them: its answer to a body (a reply to play, or its HTTP error), its failure
before it streams (``[[fault:model_error]]``), and its refusal of a body that is not JSON.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol

from jumpstream.emulator import engine_lmi, engine_tgi, engine_vllm
from jumpstream.emulator.directives import Directives
from jumpstream.emulator.model import StandInModel
from jumpstream.emulator.reply import ContainerError, Reply
from jumpstream.emulator.sse import SseStyle

__all__ = ["ENGINES", "Engine", "engine_named"]


class Answer(Protocol):
    def __call__(
        self, body: Any, *, model: StandInModel, directives: Directives, style: SseStyle
    ) -> Reply | ContainerError: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Engine:
    """One engine's wire format: how it answers, fails and refuses."""

    name: str
    answer: Answer
    model_failure: Callable[[], ContainerError]
    unreadable_body: Callable[[str], ContainerError]


ENGINES: Final[dict[str, Engine]] = {
    engine.name: engine
    for engine in (
        Engine(
            name="tgi",
            answer=engine_tgi.answer,
            model_failure=engine_tgi.model_failure,
            unreadable_body=engine_tgi.unreadable_body,
        ),
        Engine(
            name="lmi",
            answer=engine_lmi.answer,
            model_failure=engine_lmi.model_failure,
            unreadable_body=engine_lmi.unreadable_body,
        ),
        Engine(
            name="vllm",
            answer=engine_vllm.answer,
            model_failure=engine_vllm.model_failure,
            unreadable_body=engine_vllm.unreadable_body,
        ),
    )
}


def engine_named(name: str) -> Engine:
    """The engine called ``name``; the table names the contract's ENGINES, which the catalog and
    the relay name them by."""
    try:
        return ENGINES[name]
    except KeyError:
        raise ValueError(f"unknown engine {name!r}; choose one of: {', '.join(ENGINES)}") from None
