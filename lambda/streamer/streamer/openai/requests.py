"""OpenAI's request bodies, checked and translated to the relay's own request (TGI's `inputs` and
`parameters`, validation.py), which engines.py writes in each engine's terms.

A chat is laid out with the model's prompt template, or, where the model's engine lays chats out
with the model's own template (LMI, vLLM), its messages are sent as they are; a completion's
prompt is sent as it stands. Only parameters every engine honours are produced. Whatever cannot
be honoured (several choices, tools, log probabilities, a presence penalty) is refused with a 400
naming the parameter, never ignored: a caller who asked for it would otherwise get something
else without knowing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from ..errors import ApiError
from ..prompt_template import Message, PromptTemplate, parse_messages
from ..validation import MAX_STOP_SEQUENCES, GenerateRequest
from .errors import invalid, unsupported

__all__ = ["IGNORED_FIELDS", "OpenAIRequest", "parse_chat_request", "parse_completion_request"]

#: Request fields that change nothing about the answer here, accepted with any value and ignored
#: (the README lists them from this table): current clients send them by default or on a user's
#: say-so, and refusing them would break those clients for nothing.
IGNORED_FIELDS: Final[Mapping[str, str]] = {
    "model": "the relay serves one model, whatever name a client gives",
    "user": "an end-user id for OpenAI's abuse monitoring",
    "safety_identifier": "an end-user id for OpenAI's abuse monitoring",
    "metadata": "tags for OpenAI's stored completions; the relay stores none",
    "store": "OpenAI's storage of completions; the relay stores none",
    "service_tier": "OpenAI's processing tiers; the relay has one",
    "prompt_cache_key": "a hint for OpenAI's prompt cache",
    "prompt_cache_options": "a hint for OpenAI's prompt cache",
    "prompt_cache_retention": "a hint for OpenAI's prompt cache",
    "reasoning_effort": "how long OpenAI's reasoning models think; these models do not",
    "prediction": "predicted output only speeds OpenAI up; the answer is the same",
    "parallel_tool_calls": "means nothing without tools (which are refused)",
}
#: Fields accepted only with values that mean the same as leaving them out; any other value asks
#: for something the relay cannot give, and is refused with the reason here.
_ABSENT_EQUIVALENTS: Final[Mapping[str, tuple[tuple[object, ...], str]]] = {
    "audio": ((None,), "these models answer in text only"),
    "modalities": ((None, ["text"]), "these models answer in text only"),
    "web_search_options": ((None,), "these models cannot search the web"),
    "moderation": ((None,), "the relay does not moderate answers"),
    "verbosity": ((None, "medium"), "these models cannot be told how long to answer"),
}
_STREAM_OPTIONS: Final = frozenset({"include_usage", "include_obfuscation"})
_SAMPLING: Final = frozenset(
    {
        "stream",
        "stream_options",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "stop",
        "seed",
        "frequency_penalty",
        "presence_penalty",
        "n",
        "logprobs",
        "top_logprobs",
        "logit_bias",
        "response_format",
        "tools",
        "tool_choice",
        "functions",
        "function_call",
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenAIRequest:
    """A checked OpenAI request: what to send the model, and how to answer."""

    generate: GenerateRequest
    stream: bool
    include_usage: bool
    #: Every stop sequence, the caller's and the template's: OpenAI's answer never contains one.
    stop_sequences: tuple[str, ...]

    @property
    def sets_max_tokens(self) -> bool:
        """The caller chose the answer's length (max_tokens or max_completion_tokens)."""
        return "max_new_tokens" in self.generate.parameters


def parse_chat_request(
    document: object,
    *,
    template: PromptTemplate | None,
    max_new_tokens_limit: int,
    engine_chat: bool = False,
) -> OpenAIRequest:
    """`POST /v1/chat/completions`'s body; ApiError (kind invalid_request) names the problem.

    With `engine_chat` the engine lays the chat out (the answer is then its text as it is);
    otherwise the relay does, with `template`."""
    body = _object(document)
    _check_fields(body, required="messages")
    if engine_chat:
        return _request(
            body,
            inputs="",
            messages=tuple(parse_messages(body["messages"], template=None)),
            template_stops=(),
            max_new_tokens_limit=max_new_tokens_limit,
        )
    if template is None:
        raise invalid(
            "This relay has no prompt template for its model, so it cannot lay out chat "
            "messages: use /v1/completions with a prompt.",
            param="messages",
        )
    messages = parse_messages(body["messages"], template=template)
    return _request(
        body,
        inputs=template.render(messages),
        template_stops=template.stop,
        max_new_tokens_limit=max_new_tokens_limit,
        chat_turn=True,
    )


def parse_completion_request(document: object, *, max_new_tokens_limit: int) -> OpenAIRequest:
    """`POST /v1/completions`'s body: one prompt, continued as it stands."""
    body = _object(document)
    _check_fields(body, required="prompt", extra=frozenset({"prompt", "echo", "suffix", "best_of"}))
    prompt = body["prompt"]
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str) or not prompt:
        raise invalid("prompt must be a non-empty string (one prompt per request).", "prompt")
    if body.get("echo") not in (None, False):
        raise unsupported("echo", "the relay returns only the generated text")
    if body.get("suffix") is not None:
        raise unsupported("suffix", "these models do not fill in the middle")
    if body.get("best_of") not in (None, 1):
        raise unsupported("best_of", "the relay streams one answer per request")
    return _request(
        body, inputs=prompt, template_stops=(), max_new_tokens_limit=max_new_tokens_limit
    )


def _request(
    body: Mapping[str, object],
    *,
    inputs: str,
    template_stops: tuple[str, ...],
    max_new_tokens_limit: int,
    chat_turn: bool = False,
    messages: tuple[Message, ...] = (),
) -> OpenAIRequest:
    stream = _optional_bool(body, "stream", default=False)
    include_usage = False
    options = body.get("stream_options")
    if options is not None:
        if not stream:
            raise invalid("stream_options is only allowed when stream is true.", "stream_options")
        if not isinstance(options, dict) or set(options) - _STREAM_OPTIONS:
            raise invalid('stream_options must be {"include_usage": true|false}.', "stream_options")
        include_usage = _optional_bool(options, "include_usage", default=False)
        # include_obfuscation: the relay never pads its events, so there is nothing to turn off.
        _optional_bool(options, "include_obfuscation", default=False)
    _refuse_unsupported(body)
    parameters: dict[str, object] = {}
    max_new_tokens = _max_tokens(body, max_new_tokens_limit)
    if max_new_tokens is not None:
        parameters["max_new_tokens"] = max_new_tokens
    temperature = _number(body, "temperature", low=0.0, high=2.0)
    if temperature == 0.0:
        parameters["do_sample"] = False  # OpenAI's 0 means the most likely token every time
    else:
        # OpenAI samples by default (temperature 1); TGI only when asked.
        parameters["do_sample"] = True
        if temperature is not None and temperature != 1.0:
            parameters["temperature"] = temperature
    top_p = _number(body, "top_p", low=0.0, high=1.0)
    if top_p is not None and top_p < 1.0:
        if top_p == 0.0:
            raise invalid("top_p must be greater than 0.", "top_p")
        parameters["top_p"] = top_p  # TGI refuses 1.0, which means no nucleus cut anyway
    frequency_penalty = _number(body, "frequency_penalty", low=-2.0, high=2.0)
    if frequency_penalty:
        parameters["frequency_penalty"] = frequency_penalty
    seed = body.get("seed")
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**64:
            raise invalid("seed must be a whole number from 0 to 2^64 - 1.", "seed")
        parameters["seed"] = seed
    stops = _stops(body, template_stops)
    if stops:
        parameters["stop"] = list(stops)
    generate = GenerateRequest(
        inputs=inputs,
        messages=messages,
        parameters=parameters,
        # Without max_tokens, as long as the context allows: the route narrows this to the room
        # the prompt leaves (answer_room.py).
        default_max_new_tokens=max_new_tokens_limit,
        chat_turn=chat_turn,
    )
    return OpenAIRequest(
        generate=generate, stream=stream, include_usage=include_usage, stop_sequences=stops
    )


def _object(document: object) -> dict[str, object]:
    if not isinstance(document, dict):
        raise ApiError(kind="invalid_body", message="The body must be a JSON object.")
    return document


def _check_fields(
    body: Mapping[str, object], *, required: str, extra: frozenset[str] = frozenset({"messages"})
) -> None:
    if required not in body:
        raise invalid(f"Missing required parameter: {required}.", required)
    for name in body:
        if name in _ABSENT_EQUIVALENTS:
            values, why = _ABSENT_EQUIVALENTS[name]
            if body[name] not in values:
                raise unsupported(name, why)
        elif name not in IGNORED_FIELDS and name not in _SAMPLING and name not in extra:
            raise invalid(f"Unrecognized request argument supplied: {name}.", name)
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise invalid("model must be a string.", "model")


def _refuse_unsupported(body: Mapping[str, object]) -> None:
    n = body.get("n")
    if n is not None and n != 1:
        raise unsupported("n", "the relay streams one answer per request, so n must be 1")
    # `False` only: 0 (which `in (None, False)` would let through) asks completions for the
    # chosen tokens' log probabilities.
    logprobs = body.get("logprobs")
    if not (logprobs is None or logprobs is False) or body.get("top_logprobs") is not None:
        raise unsupported("logprobs", "the relay does not return log probabilities")
    if body.get("presence_penalty") not in (None, 0, 0.0):
        raise unsupported("presence_penalty", "the relay sends no presence penalty (TGI has none)")
    if body.get("logit_bias") not in (None, {}):
        raise unsupported("logit_bias", "the relay cannot bias tokens")
    for name in ("tools", "functions"):
        if body.get(name) not in (None, []):
            raise unsupported(name, "these models do not call tools")
    for name in ("tool_choice", "function_call"):
        if body.get(name) not in (None, "none"):
            raise unsupported(name, "these models do not call tools")
    response_format = body.get("response_format")
    if response_format is not None and response_format != {"type": "text"}:
        raise unsupported("response_format", "only text answers are offered")


def _max_tokens(body: Mapping[str, object], limit: int) -> int | None:
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
            raise invalid(
                f"{name} must be a whole number from 1 to {limit}, this relay's limit.", name
            )
        return value
    return None


def _number(body: Mapping[str, object], name: str, *, low: float, high: float) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not low <= value <= high
    ):
        raise invalid(f"{name} must be a number from {low:g} to {high:g}.", name)
    return float(value)


def _optional_bool(body: Mapping[str, object], name: str, *, default: bool) -> bool:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise invalid(f"{name} must be true or false.", name)
    return value


def _stops(body: Mapping[str, object], template_stops: tuple[str, ...]) -> tuple[str, ...]:
    value = body.get("stop")
    if value is None:
        callers: list[str] = []
    elif isinstance(value, str):
        callers = [value] if value else []
    elif isinstance(value, list) and all(isinstance(stop, str) and stop for stop in value):
        callers = list(value)
    else:
        raise invalid("stop must be a string or a list of non-empty strings.", "stop")
    stops = tuple(dict.fromkeys([*template_stops, *callers]))
    if len(stops) > MAX_STOP_SEQUENCES:
        room = MAX_STOP_SEQUENCES - len(template_stops)
        raise invalid(
            f"stop may hold at most {room} sequences for this model "
            f"(the model's chat format uses {len(template_stops)} of {MAX_STOP_SEQUENCES}).",
            "stop",
        )
    return stops
