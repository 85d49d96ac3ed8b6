"""Exception handlers: every refusal before an answer, in the dialect of the app it came from.

The relay's routes answer in its own error shape (errors.py), the OpenAI routes under /v1 in
OpenAI's (openai/errors.py). Each is a Starlette application with these handlers, built for its
own renderer, so the shape follows from where a route lives: Starlette's own 404 and 405 inside
the /v1 mount are OpenAI's too. Every refusal is also noted on the request's record, for its
log line and its metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from .contract import HEALTH_PATH
from .errors import ApiError, internal_error
from .observability import current_record

__all__ = ["Render", "refusal_handlers", "refusal_response"]

#: Writes one refusal as a complete response, in one dialect.
Render = Callable[[ApiError], Response]
_Handler = Callable[[Request, Exception], Any]

_SHOWN_PATH_CHARS: Final = 100


def refusal_handlers(render: Render, *, internal_errors: bool = False) -> dict[Any, _Handler]:
    """Handlers for ApiError and Starlette's HTTPException, writing with `render`.

    `internal_errors` adds one for any other exception, for a mounted application: a
    Starlette application answers those itself (in plain text) before the exception reaches
    the observer that wraps the whole relay, which then only logs it.
    """

    async def api_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, ApiError)
        return refusal_response(error, render)

    async def http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        return _http_error(request, error, render)

    async def unexpected(request: Request, error: Exception) -> Response:
        return render(internal_error())

    handlers: dict[Any, _Handler] = {ApiError: api_error, HTTPException: http_error}
    if internal_errors:
        handlers[Exception] = unexpected
    return handlers


def refusal_response(
    error: ApiError, render: Render, headers: Mapping[str, str] | None = None
) -> Response:
    """The refusal's response, noted on the request's record."""
    record = current_record()
    if record is not None:
        record.error_type = error.kind
    response = render(error)
    if headers:
        response.headers.update(headers)
    return response


def _http_error(request: Request, error: HTTPException, render: Render) -> Response:
    """Starlette's own 404 and 405 as refusals (keeping the Allow header)."""
    path = _shown_path(request.url.path)
    if error.status_code == 404:
        api_error = ApiError(
            kind="not_found",
            message=(
                f"There is nothing at {path}: POST / to generate, GET /chat for a chat page, "
                f"GET {HEALTH_PATH} to check, and OpenAI's POST /v1/chat/completions, "
                "POST /v1/completions, POST /v1/responses and GET /v1/models."
            ),
        )
        return refusal_response(api_error, render)
    if error.status_code == 405:
        # Starlette builds Allow from a set: sorted, the header and the message are stable.
        allow_header = (error.headers or {}).get("Allow", "")
        allowed = ", ".join(sorted(method.strip() for method in allow_header.split(",")))
        api_error = ApiError(
            kind="method_not_allowed",
            message=f"{path} does not take {request.method}; it takes {allowed}.",
        )
        return refusal_response(api_error, render, {"Allow": allowed})
    # Any other HTTP error Starlette raises keeps its own status.
    api_error = ApiError(kind="invalid_request", message=error.detail)
    response = refusal_response(api_error, render, error.headers)
    response.status_code = error.status_code
    return response


def _shown_path(path: str) -> str:
    return path if len(path) <= _SHOWN_PATH_CHARS else path[:_SHOWN_PATH_CHARS] + "…"
