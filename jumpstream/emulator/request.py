"""Parse and validate a TGI request body the way TGI's router does.

Why it matters: TGI answers a bad *streaming* request with HTTP 200 and an in-stream error event
(``{"error": "Input validation error: ...", "error_type": "validation"}``), and a bad
non-streaming one with HTTP 422, which SageMaker turns into a ``ModelError``. A relay has to
handle both, so the emulator reproduces TGI's checks, in TGI's order and with TGI's messages
(router/src/validation.rs and server.rs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jumpstream.emulator.tokenizer import estimate_input_tokens

#: TGI 1.4-2.4 generate 100 new tokens when the request does not say.
DEFAULT_MAX_NEW_TOKENS = 100
#: TGI's ``--max-stop-sequences`` default.
MAX_STOP_SEQUENCES = 4
#: TGI's ``--max-best-of`` default.
MAX_BEST_OF = 2


class BodyError(ValueError):
    """The body does not deserialize into TGI's request type (TGI answers 422, not a stream)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GenerateRequest:
    """The fields of TGI's ``CompatGenerateRequest`` that change what the emulator sends."""

    inputs: str
    stream: bool = False
    max_new_tokens: int | None = None
    temperature: float | None = None
    repetition_penalty: float | None = None
    frequency_penalty: float | None = None
    top_k: int | None = None
    top_p: float | None = None
    typical_p: float | None = None
    do_sample: bool = False
    best_of: int | None = None
    stop: tuple[str, ...] = ()
    truncate: int | None = None
    seed: int | None = None
    details: bool = False
    decoder_input_details: bool = False
    return_full_text: bool | None = None

    @property
    def new_tokens_limit(self) -> int:
        return DEFAULT_MAX_NEW_TOKENS if self.max_new_tokens is None else self.max_new_tokens

    @property
    def sampling(self) -> bool:
        knobs = (self.temperature, self.top_k, self.top_p, self.typical_p)
        return self.do_sample or any(value is not None for value in knobs)


_FLOATS = ("temperature", "repetition_penalty", "frequency_penalty", "top_p", "typical_p")
_INTS = ("top_k", "best_of")
_UNSIGNED = ("max_new_tokens", "truncate", "seed")
_BOOLS = ("do_sample", "details", "decoder_input_details", "return_full_text")


def parse_body(body: Any) -> GenerateRequest:
    """Build a request from decoded JSON, or raise :class:`BodyError` like serde would."""
    if not isinstance(body, dict):
        raise BodyError(_serde("invalid type: expected struct CompatGenerateRequest"))
    if "inputs" not in body:
        raise BodyError(_serde("missing field `inputs`"))
    inputs = body["inputs"]
    if not isinstance(inputs, str):
        raise BodyError(_serde("inputs: invalid type: expected a string"))
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise BodyError(_serde("stream: invalid type: expected a boolean"))
    raw = body.get("parameters")
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise BodyError(_serde("parameters: invalid type: expected struct GenerateParameters"))
    values: dict[str, Any] = {}
    for name in _FLOATS:
        values[name] = _typed(raw, name, (int, float), "f32")
    for name in _INTS:
        values[name] = _typed(raw, name, (int,), "i32")
    for name in _UNSIGNED:
        value = _typed(raw, name, (int,), "u32")
        if value is not None and value < 0:
            raise BodyError(_serde(f"parameters.{name}: invalid value: expected u32"))
        values[name] = value
    for name in _BOOLS:
        value = _typed(raw, name, (bool,), "a boolean")
        if value is not None or name == "return_full_text":
            values[name] = value
    stop = raw.get("stop") or []
    if not isinstance(stop, list) or not all(isinstance(item, str) for item in stop):
        raise BodyError(_serde("parameters.stop: invalid type: expected a sequence of strings"))
    return GenerateRequest(inputs=inputs, stream=stream, stop=tuple(stop), **values)


def _typed(raw: dict[str, Any], name: str, types: tuple[type, ...], expected: str) -> Any:
    value = raw.get(name)
    if value is None:
        return None
    # bool is an int in Python but not in serde: reject it where a number is expected.
    if not isinstance(value, types) or (bool not in types and isinstance(value, bool)):
        raise BodyError(_serde(f"parameters.{name}: invalid type: expected {expected}"))
    return value


def _serde(detail: str) -> str:
    return f"Failed to deserialize the JSON body into the target type: {detail}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """The container's ``MAX_INPUT_LENGTH`` / ``MAX_TOTAL_TOKENS``."""

    max_input_length: int = 1024
    max_total_tokens: int = 2048


def validation_error(request: GenerateRequest, limits: Limits) -> str | None:
    """TGI's validation message for ``request`` (prefixed like TGI's), or None when valid."""
    problem = _first_problem(request, limits)
    return None if problem is None else f"Input validation error: {problem}"


def _first_problem(request: GenerateRequest, limits: Limits) -> str | None:
    best_of = 1 if request.best_of is None else request.best_of
    # server.rs checks these before the request reaches validation.rs.
    if request.stream and best_of != 1:
        return "`best_of` != 1 is not supported when streaming tokens"
    if request.stream and request.decoder_input_details:
        return "`decoder_input_details` == true is not supported when streaming tokens"
    if not request.stream and not 0 < best_of <= MAX_BEST_OF:
        return f"`best_of` must be > 0 and <= {MAX_BEST_OF}. Given: {best_of}"
    checks: tuple[tuple[bool, str], ...] = (
        (best_of > 1 and not request.sampling, "you must use sampling when `best_of` is > 1"),
        (_le(request.temperature, 0.0), "`temperature` must be strictly positive"),
        (_le(request.repetition_penalty, 0.0), "`repetition_penalty` must be strictly positive"),
        (
            request.frequency_penalty is not None and not -2.0 <= request.frequency_penalty <= 2.0,
            "`frequency_penalty` must be >= -2.0 and <= 2.0",
        ),
        (_outside_unit(request.top_p), "`top_p` must be > 0.0 and < 1.0"),
        (_outside_unit(request.typical_p), "`typical_p` must be > 0.0 and < 1.0"),
        (_le(request.top_k, 0), "`top_k` must be strictly positive"),
        (request.max_new_tokens == 0, "`max_new_tokens` must be strictly positive"),
        (
            len(request.stop) > MAX_STOP_SEQUENCES,
            f"`stop` supports up to {MAX_STOP_SEQUENCES} stop sequences. "
            f"Given: {len(request.stop)}",
        ),
        (best_of > 1 and request.seed is not None, "`seed` must not be set when `best_of` > 1"),
        (request.inputs == "", "`inputs` cannot be empty"),
        (
            request.truncate is not None and not 0 < request.truncate <= limits.max_input_length,
            "`truncate` must be strictly positive and less than "
            f"{limits.max_input_length}. Given: {request.truncate}",
        ),
    )
    for failed, message in checks:
        if failed:
            return message
    input_length = input_tokens(request)
    if input_length + request.new_tokens_limit > limits.max_total_tokens:
        return (
            f"`inputs` tokens + `max_new_tokens` must be <= {limits.max_total_tokens}. "
            f"Given: {input_length} `inputs` tokens and {request.new_tokens_limit} "
            "`max_new_tokens`"
        )
    if input_length > limits.max_input_length:
        return (
            f"`inputs` must have less than {limits.max_input_length} tokens. Given: {input_length}"
        )
    return None


def input_tokens(request: GenerateRequest) -> int:
    """The prompt's estimated token count, after ``truncate`` like TGI's ``input_length``."""
    length = estimate_input_tokens(request.inputs)
    return length if request.truncate is None else min(length, request.truncate)


def _le(value: float | None, bound: float) -> bool:
    return value is not None and value <= bound


def _outside_unit(value: float | None) -> bool:
    return value is not None and not 0.0 < value < 1.0
