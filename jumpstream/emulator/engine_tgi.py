"""Hugging Face TGI as the emulated endpoint's engine: its body, its token stream, its errors.

TGI's SageMaker route takes ``{"inputs", "parameters", "stream"}``. A body with ``"stream": true``
gets server-sent events (sse.py), one per token, the last with ``generated_text`` and, when asked,
``details``; validation failures come inside that stream with HTTP 200. Any other body gets one
JSON array once the generation is done, and its failures as HTTP errors (422 validation, 429
overloaded, 424 generation, as TGI's router answers them).
"""

from __future__ import annotations

from typing import Any, Final

from jumpstream.emulator.directives import ENGINE_FAULTS, Directives
from jumpstream.emulator.model import Generation, StandInModel, generate_response, stream_events
from jumpstream.emulator.playback import Emission, EngineFailure
from jumpstream.emulator.reply import ContainerError, Reply
from jumpstream.emulator.request import BodyError, GenerateRequest, parse_body
from jumpstream.emulator.sse import SseStyle, data_event, dump_json, error_response, keepalive

__all__ = ["TGI_ERRORS", "TGI_ERROR_STATUS", "answer", "model_failure", "unreadable_body"]

#: The errors TGI itself reports for the fault kinds it owns (ENGINE_FAULTS), in its words.
TGI_ERRORS: Final[dict[str, str]] = {
    "validation": (
        "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 2048. "
        "Given: 1999 `inputs` tokens and 100 `max_new_tokens`"
    ),
    "overloaded": "Model is overloaded",
    "generation": (
        "Request failed during generation: Server error: CUDA out of memory. "
        "Tried to allocate 20.00 MiB"
    ),
}
#: The HTTP status TGI answers a non-streaming request with, per error_type.
TGI_ERROR_STATUS: Final[dict[str, int]] = {"validation": 422, "overloaded": 429, "generation": 424}
_STREAM: Final = "text/event-stream"
_JSON: Final = "application/json"


def answer(
    body: Any, *, model: StandInModel, directives: Directives, style: SseStyle
) -> Reply | ContainerError:
    """TGI's answer to ``body`` (directives already stripped from its ``inputs``)."""
    try:
        request = parse_body(body)
    except BodyError as error:
        return ContainerError(status=422, body=str(error))
    problem = model.validation_error(request)
    failure = stream_failure(style)
    if request.stream:
        if problem is not None:
            data = data_event(error_response(problem, "validation"), style)
            emissions: tuple[Emission, ...] = (Emission(data=data),)
        else:
            events = stream_events(_generate(model, request, directives), request)
            emissions = tuple(Emission(data=data_event(e, style), tokens=1) for e in events)
        return Reply(
            content_type=_STREAM,
            emissions=emissions,
            streamed=True,
            prompt=request.inputs,
            failure=failure,
            keepalive=keepalive(style),
        )
    error = _non_stream_error(problem, directives)
    if error is not None:
        return error
    generation = _generate(model, request, directives)
    data = dump_json(generate_response(generation, request)).encode("utf-8")
    return Reply(
        content_type=_JSON,
        emissions=(Emission(data=data, tokens=len(generation.tokens)),),
        streamed=False,
        prompt=request.inputs,
        failure=failure,
        keepalive=keepalive(style),
    )


def stream_failure(style: SseStyle) -> EngineFailure:
    """TGI's in-stream error event for a fault kind it owns, in ``style``."""

    def failure(kind: str, sent: int) -> bytes:
        return data_event(error_response(TGI_ERRORS[kind], kind), style)

    return failure


def model_failure() -> ContainerError:
    """TGI failing before it streams (``[[fault:model_error]]``): a 500 with its error."""
    return ContainerError(
        status=500, body=dump_json(error_response(TGI_ERRORS["generation"], "generation"))
    )


def unreadable_body(detail: str) -> ContainerError:
    """What axum (TGI's server) answers a body that is not JSON."""
    return ContainerError(status=400, body=f"Failed to parse the request body as JSON: {detail}")


def _generate(model: StandInModel, request: GenerateRequest, directives: Directives) -> Generation:
    return model.generate(
        request, answer_length=directives.answer_length, markdown=directives.markdown
    )


def _non_stream_error(problem: str | None, directives: Directives) -> ContainerError | None:
    """A TGI error a non-streaming request gets as an HTTP error."""
    if problem is not None:
        kind, message = "validation", problem
    else:
        fault = directives.stream_fault
        if fault is None or fault.kind not in ENGINE_FAULTS:
            return None
        kind, message = fault.kind, TGI_ERRORS[fault.kind]
    return ContainerError(
        status=TGI_ERROR_STATUS[kind], body=dump_json(error_response(message, kind))
    )
