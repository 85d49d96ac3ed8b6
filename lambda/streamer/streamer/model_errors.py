"""What a caller gets for an error a model server reported, whatever the engine.

Each engine has its own error shapes, read in its own module (tgi_errors.py, lmi_errors.py,
vllm_errors.py), in the stream and before it (a SageMaker ModelError carrying the container's
status and body). Once read, every one means one of three things to the caller, the same for
every engine: the request was refused (a 422 with the engine's reason: it says what to fix), the
model is overloaded (a 503 to retry), or it failed (a 502 whose reason stays in the log when it
may hold a server's internals). This module words those answers once.
"""

from __future__ import annotations

import json
from typing import Any, Final, Protocol

from .errors import UpstreamError

__all__ = [
    "BUSY_STATUSES",
    "REFUSED_STATUSES",
    "ErrorShapeError",
    "ModelErrorMapping",
    "failed_before_answering",
    "failed_while_generating",
    "json_object",
    "one_line",
    "overloaded",
    "rejected",
    "status_code",
]

#: The HTTP statuses by which the OpenAI-speaking servers (vLLM, and LMI around it) say "your
#: request" and "not now".
REFUSED_STATUSES: Final = frozenset({400, 422})
BUSY_STATUSES: Final = frozenset({429, 503})
# A reason quoted from the model is cut to this many characters.
_SHOWN_REASON_CHARS: Final = 500


class ErrorShapeError(ValueError):
    """An object that says it is an error (it has `error`) but is not one of the engine's shapes."""


class ModelErrorMapping(Protocol):
    """An engine's reading of a ModelError: the container answered `status` with `original` before
    streaming (`detail` is SageMaker's own words, for the log)."""

    def __call__(self, *, status: object, original: object, detail: str) -> UpstreamError: ...


def rejected(reason: str, detail: str) -> UpstreamError:
    """The engine refused the request: the caller's 422, with the engine's reason."""
    return UpstreamError(
        kind="validation",
        message=f"The model rejected the request: {_sentence(one_line(reason))}",
        detail=detail,
    )


def overloaded(detail: str) -> UpstreamError:
    """The engine has no room for the request now: a 503 to retry."""
    return UpstreamError(
        kind="overloaded",
        message="The model is overloaded; try again shortly.",
        detail=detail,
    )


def failed_while_generating(label: str, detail: str) -> UpstreamError:
    """The engine failed after the stream began; `label` names the error without its words."""
    return UpstreamError(
        kind="model_error",
        message=f"The model failed while generating the answer ({label}).",
        detail=detail,
    )


def failed_before_answering(code: int | None, reason: str | None, detail: str) -> UpstreamError:
    """The engine failed before streaming; `reason` is shown only when the engine's own JSON
    gave it (anything else may be a server's internals, such as a stack trace)."""
    message = "The model failed before answering"
    if code is not None:
        message += f" (it returned HTTP {code})"
    message += f": {_sentence(one_line(reason))}" if reason else "."
    return UpstreamError(kind="model_error", message=message, detail=detail)


def json_object(original: object) -> dict[str, Any] | None:
    """A ModelError's OriginalMessage as a JSON object, when it is one."""
    if not isinstance(original, str):
        return None
    try:
        parsed = json.loads(original)
    except (ValueError, RecursionError):
        return None
    return parsed if isinstance(parsed, dict) else None


def status_code(status: object) -> int | None:
    """A status as an integer, or None when it is not one (JSON's true is not a status)."""
    return status if isinstance(status, int) and not isinstance(status, bool) else None


def _sentence(text: str) -> str:
    return text if text.endswith((".", "!", "?", "…")) else text + "."


def one_line(text: str) -> str:
    """A reason on one line, cut to a length a caller reads."""
    squeezed = " ".join(text.split())
    if len(squeezed) <= _SHOWN_REASON_CHARS:
        return squeezed
    return squeezed[:_SHOWN_REASON_CHARS] + "…"
