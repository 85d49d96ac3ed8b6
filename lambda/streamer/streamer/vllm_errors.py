"""vLLM's error shapes (AWS's vLLM container), parsed and mapped to the caller's error.

vLLM reports a failure the OpenAI way, in two places:
- inside the stream, after HTTP 200 went out: `data: {"error": {"message", "type", "param",
  "code"}}` (older vLLM: `{"object": "error", "message", ...}` at the top level, or that object
  under `error`), then `data: [DONE]`; a chunk whose `finish_reason` is `abort` means the engine
  dropped the request;
- before the stream, as the container's HTTP 400/422/5xx with the same JSON, which SageMaker
  wraps in a ModelError (`OriginalStatusCode`, `OriginalMessage`); FastAPI's own refusals say
  `{"detail": ...}`.

`code` is the HTTP status vLLM gave the error (400 for a request it refuses, such as a prompt
longer than the context). The caller's answer is the same for every engine (model_errors.py):
a refused request is the caller's 422 with vLLM's reason, 429/503 an overloaded model to retry,
anything else a 502 whose reason stays in the log.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Final

from .errors import UpstreamError
from .model_errors import (
    BUSY_STATUSES,
    REFUSED_STATUSES,
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
    "VllmError",
    "error_in_stream",
    "is_error",
    "model_error",
    "parse_error",
    "stopped",
]

# vLLM's error types for a refused request, where an error carries no status.
_REFUSED_TYPES: Final = frozenset({"BadRequestError", "invalid_request_error"})


@dataclass(frozen=True, slots=True, kw_only=True)
class VllmError:
    """An error vLLM reported, in the stream or as the body of its HTTP error."""

    message: str
    #: vLLM's `type` (BadRequestError, InternalServerError, ...), None when it gave none.
    error_type: str | None
    #: vLLM's `code`: the HTTP status it gave the error, None when it gave none.
    status: int | None


def is_error(obj: dict[str, Any]) -> bool:
    """The object is one of vLLM's errors rather than a chunk."""
    return obj.get("error") is not None or obj.get("object") == "error"


def parse_error(obj: dict[str, Any]) -> VllmError:
    """vLLM's error object (one `is_error` accepts) as a VllmError."""
    error = obj.get("error")
    if error is None:
        return _error_info(obj, "")
    if isinstance(error, dict):
        return _error_info(error, "error.")
    if isinstance(error, str):
        return VllmError(message=error, error_type=None, status=None)
    raise ErrorShapeError(f"'error' is neither a string nor an object: {error!r}")


def stopped(reason: str) -> VllmError:
    """A chunk that ended the answer with `finish_reason` `reason` (`abort`, `error`)."""
    return VllmError(
        message=f"vLLM ended the answer with finish_reason {reason!r}",
        error_type=None,
        status=None,
    )


def error_in_stream(error: VllmError) -> UpstreamError:
    """An error vLLM put in the stream, as the caller should get it."""
    detail = f"{error.error_type} ({error.status}): {error.message}"
    if _refused(error):
        return rejected(error.message, detail)
    if error.status in BUSY_STATUSES:
        return overloaded(detail)
    label = error.error_type if (error.error_type or "").isidentifier() else "error"
    return failed_while_generating(f"vLLM {label}", detail)


def model_error(*, status: object, original: object, detail: str) -> UpstreamError:
    """A ModelError: the container answered `status` with the body `original` before streaming."""
    code = status_code(status)
    full_detail = f"{detail} (original: {original!r})"
    parsed = _parse_original(original)
    if parsed is None:
        if code in REFUSED_STATUSES:
            # A plain-text refusal still speaks about the request.
            reason = original if isinstance(original, str) and original.strip() else None
            return rejected(reason or "it gave no reason", full_detail)
        if code in BUSY_STATUSES:
            return overloaded(full_detail)
        return failed_before_answering(code, None, full_detail)
    if parsed.status is None:
        parsed = replace(parsed, status=code)
    if _refused(parsed):
        return rejected(parsed.message, full_detail)
    if parsed.status in BUSY_STATUSES:
        return overloaded(full_detail)
    return failed_before_answering(code, parsed.message, full_detail)


def _refused(error: VllmError) -> bool:
    if error.status is not None:
        return error.status in REFUSED_STATUSES
    return error.error_type in _REFUSED_TYPES


def _error_info(info: dict[str, Any], where: str) -> VllmError:
    message = info.get("message")
    if not isinstance(message, str):
        raise ErrorShapeError(f"{where}message is not a string: {message!r}")
    error_type = info.get("type")
    if error_type is not None and not isinstance(error_type, str):
        raise ErrorShapeError(f"{where}type is not a string: {error_type!r}")
    # OpenAI's own `code` is a word (or null); vLLM's is the status.
    return VllmError(message=message, error_type=error_type, status=status_code(info.get("code")))


def _parse_original(original: object) -> VllmError | None:
    """vLLM's error from a ModelError's OriginalMessage, when it is vLLM's (or FastAPI's) JSON.

    Anything else may be a server's internals (a stack trace) and is left to the log.
    """
    parsed = json_object(original)
    if parsed is None:
        return None
    if is_error(parsed):
        try:
            return parse_error(parsed)
        except ErrorShapeError:
            return None
    detail = parsed.get("detail")
    if isinstance(detail, str):
        return VllmError(message=detail, error_type=None, status=None)
    if isinstance(detail, list):
        # FastAPI's refusal of a body: one entry per field, each with its `msg` and `loc`.
        problems = [
            f"{'.'.join(str(part) for part in item.get('loc', ()))}: {item['msg']}"
            for item in detail
            if isinstance(item, dict) and isinstance(item.get("msg"), str)
        ]
        if problems:
            return VllmError(message=one_line("; ".join(problems)), error_type=None, status=None)
    return None
