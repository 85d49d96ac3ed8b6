"""TGI's error shapes, parsed and mapped to the caller's error: the one module that knows them.

TGI reports a failure in two places, with the same JSON:
- inside the token stream, after HTTP 200 went out: a `data:` event whose object has `error`;
- before the stream, as an HTTP error of the container, which SageMaker wraps in a `ModelError`
  (HTTP 424) carrying the container's status (`OriginalStatusCode`) and body (`OriginalMessage`).

The object is `{"error": "...", "error_type": "..."}` (TGI-native) or, since TGI 2.4.1,
`{"error": {"message": "...", "http_status_code": N}}` without a type. TGI's own status per type
(router/src/server.rs) gives the type back: generation 424, overloaded 429, validation (and the
template and tool errors, which also describe the request) 422; 500 is ambiguous and stays
unknown. Whichever way it came, the caller gets the same answer for the same meaning
(model_errors.py): a validation error is the caller's 422 with TGI's reason, an overloaded model
a 503 to retry, anything else a 502 whose reason stays in the log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from .errors import UpstreamError
from .model_errors import (
    ErrorShapeError,
    failed_before_answering,
    failed_while_generating,
    json_object,
    one_line,
    overloaded,
    rejected,
    status_code,
)

__all__ = [
    "ERROR_TYPE_BY_STATUS",
    "ErrorShapeError",
    "TgiError",
    "error_in_stream",
    "model_error",
    "parse_error",
]

ERROR_TYPE_BY_STATUS: Final[dict[int, str]] = {
    422: "validation",
    424: "generation",
    429: "overloaded",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class TgiError:
    """An error TGI reported (in the stream, or as the body of its HTTP error).

    In the stream it must reach the user: swallowing it would make a cut-off answer look complete.
    """

    message: str
    error_type: str | None  # validation, overloaded, generation, ... or None when unknown


def parse_error(obj: dict[str, Any]) -> TgiError:
    """TGI's error object (one that has a non-null `error`) as a TgiError."""
    error = obj["error"]
    if isinstance(error, str):
        error_type = obj.get("error_type")
        if error_type is not None and not isinstance(error_type, str):
            raise ErrorShapeError(f"error_type is not a string: {error_type!r}")
        return TgiError(message=error, error_type=error_type)
    if isinstance(error, dict):
        message = error.get("message")
        if not isinstance(message, str):
            raise ErrorShapeError(f"error.message is not a string: {message!r}")
        status = error.get("http_status_code")
        if status is not None and status_code(status) is None:
            raise ErrorShapeError(f"error.http_status_code is not an integer: {status!r}")
        error_type = None if status is None else ERROR_TYPE_BY_STATUS.get(status)
        return TgiError(message=message, error_type=error_type)
    raise ErrorShapeError(f"'error' is neither a string nor an object: {error!r}")


def error_in_stream(error: TgiError) -> UpstreamError:
    """An error TGI put in the stream, as the caller should get it."""
    detail = f"{error.error_type}: {error.message}"
    if error.error_type == "validation":
        return rejected(error.message, detail)
    if error.error_type == "overloaded":
        return overloaded(detail)
    shown_type = error.error_type if (error.error_type or "").isidentifier() else "unknown"
    return failed_while_generating(f"{shown_type} error", detail)


def model_error(*, status: object, original: object, detail: str) -> UpstreamError:
    """A ModelError: the container answered `status` with the body `original` before streaming.

    TGI refuses a request it cannot take before streaming (a body it cannot read, a validation
    failure on older versions) with 422, and a full queue with 429. axum's own 422 (a body TGI
    cannot deserialize) is plain text, and still speaks about the request.
    """
    code = status_code(status)
    parsed = _parse_original(original)
    reason = None if parsed is None else one_line(parsed.message)
    error_type = None if parsed is None else parsed.error_type
    if error_type is None and code is not None:
        error_type = ERROR_TYPE_BY_STATUS.get(code)
    full_detail = f"{detail} (original: {original!r})"
    if error_type == "validation":
        if reason is None and isinstance(original, str) and original.strip():
            reason = one_line(original)
        return rejected(reason or "it gave no reason", full_detail)
    if error_type == "overloaded":
        return overloaded(full_detail)
    return failed_before_answering(code, reason, full_detail)


def _parse_original(original: object) -> TgiError | None:
    """TGI's error from a ModelError's OriginalMessage, when it is TGI's JSON.

    Anything else may be a server's internals (a stack trace) and is left to the log.
    """
    parsed = json_object(original)
    if parsed is None or parsed.get("error") is None:
        return None
    try:
        return parse_error(parsed)
    except ErrorShapeError:
        return None
