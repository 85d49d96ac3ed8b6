"""The one shape every failure takes on its way to the caller.

A caller of a function URL sees only status, headers and body, so every refusal, whether the relay's
own or one relayed from SageMaker or the model, becomes the same JSON object: a sentence a person
can act on and a short machine-readable `type`. The types, and the status each one answers with,
are the deploy contract's closed list (contract.ERROR_KINDS), which clients read too.
"""

from __future__ import annotations

import json

from starlette.responses import Response

from .contract import ERROR_KINDS, ErrorKind

__all__ = [
    "ApiError",
    "UpstreamError",
    "error_payload",
    "error_response",
    "internal_error",
    "render_json",
]


class ApiError(Exception):
    """A failure of one kind (contract.ERROR_KINDS): the kind gives the HTTP status, and the
    Retry-After when trying again is worth it; the message is the sentence the caller reads.

    A plain class, not a frozen dataclass: the machinery that re-raises exceptions assigns
    `__traceback__`, which a frozen dataclass would refuse.
    """

    def __init__(
        self,
        kind: str,
        message: str,
        *,
        detail: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        """`detail` is for the log only; `retry_after` replaces the kind's own Retry-After
        when this answer knows better (a rate limit's window ends sooner)."""
        facts = ERROR_KINDS.get(kind)
        if facts is None:
            raise ValueError(f"unknown error type {kind!r}")
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.detail = detail
        self.facts: ErrorKind = facts
        self._retry_after = retry_after

    @property
    def status(self) -> int:
        return self.facts.status

    @property
    def retry_after(self) -> int | None:
        return self._retry_after if self._retry_after is not None else self.facts.retry_after

    def __repr__(self) -> str:
        return f"{type(self).__name__}(kind={self.kind!r}, message={self.message!r})"

    def headers(self) -> dict[str, str]:
        """Retry-After tells a client of a 503 or 429 when trying again is worth it; a 401 says
        which credentials it wants (WWW-Authenticate)."""
        headers: dict[str, str] = {}
        retry_after = self.retry_after
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        if self.facts.challenge is not None:
            headers["WWW-Authenticate"] = self.facts.challenge
        return headers


class UpstreamError(ApiError):
    """SageMaker or the model failed: what the caller gets, plus what the log gets.

    `message` is written for the caller and never holds internals (account ids, ARNs, stack
    traces); `detail` is the upstream's own words, for the log only.
    """

    def __init__(self, kind: str, message: str, *, detail: str | None = None) -> None:
        super().__init__(kind, message, detail=detail)

    @classmethod
    def bad_gateway(cls, message: str, detail: str | None) -> UpstreamError:
        """`upstream_error`: SageMaker or the model failed in a way the caller cannot fix."""
        return cls("upstream_error", message, detail=detail)


def internal_error() -> ApiError:
    """What a caller is told when the relay itself failed before answering (it was logged)."""
    return ApiError(
        kind="internal_error", message="The relay failed unexpectedly; the error was logged."
    )


def error_payload(message: str, kind: str) -> dict[str, str]:
    """The fields every error carries, in a JSON body or inside a stream."""
    return {"error": message, "type": kind}


# Characters Python's str.splitlines() (and some other line readers) treat as line breaks but JSON
# leaves unescaped: escaping them keeps one JSON document on one line for every reader.
_LINE_BREAKS_JSON_KEEPS = str.maketrans(
    {"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


# Made once: json.dumps with any non-default argument builds a new encoder per call (per token).
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False)


def render_json(value: object) -> bytes:
    """JSON as the relay writes it: readable non-ASCII text, never NaN, one line, encodable.

    `errors="replace"` guards the one case `json.dumps` lets through that UTF-8 cannot carry, a
    lone surrogate from a `\\ud800` escape: better a replacement character than a crash mid-stream.
    """
    text = _ENCODER.encode(value)
    return text.translate(_LINE_BREAKS_JSON_KEEPS).encode("utf-8", "replace")


def error_response(error: ApiError) -> Response:
    """The relay's own JSON response for a refusal (OpenAI's error object is openai/errors.py's).

    A Starlette `Response` is itself an ASGI application, so the exception handlers return it and
    the streaming response and the middleware call it with their own `send`.
    """
    return Response(
        content=render_json(error_payload(error.message, error.kind)),
        status_code=error.status,
        media_type="application/json",
        headers=error.headers(),
    )
