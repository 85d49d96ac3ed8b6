"""The relay's HTTP surface: `POST /` generates (a prompt or chat messages); OpenAI's
`POST /v1/chat/completions`, `POST /v1/completions`, `POST /v1/responses` and `GET /v1/models`
do the same in OpenAI's shapes (openai/app.py, mounted on /v1); `GET /health` is the adapter's
readiness check; `GET /chat` is a chat page that calls `POST /` from the browser (its files:
CHAT_PAGE_FILES);
`POST /_lambda/after-restore` (AFTER_RESTORE_PATH) is the adapter's SnapStart hook.

Checks run cheapest first and all before SageMaker is called: the route and method (404/405), the
Accept header (406, on `POST /`), the body's size (413, from Content-Length and again while
reading, so a missing or lying length cannot get past it), then its JSON and TGI's parameter
rules (400/422). Every refusal is the JSON body of errors.py here, OpenAI's error object under
/v1 (each application has its own exception handlers, refusals.py). Every route that generates
streams through one AnswerResponse; only the writer differs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Final

from aws_lambda_powertools import Logger
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from .aws import AwsAccess
from .body import read_body
from .contract import AFTER_RESTORE_PATH, CHAT_PAGE_FILES, HEALTH_PATH, OPEN_PATHS, KeyLimits
from .errors import ApiError, error_response
from .formats import writer_for
from .negotiation import OutputFormat, choose_format
from .observability import MetricsContext, RequestObserver, current_record, make_logger
from .openai.app import openai_app
from .openai.errors import openai_error_response
from .prompt_tokens import PromptCounter
from .refusals import refusal_handlers
from .settings import Settings
from .streaming import AnswerResponse, Responder
from .upstream import SageMakerUpstream, Upstream
from .validation import parse_request

__all__ = ["create_app"]

_OFFERED: Final = ", ".join(output.value for output in OutputFormat)
#: Where the OpenAI routes are mounted; refusals under it are OpenAI's error objects.
OPENAI_PREFIX: Final = "/v1"


def create_app(
    settings: Settings, *, upstream: Upstream | None = None, logger: Logger | None = None
) -> Starlette:
    """The ASGI application. Without `upstream`, it makes the one SageMaker client it will use."""
    relay_logger = logger or make_logger(settings.service_name)
    access = AwsAccess(settings.region)
    sagemaker = upstream if upstream is not None else SageMakerUpstream(settings, access)
    counter = (
        None
        if settings.tokenizer_uri is None
        else PromptCounter(settings.tokenizer_uri, region=settings.region, logger=relay_logger)
    )
    responder = Responder(settings, upstream=sagemaker, logger=relay_logger, counter=counter)
    metrics = MetricsContext(
        namespace=settings.metrics_namespace,
        environment=settings.environment_name,
        model=settings.model_name,
    )

    async def generate(request: Request) -> AnswerResponse:
        record = current_record()
        output = choose_format(", ".join(request.headers.getlist("accept")))
        if output is None:
            raise ApiError(
                kind="not_acceptable",
                message=f"The Accept header allows none of the formats offered: {_OFFERED}.",
            )
        if record is not None:
            record.response_format = output.value
        body = await read_body(request, settings.max_body_bytes)
        generate_request = parse_request(
            body,
            max_new_tokens_limit=settings.max_new_tokens_limit,
            template=settings.prompt_template,
            engine_chat=settings.engine_chat_template,
        )
        return responder.respond(
            request,
            generate_request,
            writer=writer_for(output),
            stop_sequences=generate_request.added_stop_sequences,
        )

    async def health(request: Request) -> Response:
        # Never calls SageMaker: the adapter polls this before every cold start's first request.
        return JSONResponse({"status": "ok"})

    async def after_restore(request: Request) -> Response:
        # The Web Adapter's SnapStart hook, before the restored process serves anyone.
        await sagemaker.after_restore()
        await access.after_restore()
        return Response(status_code=204)

    hook = settings.snapstart_hook
    app = Starlette(
        routes=[
            Route("/", generate, methods=["POST"]),
            Route(HEALTH_PATH, health, methods=["GET"]),
            *(
                Route(path, _page_file(name), methods=["GET"])
                for path, name in CHAT_PAGE_FILES.items()
            ),
            Mount(OPENAI_PREFIX, app=openai_app(settings, responder, counter=counter)),
            # Only where the adapter calls it (SnapStart), which also keeps callers out of it.
            *([Route(AFTER_RESTORE_PATH, after_restore, methods=["POST"])] if hook else []),
        ],
        middleware=[
            Middleware(
                RequestObserver,
                logger=relay_logger,
                metrics=metrics,
                unmetered_paths=frozenset({AFTER_RESTORE_PATH}),
            ),
            *_key_gate(settings, access, relay_logger),
        ],
        exception_handlers=refusal_handlers(error_response),
    )
    # "/health/" is another path (404), not a redirect the adapter or a client would follow.
    app.router.redirect_slashes = False
    return app


def _key_gate(settings: Settings, access: AwsAccess, logger: Logger) -> list[Middleware]:
    """With API keys, the door every request but the open paths goes through first (its
    modules are imported only then: a relay without keys does not start them)."""
    if settings.api_keys_table is None:
        return []
    from .api_keys import KeyGate, KeyStore
    from .dynamodb import DynamoDB

    store = KeyStore(
        DynamoDB(access),
        settings.api_keys_table,
        defaults=KeyLimits(
            requests_per_minute=settings.key_requests_per_minute,
            tokens_per_day=settings.key_tokens_per_day,
            tokens_per_month=settings.key_tokens_per_month,
        ),
        logger=logger,
    )
    return [
        Middleware(
            KeyGate,
            store=store,
            open_paths=OPEN_PATHS | ({AFTER_RESTORE_PATH} if settings.snapstart_hook else set()),
            renders={OPENAI_PREFIX: openai_error_response},
            render=error_response,
        )
    ]


_STATIC: Final = Path(__file__).with_name("static")
_MEDIA_TYPES: Final = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
# The page, its script, styles, icon and vendored libraries come from this origin only; nothing
# is loaded from elsewhere, no inline script or style runs, and no HTML reaches the page's DOM but
# through DOMPurify (Trusted Types: the page's only policy is DOMPurify's own).
_STATIC_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; "
        "require-trusted-types-for 'script'; trusted-types dompurify"
    ),
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}


def _page_file(name: str) -> Callable[[Request], Awaitable[Response]]:
    """The endpoint of one of the chat page's files."""
    media_type = _MEDIA_TYPES[Path(name).suffix]

    async def endpoint(request: Request) -> Response:
        return _static(name, media_type)

    return endpoint


def _static(name: str, media_type: str) -> Response:
    """A file of the chat page, read when asked for: a cold start never pays for it."""
    return Response((_STATIC / name).read_bytes(), media_type=media_type, headers=_STATIC_HEADERS)
