"""The emulator's HTTP app: SageMaker runtime's streaming invoke, plus a small control API.

Why a Starlette app: it runs under uvicorn like the relay does, speaks plain HTTP on loopback,
and the real boto3 talks to it through ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` as if it were AWS.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Final

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from jumpstream.emulator import errors
from jumpstream.emulator.directives import (
    TGI_ERROR_FAULTS,
    DirectiveError,
    Directives,
    parse_directives,
)
from jumpstream.emulator.errors import SageMakerError
from jumpstream.emulator.model import (
    DEFAULT_MODEL_ID,
    StandInModel,
    generate_response,
    stream_events,
)
from jumpstream.emulator.playback import TGI_ERRORS, Emission, Pace, play
from jumpstream.emulator.request import BodyError, GenerateRequest, parse_body
from jumpstream.emulator.response import EventStreamResponse
from jumpstream.emulator.sse import SseStyle, data_event, dump_json, error_response
from jumpstream.emulator.streams import StreamRecord, StreamRegistry
from jumpstream.emulator.tgi import TgiRelay
from jumpstream.emulator.tokenizer import stable_hash

INFERENCE_COMPONENT_HEADER = "X-Amzn-SageMaker-Inference-Component"
#: `AWS4-HMAC-SHA256 Credential=KEY/DATE/REGION/sagemaker/aws4_request, SignedHeaders=..., ...`
SIGV4_SAGEMAKER = re.compile(
    r"AWS4-HMAC-SHA256 Credential=[^/\s]+/\d{8}/[a-z0-9-]+/sagemaker/aws4_request,"
    r" *SignedHeaders=[a-z0-9;-]+, *Signature=[0-9a-f]{64}$"
)
DEFAULT_ENDPOINT_NAME: Final = "jumpstream-local"
#: The HTTP status TGI answers a non-streaming request with, per error_type.
TGI_ERROR_STATUS = {"validation": 422, "overloaded": 429, "generation": 424}


@dataclass(frozen=True, slots=True, kw_only=True)
class EmulatorSettings:
    """What one emulator instance pretends to be, and how fast its model is."""

    endpoint_name: str = DEFAULT_ENDPOINT_NAME
    model_id: str = DEFAULT_MODEL_ID
    #: Tokens per second after the first; 0 sends as fast as possible.
    tokens_per_second: float = 20.0
    #: Seconds before the first token.
    first_token_delay: float = 0.2
    #: When set, the endpoint is component-based and requests must name this component.
    inference_component: str | None = None
    #: A component scaled to zero: from the first invocation on, this many seconds of SageMaker's
    #: "no capacity" refusal while a copy starts, then normal answers.
    cold_start: float = 0.0
    #: When set, requests go to this real TGI server instead of the stand-in model.
    tgi_url: str | None = None


def create_app(settings: EmulatorSettings) -> Starlette:
    """Build the app; each app has its own stream records and hold gate."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if settings.tgi_url is None:
            yield
            return
        async with httpx.AsyncClient() as client:
            app.state.tgi = TgiRelay(settings.tgi_url, client)
            yield

    app = Starlette(
        routes=[
            Route(
                "/endpoints/{name}/invocations-response-stream",
                _invoke_with_response_stream,
                methods=["POST"],
            ),
            Route("/_emulator/health", _health, methods=["GET"]),
            Route("/_emulator/streams", _streams, methods=["GET"]),
            Route("/_emulator/release", _release, methods=["POST"]),
        ],
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.warm_at = None
    app.state.model = StandInModel(settings.model_id)
    app.state.registry = StreamRegistry()
    return app


async def _health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def _streams(request: Request) -> Response:
    registry: StreamRegistry = request.app.state.registry
    return JSONResponse(registry.snapshot())


async def _release(request: Request) -> Response:
    registry: StreamRegistry = request.app.state.registry
    return JSONResponse({"released": registry.release()})


async def _invoke_with_response_stream(request: Request) -> Response:
    settings: EmulatorSettings = request.app.state.settings
    request_id = str(uuid.uuid4())
    refusal = (
        _check_signed(request)
        or _check_target(request, settings)
        or _cold_refusal(request, settings)
    )
    if refusal is not None:
        return refusal.response(request_id)
    raw = await request.body()
    registry: StreamRegistry = request.app.state.registry
    if settings.tgi_url is not None:
        return await _forward_to_tgi(request, raw, request_id, settings, registry)
    return _stand_in_reply(request, raw, request_id, settings, registry)


def _check_signed(request: Request) -> SageMakerError | None:
    """The shape of a SigV4 signature for SageMaker (service `sagemaker`), as AWS checks first.

    The signature itself is not verified (the emulator does not know the caller's secret), but
    a client that stops signing, or signs for another service, is refused as AWS would refuse it.
    """
    authorization = request.headers.get("authorization")
    if authorization is None:
        return errors.missing_authentication()
    if not SIGV4_SAGEMAKER.match(authorization) or "x-amz-date" not in request.headers:
        return errors.wrong_signing_scope()
    return None


def _check_target(request: Request, settings: EmulatorSettings) -> SageMakerError | None:
    name = request.path_params["name"]
    if name != settings.endpoint_name:
        return errors.endpoint_not_found(name)
    if settings.inference_component is not None:
        component = request.headers.get(INFERENCE_COMPONENT_HEADER)
        if component is None:
            return errors.inference_component_required()
        if component != settings.inference_component:
            return errors.inference_component_not_found(component, name)
    return None


def _cold_refusal(request: Request, settings: EmulatorSettings) -> SageMakerError | None:
    """What a component scaled to zero answers until its first copy is up."""
    if settings.cold_start <= 0:
        return None
    now = time.monotonic()
    if request.app.state.warm_at is None:
        # The first call is what wakes it: the scale-out alarm sees this very refusal.
        request.app.state.warm_at = now + settings.cold_start
    return errors.no_capacity() if now < request.app.state.warm_at else None


def _stream_headers(request_id: str, content_type: str) -> dict[str, str]:
    return {
        "X-Amzn-SageMaker-Content-Type": content_type,
        "x-Amzn-Invoked-Production-Variant": "AllTraffic",
        "x-amzn-RequestId": request_id,
    }


async def _forward_to_tgi(
    request: Request,
    raw: bytes,
    request_id: str,
    settings: EmulatorSettings,
    registry: StreamRegistry,
) -> Response:
    relay: TgiRelay = request.app.state.tgi
    record = StreamRecord(id=request_id)
    reply = await relay.invoke(
        raw,
        content_type=request.headers.get("content-type", "application/json"),
        endpoint_name=settings.endpoint_name,
        record=record,
    )
    if isinstance(reply, SageMakerError):
        return reply.response(request_id)
    return EventStreamResponse(
        reply.messages,
        record=registry.add(record),
        headers=_stream_headers(request_id, reply.content_type),
    )


def _stand_in_reply(
    request: Request,
    raw: bytes,
    request_id: str,
    settings: EmulatorSettings,
    registry: StreamRegistry,
) -> Response:
    try:
        body: Any = json.loads(raw)
    except ValueError as error:
        # TGI (axum) rejects unparsable JSON with 400; SageMaker reports it as a ModelError.
        message = f"Failed to parse the request body as JSON: {error}"
        return errors.model_error(settings.endpoint_name, 400, message).response(request_id)
    directives = Directives()
    if isinstance(body, dict) and isinstance(body.get("inputs"), str):
        try:
            prompt, directives = parse_directives(body["inputs"])
        except DirectiveError as error:
            return errors.emulator_usage(str(error)).response(request_id)
        body = {**body, "inputs": prompt}
    fault = directives.pre_stream_fault
    if fault is not None:
        return _pre_stream_error(fault.kind, settings.endpoint_name).response(request_id)
    try:
        tgi_request = parse_body(body)
    except BodyError as error:
        return errors.model_error(settings.endpoint_name, 422, str(error)).response(request_id)

    model: StandInModel = request.app.state.model
    style = SseStyle(space=not directives.nospace, crlf=directives.crlf)
    problem = model.validation_error(tgi_request)
    if tgi_request.stream:
        emissions = _stream_emissions(model, tgi_request, directives, problem, style)
        content_type = "text/event-stream"
        pace = Pace(
            first_delay=settings.first_token_delay,
            per_second=settings.tokens_per_second,
        )
    else:
        tgi_error = _non_stream_tgi_error(problem, directives)
        if tgi_error is not None:
            kind, message = tgi_error
            tgi_body = dump_json(error_response(message, kind))
            status = TGI_ERROR_STATUS[kind]
            return errors.model_error(settings.endpoint_name, status, tgi_body).response(request_id)
        emissions, pace = _whole_emission(model, tgi_request, directives, settings)
        content_type = "application/json"

    record = registry.open(request_id)
    messages = play(
        emissions,
        directives=directives,
        pace=pace,
        record=record,
        registry=registry,
        style=style,
        seed=stable_hash(tgi_request.inputs),
    )
    return EventStreamResponse(
        messages, record=record, headers=_stream_headers(request_id, content_type)
    )


def _stream_emissions(
    model: StandInModel,
    tgi_request: GenerateRequest,
    directives: Directives,
    problem: str | None,
    style: SseStyle,
) -> list[Emission]:
    if problem is not None:
        return [Emission(data=data_event(error_response(problem, "validation"), style))]
    generation = model.generate(
        tgi_request, answer_length=directives.answer_length, markdown=directives.markdown
    )
    return [
        Emission(data=data_event(event, style), tokens=1)
        for event in stream_events(generation, tgi_request)
    ]


def _non_stream_tgi_error(problem: str | None, directives: Directives) -> tuple[str, str] | None:
    """A TGI error a non-streaming request gets as an HTTP error: (error_type, message)."""
    if problem is not None:
        return "validation", problem
    fault = directives.stream_fault
    if fault is not None and fault.kind in TGI_ERROR_FAULTS:
        return fault.kind, TGI_ERRORS[fault.kind]
    return None


def _whole_emission(
    model: StandInModel,
    tgi_request: GenerateRequest,
    directives: Directives,
    settings: EmulatorSettings,
) -> tuple[list[Emission], Pace]:
    generation = model.generate(
        tgi_request, answer_length=directives.answer_length, markdown=directives.markdown
    )
    data = dump_json(generate_response(generation, tgi_request)).encode("utf-8")
    # TGI answers a non-streaming request only when the whole generation is done.
    rate = settings.tokens_per_second
    generating = 0.0 if rate <= 0 else (len(generation.tokens) - 1) / rate
    pace = Pace(first_delay=settings.first_token_delay + generating, per_second=0)
    return [Emission(data=data, tokens=len(generation.tokens))], pace


def _pre_stream_error(kind: str, endpoint_name: str) -> SageMakerError:
    if kind == "throttling":
        return errors.throttling()
    if kind == "unavailable":
        return errors.service_unavailable()
    if kind == "internal_failure":
        return errors.internal_failure()
    if kind == "no_capacity":
        return errors.no_capacity()
    tgi_body = dump_json(error_response(TGI_ERRORS["generation"], "generation"))
    return errors.model_error(endpoint_name, 500, tgi_body)
