"""TGI's token stream as it goes on the wire: its events' JSON shapes and their SSE spelling.

The one encoder of TGI's stream in the project: the emulator streams with it, and tests that
script an upstream build their bytes with it, so both speak exactly the same dialect. vLLM's
OpenAI chunks go out in the same SSE spelling (``data_event``, ``keepalive``, ``done``).

Why variants: a relay must survive every spelling it may meet (``data:`` with or without a
space, ``\\r\\n`` line endings, ``:`` keep-alive comments), so the emulator can produce each.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class SseStyle:
    """How events are spelled: ``space`` after ``data:`` (TGI >= 2.1) and line endings."""

    space: bool = True
    crlf: bool = False

    @property
    def newline(self) -> bytes:
        return b"\r\n" if self.crlf else b"\n"


def stream_response(
    token: Mapping[str, Any],
    *,
    index: int | None = None,
    generated_text: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """TGI's ``StreamResponse`` for one token (``{"id", "text", "logprob", "special"}``).

    Only the last event of a generation carries ``generated_text``, and ``details`` when the
    request asked for them; ``index`` None leaves the member out, for readers that must not
    depend on it.
    """
    response: dict[str, Any] = {} if index is None else {"index": index}
    response.update(
        token=dict(token),
        generated_text=generated_text,
        details=None if details is None else dict(details),
    )
    return response


def error_response(message: str, error_type: str | None) -> dict[str, str]:
    """TGI's ``ErrorResponse``, in the stream or as an HTTP error's body; ``error_type`` None
    leaves the member out, for readers that must cope without it."""
    response = {"error": message}
    if error_type is not None:
        response["error_type"] = error_type
    return response


def dump_json(value: Any) -> str:
    """Compact JSON with raw UTF-8, as serde_json writes it (no ``\\u`` escapes for Japanese)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def data_event(value: Any, style: SseStyle = SseStyle()) -> bytes:
    """One ``data:`` line holding ``value`` as JSON, followed by the blank line that ends it."""
    prefix = b"data: " if style.space else b"data:"
    return prefix + dump_json(value).encode("utf-8") + style.newline + style.newline


def keepalive(style: SseStyle = SseStyle()) -> bytes:
    """TGI's keep-alive: an empty SSE comment line, then the blank line."""
    return b":" + style.newline + style.newline


def done(style: SseStyle = SseStyle()) -> bytes:
    """OpenAI's end of a stream, ``data: [DONE]``, as vLLM ends every stream (TGI never does)."""
    prefix = b"data: " if style.space else b"data:"
    return prefix + b"[DONE]" + style.newline + style.newline
