"""Refusals in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}`.

OpenAI's clients switch on the status and the type, so each relay error kind takes OpenAI's
status and type from the deploy contract's table (contract.ERROR_KINDS), and the relay's own
kind goes in `code`. A refusal of one parameter names it in `param`, as OpenAI does.
"""

from __future__ import annotations

from starlette.responses import Response

from ..contract import ERROR_KINDS
from ..errors import ApiError, render_json

__all__ = [
    "ParameterError",
    "error_param",
    "invalid",
    "model_not_found",
    "openai_error_body",
    "openai_error_response",
    "openai_status",
    "unsupported",
]


class ParameterError(ApiError):
    """An ApiError (invalid_request unless said) that also names the offending parameter, as
    OpenAI does."""

    def __init__(self, message: str, *, param: str | None, kind: str = "invalid_request") -> None:
        super().__init__(kind=kind, message=message)
        self.param = param


def invalid(message: str, param: str | None = None) -> ApiError:
    """The request cannot be answered as it stands; `param` names the field to fix."""
    return ParameterError(message, param=param)


def model_not_found(model_id: str) -> ApiError:
    """`GET /v1/models/{id}` for a model this relay does not serve: OpenAI's 404, naming it."""
    shown = model_id if len(model_id) <= 100 else model_id[:100] + "…"
    return ParameterError(
        f"The model `{shown}` does not exist: this relay serves one model, the one GET /v1/models "
        "lists.",
        param="model",
        kind="not_found",
    )


def unsupported(param: str, why: str) -> ApiError:
    """A parameter the relay cannot honour: refused, never ignored."""
    return ParameterError(f"{param} is not supported: {why}.", param=param)


def openai_status(error: ApiError) -> int:
    """The status an OpenAI client expects for this relay error (the contract's table)."""
    return error.facts.openai_status


def openai_error_body(*, message: str, kind: str, param: str | None = None) -> dict[str, object]:
    """OpenAI's error object; `code` carries the relay's own error type."""
    error_type = ERROR_KINDS[kind].openai_type
    return {"error": {"message": message, "type": error_type, "param": param, "code": kind}}


def error_param(error: ApiError) -> str | None:
    return error.param if isinstance(error, ParameterError) else None


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
