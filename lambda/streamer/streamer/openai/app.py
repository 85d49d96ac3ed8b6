"""The OpenAI routes, an application of their own that the relay mounts on /v1.

`POST /chat/completions` and `POST /completions` read the body, translate it (requests.py) and
stream the answer through the relay's one streaming response with an OpenAI writer
(writers.py); `POST /responses` does the same in the Responses API's shapes
(response_requests.py, response_writers.py); `GET /models` names the deployed model. Every
refusal, Starlette's own 404 and 405 included, is OpenAI's error object (errors.py): its
exception handlers are this application's.
"""

from __future__ import annotations

import time

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..body import read_body
from ..formats import StreamWriter
from ..observability import current_record
from ..refusals import refusal_handlers
from ..settings import Settings
from ..streaming import Responder
from ..validation import decode_body
from .errors import openai_error_response
from .requests import OpenAIRequest, parse_chat_request, parse_completion_request
from .response_requests import parse_responses_request
from .response_writers import ResponseCollector, ResponseEventWriter
from .writers import (
    ChatChunkWriter,
    ChatCompletionCollector,
    CompletionChunkWriter,
    CompletionCollector,
    models_list,
)

__all__ = ["openai_app"]


def openai_app(settings: Settings, responder: Responder) -> Starlette:
    """The /v1 application, answering for the deployed model with `responder`."""
    model_name = settings.model_name

    def answer(request: Request, openai_request: OpenAIRequest, *, chat: bool) -> Response:
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
        return stream_answer(request, openai_request, writer)

    def stream_answer(
        request: Request, openai_request: OpenAIRequest, writer: StreamWriter
    ) -> Response:
        record = current_record()
        if record is not None:
            record.response_format = "openai-sse" if openai_request.stream else "openai-json"
        return responder.respond(
            request,
            openai_request.generate,
            writer=writer,
            stop_sequences=openai_request.stop_sequences,
            collect=not openai_request.stream,
            render_error=openai_error_response,
        )

    async def chat_completions(request: Request) -> Response:
        document = decode_body(await read_body(request, settings.max_body_bytes))
        openai_request = parse_chat_request(
            document,
            template=settings.prompt_template,
            max_new_tokens_limit=settings.max_new_tokens_limit,
        )
        return answer(request, openai_request, chat=True)

    async def completions(request: Request) -> Response:
        document = decode_body(await read_body(request, settings.max_body_bytes))
        openai_request = parse_completion_request(
            document, max_new_tokens_limit=settings.max_new_tokens_limit
        )
        return answer(request, openai_request, chat=False)

    async def responses(request: Request) -> Response:
        document = decode_body(await read_body(request, settings.max_body_bytes))
        responses_request = parse_responses_request(
            document,
            template=settings.prompt_template,
            max_new_tokens_limit=settings.max_new_tokens_limit,
        )
        response_writer = (
            ResponseEventWriter if responses_request.chat.stream else ResponseCollector
        )
        writer = response_writer(responses_request, model=model_name, created=int(time.time()))
        return stream_answer(request, responses_request.chat, writer)

    async def models(request: Request) -> Response:
        return JSONResponse(models_list(model_name, created=0))

    app = Starlette(
        routes=[
            Route("/chat/completions", chat_completions, methods=["POST"]),
            Route("/completions", completions, methods=["POST"]),
            Route("/responses", responses, methods=["POST"]),
            Route("/models", models, methods=["GET"]),
        ],
        exception_handlers=refusal_handlers(openai_error_response, internal_errors=True),
    )
    # "/v1/models/" is another path (404), as on the relay's own routes.
    app.router.redirect_slashes = False
    return app
