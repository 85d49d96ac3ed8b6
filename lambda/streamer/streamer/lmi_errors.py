"""LMI's error shapes (AWS's Large Model Inference container), parsed and mapped to the caller's.

LMI (DJL Serving) reports a failure in three ways:
- inside a token-line stream, after HTTP 200 went out: a last line whose
  `details.finish_reason` is `"error"` (its token has id -1 and no text), possibly with
  `"error": "msg"` or `"error": {"error_code": 400, "error_msg": "..."}`;
- inside a chat stream: a chunk whose `finish_reason` is `"error"`, or (the async mode, which
  passes vLLM's output through) vLLM's `{"error": {"message", "type", "param", "code"}}`;
- before the stream, as DJL Serving's HTTP error, which SageMaker wraps in a ModelError:
  `{"error": "...", "code": 424}`, `{"code": 424, "message": "invoke handler failure",
  "error": "..."}`, or DJL's own `{"code": 400, "type": "...", "message": "..."}`.

`code` is the HTTP status LMI gave the failure: 424 ("invoke handler failure") for most, which
says nothing about whose fault it was. The caller's answer is the same for every engine
(model_errors.py): 400/422 a refused request (the caller's 422 with LMI's reason), 429/503 an
overloaded model to retry, anything else a 502 whose reason stays in the log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from . import vllm_errors
from .errors import UpstreamError
from .model_errors import (
    BUSY_STATUSES,
    REFUSED_STATUSES,
    ErrorShapeError,
    failed_before_answering,
    failed_while_generating,
    json_object,
    overloaded,
    rejected,
    status_code,
)

__all__ = [
    "LmiError",
    "error_in_stream",
    "failed_line",
    "is_error",
    "model_error",
    "parse_error",
    "stopped",
]

# What LMI's error line says when it carries no words of its own.
_NO_REASON: Final = "LMI ended the answer with finish_reason 'error'"


@dataclass(frozen=True, slots=True, kw_only=True)
class LmiError:
    """An error LMI reported, in the stream or as the body of its HTTP error."""

    message: str
    #: The HTTP status LMI gave the failure, None when it gave none.
    status: int | None


def is_error(obj: dict[str, Any]) -> bool:
    """The object is one of LMI's errors rather than a chunk (a chat stream's test)."""
    return vllm_errors.is_error(obj)


def parse_error(obj: dict[str, Any]) -> LmiError:
    """LMI's error object (one with a non-null `error`, or vLLM's `"object": "error"`)."""
    error = obj.get("error")
    if isinstance(error, str):
        return LmiError(message=error, status=status_code(obj.get("code")))
    if isinstance(error, dict) and "error_msg" in error:
        message = error["error_msg"]
        if not isinstance(message, str):
            raise ErrorShapeError(f"error.error_msg is not a string: {message!r}")
        return LmiError(message=message, status=status_code(error.get("error_code")))
    # The async mode passes vLLM's own error objects through.
    vllm = vllm_errors.parse_error(obj)
    return LmiError(message=vllm.message, status=vllm.status)


def failed_line(obj: dict[str, Any]) -> LmiError:
    """The token line that ended the answer with `details.finish_reason` `"error"`."""
    if obj.get("error") is not None:
        return parse_error(obj)
    return LmiError(message=_NO_REASON, status=None)


def stopped(reason: str) -> LmiError:
    """A chat chunk that ended the answer with `finish_reason` `reason` (`error`, `abort`)."""
    return LmiError(message=f"LMI ended the answer with finish_reason {reason!r}", status=None)


def error_in_stream(error: LmiError) -> UpstreamError:
    """An error LMI put in the stream, as the caller should get it."""
    detail = f"LMI ({error.status}): {error.message}"
    if error.status in REFUSED_STATUSES:
        return rejected(error.message, detail)
    if error.status in BUSY_STATUSES:
        return overloaded(detail)
    label = "LMI error" if error.status is None else f"LMI error {error.status}"
    return failed_while_generating(label, detail)


def model_error(*, status: object, original: object, detail: str) -> UpstreamError:
    """A ModelError: the container answered `status` with the body `original` before streaming.

    LMI's own `code` in the body wins over the status SageMaker passes on, which is the same
    number whenever both are there.
    """
    code = status_code(status)
    full_detail = f"{detail} (original: {original!r})"
    parsed = _parse_original(original)
    effective = code if parsed is None or parsed.status is None else parsed.status
    if effective in REFUSED_STATUSES:
        reason = None if parsed is None else parsed.message
        if reason is None and isinstance(original, str) and original.strip():
            reason = original  # a plain-text refusal still speaks about the request
        return rejected(reason or "it gave no reason", full_detail)
    if effective in BUSY_STATUSES:
        return overloaded(full_detail)
    return failed_before_answering(code, None if parsed is None else parsed.message, full_detail)


def _parse_original(original: object) -> LmiError | None:
    """LMI's error from a ModelError's OriginalMessage, when it is LMI's JSON.

    Anything else may be a server's internals (a stack trace) and is left to the log.
    """
    parsed = json_object(original)
    if parsed is None:
        return None
    try:
        if is_error(parsed):
            return parse_error(parsed)
    except ErrorShapeError:
        return None
    message = parsed.get("message")
    if isinstance(message, str):
        # DJL Serving's own refusal (a body it cannot read, a model it does not have).
        return LmiError(message=message, status=status_code(parsed.get("code")))
    return None
