"""The OpenAI routes, an application of their own that the relay mounts on /v1.

`POST /chat/completions` and `POST /completions` read the body, translate it (requests.py) and
stream the answer through the relay's one streaming response with an OpenAI writer
(writers.py); `POST /responses` does the same in the Responses API's shapes
(response_requests.py, response_writers.py); `GET /models` names the deployed model, and
`GET /models/{id}` describes it. An answer whose length the caller did not set runs as long as
the model's context allows (answer_room.py). Every refusal, Starlette's own 404 and 405
included, is OpenAI's error object (errors.py): its exception handlers are this application's.
"""

from __future__ import annotations

import dataclasses
import time

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..answer_room import AnswerRoom
from ..body import read_body
from ..formats import StreamWriter
from ..observability import current_record
from ..prompt_tokens import PromptCounter
from ..refusals import refusal_handlers
from ..settings import Settings
from ..streaming import Responder
from ..validation import decode_body
from .errors import model_not_found, openai_error_response
from .requests import OpenAIRequest, parse_chat_request, parse_completion_request
from .response_requests import parse_responses_request
from .response_writers import ResponseCollector, ResponseEventWriter
from .writers import (
    ChatChunkWriter,
    ChatCompletionCollector,
    CompletionChunkWriter,
    CompletionCollector,
    model_object,
    models_list,
)

__all__ = ["openai_app"]


def openai_app(
    settings: Settings, responder: Responder, *, counter: PromptCounter | None = None
) -> Starlette:
    """The /v1 application, answering for the deployed model with `responder`; `counter` counts
    a prompt's tokens where the relay has the model's tokenizer."""
    model_name = settings.model_name
    room = AnswerRoom(
        limit=settings.max_new_tokens_limit, window=settings.context_window, counter=counter
    )

    async def answer(request: Request, openai_request: OpenAIRequest, *, chat: bool) -> Response:
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
        return await stream_answer(request, openai_request, writer)

    async def stream_answer(
        request: Request, openai_request: OpenAIRequest, writer: StreamWriter
    ) -> Response:
        if not openai_request.sets_max_tokens:
            generate = openai_request.generate
            length = await room.max_new_tokens(
                generate.prompt_text, engine_turns=len(generate.messages)
            )
            openai_request = dataclasses.replace(
                openai_request,
                generate=dataclasses.replace(generate, default_max_new_tokens=length),
            )
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
            engine_chat=settings.engine_chat_template,
        )
        return await answer(request, openai_request, chat=True)

    async def completions(request: Request) -> Response:
        document = decode_body(await read_body(request, settings.max_body_bytes))
        openai_request = parse_completion_request(
            document, max_new_tokens_limit=settings.max_new_tokens_limit
        )
        return await answer(request, openai_request, chat=False)

    async def responses(request: Request) -> Response:
        document = decode_body(await read_body(request, settings.max_body_bytes))
        responses_request = parse_responses_request(
            document,
            template=settings.prompt_template,
            max_new_tokens_limit=settings.max_new_tokens_limit,
            engine_chat=settings.engine_chat_template,
        )
        response_writer = (
            ResponseEventWriter if responses_request.chat.stream else ResponseCollector
        )
        writer = response_writer(responses_request, model=model_name, created=int(time.time()))
        return await stream_answer(request, responses_request.chat, writer)

    async def models(request: Request) -> Response:
        return JSONResponse(models_list(model_name, created=0))

    async def model(request: Request) -> Response:
        # The one model /models lists, by the id it lists; any other is OpenAI's 404.
        model_id = request.path_params["model_id"]
        if model_id != model_name:
            raise model_not_found(model_id)
        return JSONResponse(model_object(model_name, created=0))

    app = Starlette(
        routes=[
            Route("/chat/completions", chat_completions, methods=["POST"]),
            Route("/completions", completions, methods=["POST"]),
            Route("/responses", responses, methods=["POST"]),
            Route("/models", models, methods=["GET"]),
            Route("/models/{model_id}", model, methods=["GET"]),
        ],
        exception_handlers=refusal_handlers(openai_error_response, internal_errors=True),
    )
    # "/v1/models/" is another path (404), as on the relay's own routes.
    app.router.redirect_slashes = False
    return app
