"""The emulator's HTTP app: SageMaker runtime's two invoke APIs, plus a small control API.

Why a Starlette app: it runs under uvicorn like the relay does, speaks plain HTTP on loopback,
and the real boto3 talks to it through ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` as if it were AWS.
Both APIs take the same checks and directives and play the same reply; they differ only in how
it travels: InvokeEndpointWithResponseStream in event-stream messages as it is made,
InvokeEndpoint whole once it is done. What the reply says is the engine's (engines.py).
"""

from __future__ import annotations

import contextlib
import json
import re
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any, Final

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from jumpstream.emulator import errors
from jumpstream.emulator.directives import DirectiveError, read_directives
from jumpstream.emulator.engines import Engine, engine_named
from jumpstream.emulator.errors import SageMakerError
from jumpstream.emulator.model import DEFAULT_MODEL_ID, StandInModel
from jumpstream.emulator.model_facts import serving_engine
from jumpstream.emulator.playback import Pace, Played, event_stream, play
from jumpstream.emulator.reply import ContainerError, NotEmulated, Reply
from jumpstream.emulator.response import EventStreamResponse, InvocationResponse
from jumpstream.emulator.sse import SseStyle
from jumpstream.emulator.streams import StreamRecord, StreamRegistry
from jumpstream.emulator.tgi import TgiRelay
from jumpstream.emulator.tokenizer import stable_hash

__all__ = ["DEFAULT_ENDPOINT_NAME", "EmulatorSettings", "create_app"]

INFERENCE_COMPONENT_HEADER = "X-Amzn-SageMaker-Inference-Component"
#: `AWS4-HMAC-SHA256 Credential=KEY/DATE/REGION/sagemaker/aws4_request, SignedHeaders=..., ...`
SIGV4_SAGEMAKER = re.compile(
    r"AWS4-HMAC-SHA256 Credential=[^/\s]+/\d{8}/[a-z0-9-]+/sagemaker/aws4_request,"
    r" *SignedHeaders=[a-z0-9;-]+, *Signature=[0-9a-f]{64}$"
)
DEFAULT_ENDPOINT_NAME: Final = "jumpstream-local"
_VARIANT: Final = "AllTraffic"
#: How many request bodies' replies the emulator keeps (`_remember`).
_REMEMBERED_REPLIES: Final = 32


@dataclass(frozen=True, slots=True, kw_only=True)
class EmulatorSettings:
    """What one emulator instance pretends to be, and how fast its model is."""

    endpoint_name: str = DEFAULT_ENDPOINT_NAME
    model_id: str = DEFAULT_MODEL_ID
    #: The engine serving the model (one of the contract's ENGINES); None: the catalog's.
    engine: str | None = None
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

    @property
    def served_by(self) -> str:
        """The engine the endpoint runs the model on."""
        return serving_engine(self.model_id, self.engine)


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
            Route("/endpoints/{name}/invocations", _invoke_endpoint, methods=["POST"]),
            Route("/_emulator/health", _health, methods=["GET"]),
            Route("/_emulator/streams", _streams, methods=["GET"]),
            Route("/_emulator/release", _release, methods=["POST"]),
        ],
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine_named(settings.served_by)
    app.state.warm_at = None
    app.state.model = StandInModel(settings.model_id)
    app.state.registry = StreamRegistry()
    app.state.replies = {}
    return app


async def _health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def _streams(request: Request) -> Response:
    registry: StreamRegistry = request.app.state.registry
    return JSONResponse(registry.snapshot())


async def _release(request: Request) -> Response:
    registry: StreamRegistry = request.app.state.registry
    return JSONResponse({"released": registry.release()})


@dataclass(frozen=True, slots=True, kw_only=True)
class _Invocation:
    """One call being answered: where it came in and what it must be answered with."""

    request: Request
    request_id: str
    settings: EmulatorSettings
    #: InvokeEndpointWithResponseStream (else InvokeEndpoint).
    streaming_api: bool

    def respond(
        self, played: AsyncGenerator[Played, None], *, record: StreamRecord, content_type: str
    ) -> EventStreamResponse | InvocationResponse:
        """The reply ``played`` out, as this API sends it."""
        if self.streaming_api:
            headers = {
                "X-Amzn-SageMaker-Content-Type": content_type,
                "x-Amzn-Invoked-Production-Variant": _VARIANT,
                "x-amzn-RequestId": self.request_id,
            }
            return EventStreamResponse(event_stream(played), record=record, headers=headers)
        headers = {
            "Content-Type": content_type,
            "x-Amzn-Invoked-Production-Variant": _VARIANT,
            "x-amzn-RequestId": self.request_id,
        }
        return InvocationResponse(
            played,
            record=record,
            headers=headers,
            request_id=self.request_id,
            endpoint_name=self.settings.endpoint_name,
        )


async def _invoke_with_response_stream(request: Request) -> Response:
    return await _invoke(request, streaming_api=True)


async def _invoke_endpoint(request: Request) -> Response:
    return await _invoke(request, streaming_api=False)


async def _invoke(request: Request, *, streaming_api: bool) -> Response:
    settings: EmulatorSettings = request.app.state.settings
    call = _Invocation(
        request=request,
        request_id=str(uuid.uuid4()),
        settings=settings,
        streaming_api=streaming_api,
    )
    refusal = (
        _check_signed(request)
        or _check_target(request, settings)
        or _cold_refusal(request, settings)
    )
    if refusal is not None:
        return refusal.response(call.request_id)
    raw = await request.body()
    if settings.tgi_url is not None:
        return await _forward_to_tgi(call, raw)
    return _stand_in_reply(call, raw)


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


async def _forward_to_tgi(call: _Invocation, raw: bytes) -> Response:
    relay: TgiRelay = call.request.app.state.tgi
    record = StreamRecord(id=call.request_id)
    reply = await relay.invoke(
        raw,
        content_type=call.request.headers.get("content-type", "application/json"),
        endpoint_name=call.settings.endpoint_name,
        record=record,
    )
    if isinstance(reply, SageMakerError):
        return reply.response(call.request_id)
    registry: StreamRegistry = call.request.app.state.registry
    return call.respond(reply.parts, record=registry.add(record), content_type=reply.content_type)


def _stand_in_reply(call: _Invocation, raw: bytes) -> Response:
    settings = call.settings
    engine: Engine = call.request.app.state.engine
    try:
        body: Any = json.loads(raw)
    except ValueError as error:
        return _container_error(engine.unreadable_body(str(error)), call)
    try:
        body, directives = read_directives(body)
    except DirectiveError as error:
        return errors.emulator_usage(str(error)).response(call.request_id)
    fault = directives.pre_stream_fault
    if fault is not None:
        sagemaker = _sagemaker_refusal(fault.kind)
        if sagemaker is not None:
            return sagemaker.response(call.request_id)
        return _container_error(engine.model_failure(), call)
    replies: dict[bytes, Reply] = call.request.app.state.replies
    reply = replies.get(raw)
    if reply is None:
        style = SseStyle(space=not directives.nospace, crlf=directives.crlf)
        try:
            reply = engine.answer(
                body, model=call.request.app.state.model, directives=directives, style=style
            )
        except NotEmulated as error:
            return errors.emulator_usage(f"{error} is not emulated").response(call.request_id)
        if isinstance(reply, Reply):
            _remember(replies, raw, reply)
    if isinstance(reply, ContainerError):
        return _container_error(reply, call)
    registry: StreamRegistry = call.request.app.state.registry
    record = registry.open(call.request_id)
    played = play(
        reply.emissions,
        failure=reply.failure,
        keepalive=reply.keepalive,
        directives=directives,
        pace=_pace(reply, settings),
        record=record,
        registry=registry,
        seed=stable_hash(reply.prompt),
    )
    return call.respond(played, record=record, content_type=reply.content_type)


def _remember(replies: dict[bytes, Reply], raw: bytes, reply: Reply) -> None:
    """Keep `reply` for the next request with the same body, forgetting the oldest past
    `_REMEMBERED_REPLIES`.

    A reply is a function of the body alone (ids and times in it are derived, never random), and
    building one encodes every token's event at once: ~3 ms for 200 tokens, so hundreds of
    streams asking the same at once (the bench's capacity steps) waited on the emulator for
    their first tokens, not on the relay in front of it. What is played from it (paces, faults,
    the stream's record) is made per request.
    """
    if len(replies) >= _REMEMBERED_REPLIES:
        del replies[next(iter(replies))]
    replies[raw] = reply


def _pace(reply: Reply, settings: EmulatorSettings) -> Pace:
    """A streamed reply at the model's pace; a whole one once its whole generation is done."""
    if reply.streamed:
        return Pace(first_delay=settings.first_token_delay, per_second=settings.tokens_per_second)
    tokens = sum(emission.tokens for emission in reply.emissions)
    rate = settings.tokens_per_second
    generating = 0.0 if rate <= 0 else max(tokens - 1, 0) / rate
    return Pace(first_delay=settings.first_token_delay + generating, per_second=0)


def _container_error(error: ContainerError, call: _Invocation) -> Response:
    """The container's HTTP error, as SageMaker passes it on: a ModelError."""
    return errors.model_error(call.settings.endpoint_name, error.status, error.body).response(
        call.request_id
    )


def _sagemaker_refusal(kind: str) -> SageMakerError | None:
    """SageMaker's own refusal for a pre-stream fault kind; None for the container's."""
    refusals = {
        "throttling": errors.throttling,
        "unavailable": errors.service_unavailable,
        "internal_failure": errors.internal_failure,
        "no_capacity": errors.no_capacity,
    }
    refusal = refusals.get(kind)
    return None if refusal is None else refusal()
