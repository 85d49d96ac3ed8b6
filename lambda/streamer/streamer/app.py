"""The relay's HTTP surface: `POST /` generates (a prompt or chat messages); OpenAI's
`POST /v1/chat/completions`, `POST /v1/completions` and `GET /v1/models` do the same in OpenAI's
shapes; `GET /health` is the adapter's readiness check; `GET /chat` is a chat page that calls
`POST /` from the browser.

Checks run cheapest first and all before SageMaker is called: the route and method (404/405), the
Accept header (406, on `POST /`), the body's size (413, from Content-Length and again while
reading, so a missing or lying length cannot get past it), then its JSON and TGI's parameter
rules (400/422). Every refusal is the JSON body of errors.py, or OpenAI's error object under /v1/.
All routes stream through one RelayResponse; only the writer differs.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

import anyio
from aws_lambda_powertools import Logger
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .contract import HEALTH_PATH
from .errors import ApiError, error_response
from .formats import StreamWriter, writer_for
from .invocation import seconds_left_from
from .model_text import transform_for
from .negotiation import OutputFormat, choose_format
from .observability import MetricsContext, RequestObserver, current_record, make_logger
from .openai_api import (
    ChatChunkWriter,
    ChatCompletionCollector,
    CompletionChunkWriter,
    CompletionCollector,
    models_list,
    openai_error_response,
    parse_chat_request,
    parse_completion_request,
)
from .relay import max_line_bytes_for
from .settings import Settings
from .streaming import DEADLINE_MARGIN_SECONDS, RelayResponse
from .upstream import SageMakerUpstream, Upstream
from .validation import GenerateRequest, decode_body, parse_request

__all__ = ["create_app"]

_CONTENT_LENGTH: Final = re.compile(r"[0-9]{1,20}")
_SHOWN_PATH_CHARS: Final = 100
_OFFERED: Final = ", ".join(output.value for output in OutputFormat)


def create_app(
    settings: Settings, *, upstream: Upstream | None = None, logger: Logger | None = None
) -> Starlette:
    """The ASGI application. Without `upstream`, it makes the one SageMaker client it will use."""
    relay_upstream = upstream if upstream is not None else SageMakerUpstream(settings)
    relay_logger = logger or make_logger(settings.service_name)
    max_line_bytes = max_line_bytes_for(
        max_body_bytes=settings.max_body_bytes,
        max_new_tokens_limit=settings.max_new_tokens_limit,
    )

    model_name = settings.model_id or settings.endpoint_name
    metrics = MetricsContext(
        namespace=settings.metrics_namespace,
        environment=settings.environment_name,
        model=model_name,
    )

    def relay(
        request: Request,
        generate_request: GenerateRequest,
        *,
        writer: StreamWriter,
        stop_sequences: Sequence[str],
        collect: bool = False,
        render_error: Callable[[ApiError], Response] = error_response,
    ) -> RelayResponse:
        record = current_record()
        if record is not None:
            record.prompt_chars = len(generate_request.inputs)
            if settings.log_prompts:
                record.prompt = generate_request.inputs
        return RelayResponse(
            upstream=relay_upstream,
            body=generate_request.upstream_body(),
            writer=writer,
            transform=transform_for(settings.prompt_template, stop_sequences=stop_sequences),
            record=record,
            logger=relay_logger,
            max_line_bytes=max_line_bytes,
            stop_at=_stop_time(request),
            collect=collect,
            render_error=render_error,
        )

    async def generate(request: Request) -> RelayResponse:
        record = current_record()
        output = choose_format(", ".join(request.headers.getlist("accept")))
        if output is None:
            raise ApiError(
                kind="not_acceptable",
                message=f"The Accept header allows none of the formats offered: {_OFFERED}.",
            )
        if record is not None:
            record.response_format = output.value
        body = await _read_body(request, settings.max_body_bytes)
        generate_request = parse_request(
            body,
            max_new_tokens_limit=settings.max_new_tokens_limit,
            template=settings.prompt_template,
        )
        return relay(
            request,
            generate_request,
            writer=writer_for(output),
            stop_sequences=generate_request.added_stop_sequences,
        )

    async def openai_route(request: Request, *, chat: bool) -> Response:
        """`/v1/chat/completions` and `/v1/completions`: every refusal in OpenAI's shape."""
        try:
            document = decode_body(await _read_body(request, settings.max_body_bytes))
            if chat:
                openai_request = parse_chat_request(
                    document,
                    template=settings.prompt_template,
                    max_new_tokens_limit=settings.max_new_tokens_limit,
                )
            else:
                openai_request = parse_completion_request(
                    document, max_new_tokens_limit=settings.max_new_tokens_limit
                )
        except ApiError as error:
            return _error_response(error, render=openai_error_response)
        created = int(time.time())
        writer: StreamWriter
        if openai_request.stream:
            chunk_writer = ChatChunkWriter if chat else CompletionChunkWriter
            writer = chunk_writer(
                model=model_name, include_usage=openai_request.include_usage, created=created
            )
        else:
            collector = ChatCompletionCollector if chat else CompletionCollector
            writer = collector(model=model_name, created=created)
        record = current_record()
        if record is not None:
            record.response_format = "openai-sse" if openai_request.stream else "openai-json"
        return relay(
            request,
            openai_request.generate,
            writer=writer,
            stop_sequences=openai_request.stop_sequences,
            collect=not openai_request.stream,
            render_error=openai_error_response,
        )

    async def chat_completions(request: Request) -> Response:
        return await openai_route(request, chat=True)

    async def completions(request: Request) -> Response:
        return await openai_route(request, chat=False)

    async def models(request: Request) -> Response:
        return JSONResponse(models_list(model_name, created=0))

    async def chat_page(request: Request) -> Response:
        return _static("chat.html", "text/html; charset=utf-8")

    async def chat_script(request: Request) -> Response:
        return _static("chat.js", "text/javascript; charset=utf-8")

    async def health(request: Request) -> Response:
        # Never calls SageMaker: the adapter polls this before every cold start's first request.
        return JSONResponse({"status": "ok"})

    app = Starlette(
        routes=[
            Route("/", generate, methods=["POST"]),
            Route(HEALTH_PATH, health, methods=["GET"]),
            Route("/chat", chat_page, methods=["GET"]),
            Route("/chat.js", chat_script, methods=["GET"]),
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
            Route("/v1/completions", completions, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]),
        ],
        middleware=[Middleware(RequestObserver, logger=relay_logger, metrics=metrics)],
        exception_handlers={ApiError: _api_error, HTTPException: _http_error},
    )
    # "/health/" is another path (404), not a redirect the adapter or a client would follow.
    app.router.redirect_slashes = False
    return app


_STATIC: Final = Path(__file__).with_name("static")
# The page and its script come from this origin only; nothing is loaded from elsewhere.
_STATIC_HEADERS: Final = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}


def _static(name: str, media_type: str) -> Response:
    """A file of the chat page, read when asked for: a cold start never pays for it."""
    return Response((_STATIC / name).read_bytes(), media_type=media_type, headers=_STATIC_HEADERS)


def _stop_time(request: Request) -> float | None:
    """When, on the event loop's clock, the relay must give up so it can still answer in time.

    Lambda ends an invocation at its deadline whatever the function is doing: the caller would
    get a cut-off body with no error in it. Read on arrival, the deadline minus a margin is the
    last moment the relay can still say why the answer stopped. None outside Lambda.
    """
    seconds_left = seconds_left_from(request.headers, now=time.time())
    if seconds_left is None:
        return None
    return anyio.current_time() + seconds_left - DEADLINE_MARGIN_SECONDS


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        if not _CONTENT_LENGTH.fullmatch(declared.strip()):
            raise ApiError(
                kind="invalid_body",
                message="The Content-Length header must be a number of bytes.",
            )
        if int(declared) > limit:
            raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
    except ClientDisconnect:
        record = current_record()
        if record is not None:
            record.client_disconnected = True
        raise ApiError(
            kind="invalid_body",
            message="The client disconnected before sending the whole body.",
        ) from None
    return b"".join(chunks)


def _too_large(limit: int) -> ApiError:
    return ApiError(
        kind="body_too_large",
        message=f"The request body must be at most {limit} bytes.",
    )


def _error_response(
    error: ApiError,
    headers: dict[str, str] | None = None,
    *,
    render: Callable[[ApiError], Response] | None = None,
) -> Response:
    record = current_record()
    if record is not None:
        record.error_type = error.kind
    if render is not None:
        response = render(error)
        response.headers.update(headers or {})
        return response
    return error_response(error, headers=headers)


async def _api_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, ApiError)
    return _error_response(error)


async def _http_error(request: Request, error: Exception) -> Response:
    """Starlette's own 404 and 405, in the relay's JSON shape (keeping the Allow header), or
    OpenAI's under /v1/, where OpenAI's clients are the callers."""
    assert isinstance(error, HTTPException)
    path = _shown_path(request.url.path)
    render = openai_error_response if request.url.path.startswith("/v1/") else None
    if error.status_code == 404:
        api_error = ApiError(
            kind="not_found",
            message=(
                f"There is nothing at {path}: POST / to generate, GET /chat for a chat page, "
                f"GET {HEALTH_PATH} to check, and OpenAI's POST /v1/chat/completions, "
                "POST /v1/completions and GET /v1/models."
            ),
        )
        return _error_response(api_error, render=render)
    if error.status_code == 405:
        # Starlette builds Allow from a set: sorted, the header and the message are stable.
        allow_header = (error.headers or {}).get("Allow", "")
        allowed = ", ".join(sorted(method.strip() for method in allow_header.split(",")))
        api_error = ApiError(
            kind="method_not_allowed",
            message=f"{path} does not take {request.method}; it takes {allowed}.",
        )
        return _error_response(api_error, {"Allow": allowed}, render=render)
    # Any other HTTP error Starlette raises keeps its own status.
    api_error = ApiError(kind="invalid_request", message=error.detail)
    response = _error_response(api_error, dict(error.headers or {}))
    response.status_code = error.status_code
    return response


def _shown_path(path: str) -> str:
    return path if len(path) <= _SHOWN_PATH_CHARS else path[:_SHOWN_PATH_CHARS] + "…"
