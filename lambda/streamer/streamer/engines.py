"""The servers a model can run on, and what each one takes and streams back: the engine table.

The catalog names each model's engine (contract.ENGINES, the SERVING_ENGINE setting); the
function never guesses it. Every route checks a request once, in the relay's own terms (TGI's
parameter names and rules, validation.py; OpenAI's requests are translated into them), and the
engine's row says, for each kind of request:
- the body the engine takes: TGI's `{"inputs", "parameters"}`; LMI's `{"inputs", "parameters"}`
  with its own names (`stop_sequences`), or an OpenAI chat body for a chat LMI lays out itself;
  vLLM's OpenAI completions body (`prompt`) or chat body (`messages`);
- the stream it answers with, and its decoder: TGI's SSE token events, LMI's token lines, or
  OpenAI chunks (vLLM always, LMI for chats), all decoded into the same events;
- what its errors mean to the caller, in the stream and before it (a SageMaker ModelError);
- the parameters it honours. One that has no equivalent on the engine is refused with a 422
  naming it and the engine, never dropped: a caller who asked for it would otherwise get
  something else without knowing. Values that ask for nothing (null, `false` for a switch) are
  accepted anywhere.

A chat is sent as `messages` only where the engine lays it out with the model's own chat template
(ENGINE_CHAT_TEMPLATE, LMI and vLLM); otherwise the relay lays it out itself (PROMPT_TEMPLATE)
and sends a prompt. A prompt always takes the engine's completion path.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from types import MappingProxyType
from typing import Any, Final

from . import lmi_errors, tgi_errors, vllm_errors
from .decoder import StreamDecoder
from .errors import ApiError, UpstreamError
from .lmi_decoder import LmiTokenDecoder
from .model_errors import ModelErrorMapping
from .openai_decoder import OpenAIChunkDecoder
from .stream_lines import Decoder
from .validation import KNOWN_PARAMETERS, GenerateRequest

__all__ = [
    "ENGINES_BY_NAME",
    "LMI",
    "TGI",
    "VLLM",
    "Engine",
    "Route",
    "StreamFormat",
    "engine_named",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamFormat:
    """What an engine streams back for one kind of request: how to decode it, what its errors
    mean."""

    #: What the stream is, in the caller's error when it cannot be read ("TGI token stream").
    name: str
    #: A fresh decoder for one answer (called with `max_line_bytes=`).
    decoder: Callable[..., Decoder]
    #: The caller's error for an error event the decoder yields.
    error_in_stream: Callable[[Any], UpstreamError]


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    """One kind of request (a prompt, or a chat the engine lays out) on one engine."""

    #: The engine's body for a checked request.
    body: Callable[[GenerateRequest], bytes]
    stream: StreamFormat
    #: The relay's parameters (TGI's names) that reach the engine, in the engine's own words.
    honoured: frozenset[str]
    #: How a refusal names the route ("vLLM", "LMI for a chat it lays out itself").
    where: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Engine:
    """One row of the table."""

    #: The catalog's word for it (contract.ENGINES).
    name: str
    prompt: Route
    #: Chats the engine lays out with the model's own template; None: it cannot (TGI), and the
    #: relay lays them out itself with the model's PROMPT_TEMPLATE.
    chat: Route | None
    #: What a ModelError (the container's refusal before streaming) means to the caller.
    model_error: ModelErrorMapping

    def route(self, request: GenerateRequest) -> Route:
        """The route `request` takes; ApiError 422 names a parameter the route cannot honour."""
        if request.messages:
            if self.chat is None:
                raise ValueError(f"{self.name} does not lay out chats: the relay must")
            route = self.chat
        else:
            route = self.prompt
        for name, value in request.parameters.items():
            if name in route.honoured or name in _ACCEPTED_ANYWHERE:
                continue
            if value is None or _asks_for_nothing(name, value):
                continue  # the same as leaving it out
            raise ApiError(
                kind="invalid_request",
                message=(
                    f"parameters.{name} has no equivalent on {route.where}, the server this "
                    "model runs on: leave it out."
                ),
            )
        return route


# Parameters any route accepts, sent only where honoured: best_of can only be 1 (validation.py),
# return_full_text changes only TGI's final generated_text, which the relay never shows, and
# details asks for the finish reason and counts the relay reads from every engine anyway.
_ACCEPTED_ANYWHERE: Final = frozenset({"best_of", "return_full_text", "details"})
# TGI's own parameters whose value here asks for nothing (null does too, for any parameter).
_ASKS_FOR_NOTHING: Final[Mapping[str, object]] = {
    "watermark": False,
    "decoder_input_details": False,
    "top_n_tokens": 0,
}


def _asks_for_nothing(name: str, value: object) -> bool:
    nothing = _ASKS_FOR_NOTHING.get(name)
    # JSON's false is not 0, nor 0 false.
    return nothing is not None and type(value) is type(nothing) and value == nothing


# What every engine has, in some name: the length, greedy or sampled, the nucleus, the seed, the
# stop sequences and the frequency penalty (OpenAI's requests use no other).
_EVERY_ENGINE: Final = frozenset(
    {"max_new_tokens", "do_sample", "temperature", "top_p", "seed", "stop", "frequency_penalty"}
)
# What vLLM's sampling has besides (LMI's chats take only OpenAI's own fields).
_VLLM_SAMPLING: Final = _EVERY_ENGINE | {"top_k", "repetition_penalty"}


def _samples(parameters: Mapping[str, object]) -> bool:
    """Whether TGI would sample for these parameters: when do_sample is true, or any sampling
    setting is (server/text_generation_server/utils/tokens.py, NextTokenChooser: a temperature
    other than 1, top_k, top_p below 1; typical_p reaches no other engine). The other engines
    are told so in their own terms, so a request means the same wherever it goes."""
    temperature = parameters.get("temperature")
    top_p = parameters.get("top_p")
    return (
        parameters.get("do_sample") is True
        or (temperature is not None and temperature != 1.0)
        or parameters.get("top_k") is not None
        or (isinstance(top_p, int | float) and top_p < 1.0)
    )


def _encoded(body: dict[str, object]) -> bytes:
    return json.dumps(body, ensure_ascii=False, allow_nan=False).encode("utf-8")


def _tgi_body(request: GenerateRequest) -> bytes:
    """TGI's body is the relay's own request, whose schema is TGI's (validation.py)."""
    return request.upstream_body()


def _lmi_prompt_body(request: GenerateRequest) -> bytes:
    """LMI's `inputs` body, with LMI's names. `do_sample` is always sent: LMI's rolling batch is
    greedy without it whatever the temperature, unlike TGI."""
    given = request.parameters
    parameters: dict[str, object] = {
        "do_sample": _samples(given),
        "max_new_tokens": request.max_new_tokens,
        "details": given.get("details", True),
    }
    for name in ("temperature", "top_k", "top_p", "repetition_penalty", "frequency_penalty"):
        if given.get(name) is not None:
            parameters[name] = given[name]
    if given.get("seed") is not None:
        parameters["seed"] = given["seed"]
    if given.get("stop"):
        parameters["stop_sequences"] = given["stop"]
    return _encoded({"inputs": request.inputs, "parameters": parameters, "stream": True})


def _openai_fields(request: GenerateRequest, honoured: frozenset[str]) -> dict[str, object]:
    """The sampling fields of an OpenAI body (vLLM's, and LMI's for chats). OpenAI's servers
    sample by default (temperature 1): greedy is temperature 0."""
    given = request.parameters
    fields: dict[str, object] = {"max_tokens": request.max_new_tokens}
    if _samples(given):
        temperature = given.get("temperature")
        fields["temperature"] = 1.0 if temperature is None else temperature
    else:
        fields["temperature"] = 0.0
    for name in ("top_p", "top_k", "repetition_penalty", "frequency_penalty", "seed"):
        if name in honoured and given.get(name) is not None:
            fields[name] = given[name]
    if given.get("stop"):
        fields["stop"] = given["stop"]
    fields["stream"] = True
    # The usage chunk gives the prompt's and the answer's tokens (where the engine sends one).
    fields["stream_options"] = {"include_usage": True}
    return fields


def _messages(request: GenerateRequest) -> list[dict[str, str]]:
    return [{"role": message.role, "content": message.content} for message in request.messages]


def _openai_chat_body(request: GenerateRequest, *, honoured: frozenset[str]) -> bytes:
    return _encoded({"messages": _messages(request), **_openai_fields(request, honoured)})


def _openai_chat_route(*, stream: StreamFormat, honoured: frozenset[str], where: str) -> Route:
    """A chat sent as OpenAI `messages`: its body carries exactly the parameters it honours."""
    return Route(
        body=partial(_openai_chat_body, honoured=honoured),
        stream=stream,
        honoured=honoured,
        where=where,
    )


def _vllm_prompt_body(request: GenerateRequest) -> bytes:
    return _encoded({"prompt": request.inputs, **_openai_fields(request, _VLLM_SAMPLING)})


_TGI_STREAM: Final = StreamFormat(
    name="TGI token stream",
    decoder=StreamDecoder,
    error_in_stream=tgi_errors.error_in_stream,
)
_LMI_TOKEN_STREAM: Final = StreamFormat(
    name="LMI token stream",
    decoder=LmiTokenDecoder,
    error_in_stream=lmi_errors.error_in_stream,
)
_LMI_CHUNK_STREAM: Final = StreamFormat(
    name="stream of LMI's chat chunks",
    # Rolling batch (LMI 10 and 11) reports no usage, but writes one chunk per token.
    decoder=partial(OpenAIChunkDecoder, errors=lmi_errors, chunk_per_token=True),
    error_in_stream=lmi_errors.error_in_stream,
)
_VLLM_STREAM: Final = StreamFormat(
    name="stream of vLLM's chunks",
    decoder=partial(OpenAIChunkDecoder, errors=vllm_errors),
    error_in_stream=vllm_errors.error_in_stream,
)

TGI: Final = Engine(
    name="tgi",
    prompt=Route(
        body=_tgi_body,
        stream=_TGI_STREAM,
        # Every parameter the relay checks is TGI's own (validation.py's table).
        honoured=frozenset(KNOWN_PARAMETERS),
        where="TGI",
    ),
    chat=None,
    model_error=tgi_errors.model_error,
)
LMI: Final = Engine(
    name="lmi",
    prompt=Route(
        body=_lmi_prompt_body,
        stream=_LMI_TOKEN_STREAM,
        honoured=_VLLM_SAMPLING,
        where="LMI",
    ),
    chat=_openai_chat_route(
        stream=_LMI_CHUNK_STREAM,
        honoured=_EVERY_ENGINE,
        where="LMI for a chat it lays out itself",
    ),
    model_error=lmi_errors.model_error,
)
VLLM: Final = Engine(
    name="vllm",
    prompt=Route(
        body=_vllm_prompt_body,
        stream=_VLLM_STREAM,
        honoured=_VLLM_SAMPLING,
        where="vLLM",
    ),
    chat=_openai_chat_route(stream=_VLLM_STREAM, honoured=_VLLM_SAMPLING, where="vLLM"),
    model_error=vllm_errors.model_error,
)

#: The table, by the catalog's name for each engine.
ENGINES_BY_NAME: Final[Mapping[str, Engine]] = MappingProxyType(
    {engine.name: engine for engine in (TGI, LMI, VLLM)}
)


def engine_named(name: str) -> Engine:
    """The row of the engine `name` (one of contract.ENGINES, as settings.py checked)."""
    return ENGINES_BY_NAME[name]
