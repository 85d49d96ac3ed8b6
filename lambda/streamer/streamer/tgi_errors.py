"""TGI's error shapes, parsed and mapped to the caller's error: the one module that knows them.

TGI reports a failure in two places, with the same JSON:
- inside the token stream, after HTTP 200 went out: a `data:` event whose object has `error`;
- before the stream, as an HTTP error of the container, which SageMaker wraps in a `ModelError`
  (HTTP 424) carrying the container's status (`OriginalStatusCode`) and body (`OriginalMessage`).

The object is `{"error": "...", "error_type": "..."}` (TGI-native) or, since TGI 2.4.1,
`{"error": {"message": "...", "http_status_code": N}}` without a type. TGI's own status per type
(router/src/server.rs) gives the type back: generation 424, overloaded 429, validation (and the
template and tool errors, which also describe the request) 422; 500 is ambiguous and stays
unknown. Whichever way it came, the caller gets the same answer for the same meaning:
a validation error is the caller's 422 with TGI's reason (it says what to fix), an overloaded
model a 503 to retry, anything else a 502 whose reason stays in the log when it may hold a
server's internals.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from .errors import UpstreamError

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
# A reason quoted from the model is cut to this many characters.
_SHOWN_REASON_CHARS: Final = 500


@dataclass(frozen=True, slots=True, kw_only=True)
class TgiError:
    """An error TGI reported (in the stream, or as the body of its HTTP error).

    In the stream it must reach the user: swallowing it would make a cut-off answer look complete.
    """

    message: str
    error_type: str | None  # validation, overloaded, generation, ... or None when unknown


class ErrorShapeError(ValueError):
    """An object with `error` that is not one of TGI's error shapes."""


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
        if status is not None and (not isinstance(status, int) or isinstance(status, bool)):
            raise ErrorShapeError(f"error.http_status_code is not an integer: {status!r}")
        error_type = None if status is None else ERROR_TYPE_BY_STATUS.get(status)
        return TgiError(message=message, error_type=error_type)
    raise ErrorShapeError(f"'error' is neither a string nor an object: {error!r}")


def error_in_stream(error: TgiError) -> UpstreamError:
    """An error TGI put in the stream, as the caller should get it."""
    detail = f"{error.error_type}: {error.message}"
    if error.error_type == "validation":
        return _rejected(error.message, detail)
    if error.error_type == "overloaded":
        return _overloaded(detail)
    shown_type = error.error_type if (error.error_type or "").isidentifier() else "unknown"
    return UpstreamError(
        kind="model_error",
        message=f"The model failed while generating the answer ({shown_type} error).",
        detail=detail,
    )


def model_error(*, status: object, original: object, detail: str) -> UpstreamError:
    """A ModelError: the container answered `status` with the body `original` before streaming.

    TGI refuses a request it cannot take before streaming (a body it cannot read, a validation
    failure on older versions) with 422, and a full queue with 429. axum's own 422 (a body TGI
    cannot deserialize) is plain text, and still speaks about the request.
    """
    code = status if isinstance(status, int) and not isinstance(status, bool) else None
    parsed = _parse_original(original)
    reason = None if parsed is None else _one_line(parsed.message)
    error_type = None if parsed is None else parsed.error_type
    if error_type is None and code is not None:
        error_type = ERROR_TYPE_BY_STATUS.get(code)
    full_detail = f"{detail} (original: {original!r})"
    if error_type == "validation":
        if reason is None and isinstance(original, str) and original.strip():
            reason = _one_line(original)
        return _rejected(reason or "it gave no reason", full_detail)
    if error_type == "overloaded":
        return _overloaded(full_detail)
    message = "The model failed before answering"
    if code is not None:
        message += f" (it returned HTTP {code})"
    message += f": {reason}" if reason else "."
    return UpstreamError(kind="model_error", message=message, detail=full_detail)


def _rejected(reason: str, detail: str) -> UpstreamError:
    return UpstreamError(
        kind="validation",
        message=f"The model rejected the request: {_sentence(_one_line(reason))}",
        detail=detail,
    )


def _overloaded(detail: str) -> UpstreamError:
    return UpstreamError(
        kind="overloaded",
        message="The model is overloaded; try again shortly.",
        detail=detail,
    )


def _parse_original(original: object) -> TgiError | None:
    """TGI's error from a ModelError's OriginalMessage, when it is TGI's JSON.

    Anything else may be a server's internals (a stack trace) and is left to the log.
    """
    if not isinstance(original, str):
        return None
    try:
        parsed = json.loads(original)
    except (ValueError, RecursionError):
        return None
    if not isinstance(parsed, dict) or parsed.get("error") is None:
        return None
    try:
        return parse_error(parsed)
    except ErrorShapeError:
        return None


def _sentence(text: str) -> str:
    return text if text.endswith((".", "!", "?", "…")) else text + "."


def _one_line(text: str) -> str:
    squeezed = " ".join(text.split())
    if len(squeezed) <= _SHOWN_REASON_CHARS:
        return squeezed
    return squeezed[:_SHOWN_REASON_CHARS] + "…"
