"""TGI's server-sent-event spelling, in the variants real TGI versions put on the wire.

Why variants: a relay must survive every spelling it may meet (``data:`` with or without a
space, ``\\r\\n`` line endings, ``:`` keep-alive comments), so the emulator can produce each.
"""

from __future__ import annotations

import json
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
