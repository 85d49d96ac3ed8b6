"""OpenAI's chat-completions and completions API, translated to and from TGI's native one.

Tools built on the `openai` package, LangChain and chat UIs speak this API. The pinned TGI
containers do not (JumpStart's settings leave TGI's Messages API off, and TGI 1.4 has none), so
the relay translates: a request becomes TGI's `inputs` and `parameters` (a chat laid out with the
model's prompt template), and the answer's pieces become OpenAI's objects. Whatever cannot be
honoured (several choices, tools, log probabilities, a presence penalty) is refused with a 400
in OpenAI's error shape, never ignored: a caller who asked for it would otherwise get something
else without knowing.

This module only translates; the route in app.py reads the body and streams the answer.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

from starlette.responses import Response

from .contract import ERROR_KINDS
from .errors import ApiError, render_json
from .prompt_template import PromptTemplate, parse_messages
from .validation import DEFAULT_MAX_NEW_TOKENS, MAX_STOP_SEQUENCES, GenerateRequest

__all__ = [
    "ChatChunkWriter",
    "ChatCompletionCollector",
    "CompletionChunkWriter",
    "CompletionCollector",
    "OpenAIRequest",
    "models_list",
    "openai_error_body",
    "openai_error_response",
    "openai_status",
    "parse_chat_request",
    "parse_completion_request",
]

Endpoint = Literal["chat", "completion"]

# Fields every OpenAI client may send that change nothing about the answer.
_HARMLESS: Final = frozenset({"model", "user", "store", "metadata", "service_tier"})
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
        "parallel_tool_calls",
        "functions",
        "function_call",
    }
)
# TGI's finish reasons in OpenAI's words: a stop sequence is a stop, as it is for OpenAI.
_FINISH_REASONS: Final[Mapping[str, str]] = {
    "eos_token": "stop",
    "stop_sequence": "stop",
    "length": "length",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenAIRequest:
    """A checked OpenAI request: what to send TGI, and how to answer."""

    generate: GenerateRequest
    stream: bool
    include_usage: bool
    #: Every stop sequence, the caller's and the template's: OpenAI's answer never contains one.
    stop_sequences: tuple[str, ...]


def parse_chat_request(
    document: object, *, template: PromptTemplate | None, max_new_tokens_limit: int
) -> OpenAIRequest:
    """`POST /v1/chat/completions`'s body; ApiError (kind invalid_request) names the problem."""
    body = _object(document)
    _check_fields(body, required="messages")
    if template is None:
        raise _invalid(
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
    )


def parse_completion_request(document: object, *, max_new_tokens_limit: int) -> OpenAIRequest:
    """`POST /v1/completions`'s body: one prompt, continued as it stands."""
    body = _object(document)
    _check_fields(body, required="prompt", extra=frozenset({"prompt", "echo", "suffix", "best_of"}))
    prompt = body["prompt"]
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str) or not prompt:
        raise _invalid("prompt must be a non-empty string (one prompt per request).", "prompt")
    if body.get("echo") not in (None, False):
        raise _unsupported("echo", "the relay returns only the generated text")
    if body.get("suffix") is not None:
        raise _unsupported("suffix", "these models do not fill in the middle")
    if body.get("best_of") not in (None, 1):
        raise _unsupported("best_of", "the relay streams one answer per request")
    return _request(
        body, inputs=prompt, template_stops=(), max_new_tokens_limit=max_new_tokens_limit
    )


def _request(
    body: Mapping[str, object],
    *,
    inputs: str,
    template_stops: tuple[str, ...],
    max_new_tokens_limit: int,
) -> OpenAIRequest:
    stream = _optional_bool(body, "stream", default=False)
    include_usage = False
    options = body.get("stream_options")
    if options is not None:
        if not stream:
            raise _invalid("stream_options is only allowed when stream is true.", "stream_options")
        if not isinstance(options, dict) or set(options) - {"include_usage"}:
            raise _invalid(
                'stream_options must be {"include_usage": true|false}.', "stream_options"
            )
        include_usage = _optional_bool(options, "include_usage", default=False)
    _refuse_unsupported(body)
    parameters: dict[str, object] = {
        "max_new_tokens": _max_tokens(body, max_new_tokens_limit),
    }
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
            raise _invalid("top_p must be greater than 0.", "top_p")
        parameters["top_p"] = top_p  # TGI refuses 1.0, which means no nucleus cut anyway
    frequency_penalty = _number(body, "frequency_penalty", low=-2.0, high=2.0)
    if frequency_penalty:
        parameters["frequency_penalty"] = frequency_penalty
    seed = body.get("seed")
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**64:
            raise _invalid("seed must be a whole number from 0 to 2^64 - 1.", "seed")
        parameters["seed"] = seed
    stops = _stops(body, template_stops)
    if stops:
        parameters["stop"] = list(stops)
    generate = GenerateRequest(
        inputs=inputs,
        parameters=parameters,
        default_max_new_tokens=min(DEFAULT_MAX_NEW_TOKENS, max_new_tokens_limit),
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
        raise _invalid(f"Missing required parameter: {required}.", required)
    for name in body:
        if name not in _HARMLESS and name not in _SAMPLING and name not in extra:
            raise _invalid(f"Unrecognized request argument supplied: {name}.", name)
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise _invalid("model must be a string.", "model")


def _refuse_unsupported(body: Mapping[str, object]) -> None:
    n = body.get("n")
    if n is not None and n != 1:
        raise _unsupported("n", "the relay streams one answer per request, so n must be 1")
    if body.get("logprobs") not in (None, False) or body.get("top_logprobs") is not None:
        raise _unsupported("logprobs", "the relay does not return log probabilities")
    if body.get("presence_penalty") not in (None, 0, 0.0):
        raise _unsupported("presence_penalty", "TGI has no presence penalty")
    if body.get("logit_bias") not in (None, {}):
        raise _unsupported("logit_bias", "TGI cannot bias tokens")
    for name in ("tools", "functions"):
        if body.get(name) not in (None, []):
            raise _unsupported(name, "these models do not call tools")
    for name in ("tool_choice", "function_call"):
        if body.get(name) not in (None, "none"):
            raise _unsupported(name, "these models do not call tools")
    response_format = body.get("response_format")
    if response_format is not None and response_format != {"type": "text"}:
        raise _unsupported("response_format", "only text answers are offered")


def _max_tokens(body: Mapping[str, object], limit: int) -> int:
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
            raise _invalid(
                f"{name} must be a whole number from 1 to {limit}, this relay's limit.", name
            )
        return value
    return min(DEFAULT_MAX_NEW_TOKENS, limit)


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
        raise _invalid(f"{name} must be a number from {low:g} to {high:g}.", name)
    return float(value)


def _optional_bool(body: Mapping[str, object], name: str, *, default: bool) -> bool:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise _invalid(f"{name} must be true or false.", name)
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
        raise _invalid("stop must be a string or a list of non-empty strings.", "stop")
    stops = tuple(dict.fromkeys([*template_stops, *callers]))
    if len(stops) > MAX_STOP_SEQUENCES:
        room = MAX_STOP_SEQUENCES - len(template_stops)
        raise _invalid(
            f"stop may hold at most {room} sequences for this model "
            f"(the model's chat format uses {len(template_stops)} of {MAX_STOP_SEQUENCES}).",
            "stop",
        )
    return stops


class _OpenAIRequestError(ApiError):
    """An invalid_request ApiError that also names the offending parameter, as OpenAI does."""

    def __init__(self, message: str, *, param: str | None) -> None:
        super().__init__(kind="invalid_request", message=message)
        self.param = param


def _invalid(message: str, param: str | None = None) -> ApiError:
    return _OpenAIRequestError(message, param=param)


def _unsupported(param: str, why: str) -> ApiError:
    return _OpenAIRequestError(f"{param} is not supported: {why}.", param=param)


# --- Answers ----------------------------------------------------------------------------------


def openai_status(error: ApiError) -> int:
    """The status an OpenAI client expects for this relay error (the contract's table)."""
    return error.facts.openai_status


def openai_error_body(*, message: str, kind: str, param: str | None = None) -> dict[str, object]:
    """OpenAI's error object; `code` carries the relay's own error type."""
    error_type = ERROR_KINDS[kind].openai_type
    return {"error": {"message": message, "type": error_type, "param": param, "code": kind}}


def error_param(error: ApiError) -> str | None:
    return error.param if isinstance(error, _OpenAIRequestError) else None


def openai_error_response(error: ApiError) -> Response:
    """Any relay refusal as OpenAI's clients expect it: their status, their error object, and
    Retry-After where the relay would send it."""
    return Response(
        content=render_json(
            openai_error_body(message=error.message, kind=error.kind, param=error_param(error))
        ),
        status_code=openai_status(error),
        media_type="application/json",
        headers=error.headers(),
    )


def finish_reason(tgi_reason: str | None) -> str:
    """OpenAI's finish_reason for TGI's; an answer that ended without details ended normally."""
    return _FINISH_REASONS.get(tgi_reason or "", "stop")


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(12)}"


def usage(*, prompt_tokens: int | None, completion_tokens: int | None) -> dict[str, int | None]:
    """Token counts as TGI reported them; one TGI did not report stays null, never guessed."""
    total = (
        None
        if prompt_tokens is None or completion_tokens is None
        else prompt_tokens + completion_tokens
    )
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": total,
    }


def _event(data: object) -> bytes:
    return b"data: " + render_json(data) + b"\n\n"


_DONE: Final = b"data: [DONE]\n\n"


class _ChunkWriter:
    """A StreamWriter of OpenAI's streamed objects as server-sent events, ending `data: [DONE]`."""

    content_type = "text/event-stream; charset=utf-8"
    _object: str
    _id_prefix: str

    def __init__(self, *, model: str, include_usage: bool, created: int) -> None:
        self.id = new_id(self._id_prefix)
        self._model = model
        self._include_usage = include_usage
        self._created = created
        self._started = False

    def text(self, text: str) -> bytes:
        return self._start() + self._chunk([self._piece(text)])

    def done(
        self,
        *,
        finish_reason: str | None,
        generated_tokens: int | None,
        input_length: int | None = None,
    ) -> bytes:
        last = self._start() + self._chunk([self._last(finish_reason)])
        if self._include_usage:
            counts = usage(prompt_tokens=input_length, completion_tokens=generated_tokens)
            last += self._chunk([], usage=counts)
        return last + _DONE

    def error(self, *, message: str, kind: str) -> bytes:
        """A failure after the stream began: the error event the openai client raises on."""
        return _event(openai_error_body(message=message, kind=kind)) + _DONE

    def _start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        return self._first()

    def _chunk(self, choices: list[dict[str, object]], **extra: object) -> bytes:
        chunk: dict[str, object] = {
            "id": self.id,
            "object": self._object,
            "created": self._created,
            "model": self._model,
            "choices": choices,
        }
        if self._include_usage:
            chunk["usage"] = None
        chunk.update(extra)
        return _event(chunk)

    def _first(self) -> bytes:
        return b""

    def _piece(self, text: str) -> dict[str, object]:
        raise NotImplementedError

    def _last(self, tgi_reason: str | None) -> dict[str, object]:
        raise NotImplementedError


class ChatChunkWriter(_ChunkWriter):
    """`chat.completion.chunk` events: the role first, then content, then the finish reason."""

    _object = "chat.completion.chunk"
    _id_prefix = "chatcmpl"

    def _first(self) -> bytes:
        return self._chunk([_choice(delta={"role": "assistant", "content": ""})])

    def _piece(self, text: str) -> dict[str, object]:
        return _choice(delta={"content": text})

    def _last(self, tgi_reason: str | None) -> dict[str, object]:
        return _choice(delta={}, finish_reason=finish_reason(tgi_reason))


class CompletionChunkWriter(_ChunkWriter):
    """`text_completion` events: each carries a piece of text, the last the finish reason."""

    _object = "text_completion"
    _id_prefix = "cmpl"

    def _piece(self, text: str) -> dict[str, object]:
        return _text_choice(text)

    def _last(self, tgi_reason: str | None) -> dict[str, object]:
        return _text_choice("", finish_reason=finish_reason(tgi_reason))


class _Collector:
    """A StreamWriter for `stream: false`: nothing until the end, then the whole answer.

    The relay sends it only once the answer is complete (a failure anywhere becomes an HTTP
    error instead), so `error` is never part of a 200.
    """

    content_type = "application/json"
    _object: str
    _id_prefix: str

    def __init__(self, *, model: str, created: int) -> None:
        self._model = model
        self._created = created
        self._texts: list[str] = []

    def text(self, text: str) -> bytes:
        self._texts.append(text)
        return b""

    def done(
        self,
        *,
        finish_reason: str | None,
        generated_tokens: int | None,
        input_length: int | None = None,
    ) -> bytes:
        answer = {
            "id": new_id(self._id_prefix),
            "object": self._object,
            "created": self._created,
            "model": self._model,
            "choices": [self._choice("".join(self._texts), finish_reason)],
            "usage": usage(prompt_tokens=input_length, completion_tokens=generated_tokens),
        }
        return render_json(answer)

    def error(self, *, message: str, kind: str) -> bytes:
        return render_json(openai_error_body(message=message, kind=kind))

    def _choice(self, text: str, tgi_reason: str | None) -> dict[str, object]:
        raise NotImplementedError


class ChatCompletionCollector(_Collector):
    """One `chat.completion` object."""

    _object = "chat.completion"
    _id_prefix = "chatcmpl"

    def _choice(self, text: str, tgi_reason: str | None) -> dict[str, object]:
        return {
            "index": 0,
            "message": {"role": "assistant", "content": text},
            "logprobs": None,
            "finish_reason": finish_reason(tgi_reason),
        }


class CompletionCollector(_Collector):
    """One `text_completion` object."""

    _object = "text_completion"
    _id_prefix = "cmpl"

    def _choice(self, text: str, tgi_reason: str | None) -> dict[str, object]:
        return _text_choice(text, finish_reason=finish_reason(tgi_reason))


def _choice(*, delta: dict[str, str], finish_reason: str | None = None) -> dict[str, object]:
    return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}


def _text_choice(text: str, *, finish_reason: str | None = None) -> dict[str, object]:
    return {"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason}


def models_list(model: str, *, created: int) -> dict[str, object]:
    """`GET /v1/models`: the one model this relay serves."""
    return {
        "object": "list",
        "data": [{"id": model, "object": "model", "created": created, "owned_by": "jumpstream"}],
    }
