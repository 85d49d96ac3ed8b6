"""The sampling parameters of the vLLM-based engines, read and checked as vLLM checks them.

Why one module for two engines: LMI's rolling batch hands its parameters to vLLM's
``SamplingParams``, and AWS's vLLM container is vLLM, so both refuse the same values in the same
words (``SamplingParams._verify_args``). What differs is where the refusal goes (LMI: an error
line in a stream that said 200; vLLM: an HTTP 400 before the stream) and the names a body uses
(LMI's ``max_new_tokens`` / ``stop_sequences``, OpenAI's ``max_tokens`` / ``stop``); the engines
say which.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from jumpstream.emulator.directives import Directives
from jumpstream.emulator.model import Generation, StandInModel
from jumpstream.emulator.request import GenerateRequest

__all__ = [
    "LMI_NAMES",
    "OPENAI_NAMES",
    "Names",
    "Sampling",
    "SamplingTypeError",
    "generate",
    "read_sampling",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Names:
    """What a body calls the answer's length and its stop strings."""

    max_tokens: str
    stop: str
    #: Whether a single string may stand for one stop string (OpenAI's ``stop``).
    stop_may_be_string: bool


LMI_NAMES: Final = Names(
    max_tokens="max_new_tokens", stop="stop_sequences", stop_may_be_string=False
)
OPENAI_NAMES: Final = Names(max_tokens="max_tokens", stop="stop", stop_may_be_string=True)
_NUMBERS: Final = (
    "temperature",
    "top_p",
    "repetition_penalty",
    "frequency_penalty",
    "presence_penalty",
)


class SamplingTypeError(ValueError):
    """A parameter of the wrong JSON type."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Sampling:
    """The parameters that change what the stand-in model says, and the others vLLM checks."""

    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    repetition_penalty: float | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None

    def problem(self) -> str | None:
        """vLLM's refusal of these values, in its words, or None."""
        checks = (
            (_below(self.max_tokens, 1), f"max_tokens must be at least 1, got {self.max_tokens}."),
            (
                _below(self.temperature, 0.0),
                f"temperature must be non-negative, got {self.temperature}.",
            ),
            (
                self.top_p is not None and not 0.0 < self.top_p <= 1.0,
                f"top_p must be in (0, 1], got {self.top_p}.",
            ),
            (
                self.top_k is not None and self.top_k not in (-1, 0) and self.top_k < 1,
                f"top_k must be -1 (disable), or at least 1, got {self.top_k}.",
            ),
            (
                self.repetition_penalty is not None and not 0.0 < self.repetition_penalty <= 2.0,
                f"repetition_penalty must be in (0, 2], got {self.repetition_penalty}.",
            ),
            (
                _outside_penalty(self.frequency_penalty),
                f"frequency_penalty must be in [-2, 2], got {self.frequency_penalty}.",
            ),
            (
                _outside_penalty(self.presence_penalty),
                f"presence_penalty must be in [-2, 2], got {self.presence_penalty}.",
            ),
        )
        return next((message for failed, message in checks if failed), None)

    @property
    def samples(self) -> bool:
        """Whether the model samples (a positive temperature), which the answer's seed follows."""
        return self.temperature is not None and self.temperature > 0


def read_sampling(raw: dict[str, Any], names: Names) -> Sampling:
    """The sampling parameters of ``raw``; SamplingTypeError names one of the wrong type.
    Parameters vLLM has but the stand-in ignores (``n``, ``logprobs``, ...) are not read."""
    values: dict[str, Any] = {name: _number(raw, name) for name in _NUMBERS}
    stop = raw.get(names.stop)
    if isinstance(stop, str) and names.stop_may_be_string:
        stop = [stop]
    if stop is not None and (
        not isinstance(stop, list) or not all(isinstance(item, str) for item in stop)
    ):
        raise SamplingTypeError(f"{names.stop} must be a list of strings, got {stop!r}.")
    return Sampling(
        max_tokens=_integer(raw, names.max_tokens),
        stop=tuple(stop or ()),
        seed=_integer(raw, "seed"),
        top_k=_integer(raw, "top_k"),
        **values,
    )


def _integer(raw: dict[str, Any], name: str) -> int | None:
    value = raw.get(name)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise SamplingTypeError(f"{name} must be an integer, got {value!r}.")
    return value


def _number(raw: dict[str, Any], name: str) -> float | None:
    value = raw.get(name)
    if value is not None and (not isinstance(value, int | float) or isinstance(value, bool)):
        raise SamplingTypeError(f"{name} must be a number, got {value!r}.")
    return None if value is None else float(value)


def _below(value: float | None, bound: float) -> bool:
    return value is not None and value < bound


def _outside_penalty(value: float | None) -> bool:
    return value is not None and not -2.0 <= value <= 2.0


def generate(
    model: StandInModel,
    prompt: str,
    sampling: Sampling,
    *,
    max_tokens: int,
    directives: Directives,
    chat_turn: bool,
) -> Generation:
    """The stand-in model's answer to ``prompt`` under ``sampling``, at most ``max_tokens`` long
    (the engine's default already applied, and cut to what the context leaves)."""
    request = GenerateRequest(
        inputs=prompt,
        max_new_tokens=max_tokens,
        stop=sampling.stop,
        seed=sampling.seed,
        do_sample=sampling.samples,
    )
    return model.generate(
        request,
        answer_length=directives.answer_length,
        markdown=directives.markdown,
        chat_turn=chat_turn,
    )
