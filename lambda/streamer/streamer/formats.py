"""Writing pieces of an answer in the format the caller chose.

Each writer turns three things into bytes: a piece of text, the end of the answer, and a failure
after the status line was sent. No HTTP trailer reaches a function URL's caller, so a late failure
must be written in the body, in a way each format's reader can tell from text: an `error` event
for SSE and NDJSON, a line starting `[stream error]` for plain text.
"""

from __future__ import annotations

from typing import Protocol

from .contract import STREAM_ERROR_PREFIX
from .errors import error_payload, render_json
from .negotiation import OutputFormat

__all__ = [
    "NdjsonWriter",
    "PlainTextWriter",
    "SseWriter",
    "StreamWriter",
    "writer_for",
]


class StreamWriter(Protocol):
    """Renders one response's pieces; one instance per response (plain text keeps state)."""

    content_type: str

    def text(self, text: str) -> bytes: ...

    def done(
        self,
        *,
        finish_reason: str | None,
        generated_tokens: int | None,
        input_length: int | None = None,
    ) -> bytes: ...

    def error(self, *, message: str, kind: str) -> bytes: ...


def writer_for(output: OutputFormat) -> StreamWriter:
    """A fresh writer for one response."""
    if output is OutputFormat.SSE:
        return SseWriter()
    if output is OutputFormat.NDJSON:
        return NdjsonWriter()
    return PlainTextWriter()


class PlainTextWriter:
    """Only the answer's text, so `curl -N` prints exactly what the model wrote."""

    content_type = "text/plain; charset=utf-8"

    def __init__(self) -> None:
        self._at_line_start = True

    def text(self, text: str) -> bytes:
        if text:
            self._at_line_start = text.endswith("\n")
        return text.encode("utf-8", "replace")

    def done(
        self,
        *,
        finish_reason: str | None,
        generated_tokens: int | None,
        input_length: int | None = None,
    ) -> bytes:
        return b""

    def error(self, *, message: str, kind: str) -> bytes:
        lead = "" if self._at_line_start else "\n"
        self._at_line_start = True
        return f"{lead}{STREAM_ERROR_PREFIX} {message} ({kind})\n".encode("utf-8", "replace")


class SseWriter:
    """Server-sent events: `event: token|done|error` and one JSON `data:` line each.

    JSON escapes CR and LF inside strings, so a data line can never be split by the text in it.
    """

    content_type = "text/event-stream; charset=utf-8"

    def text(self, text: str) -> bytes:
        return _sse("token", {"text": text})

    def done(
        self,
        *,
        finish_reason: str | None,
        generated_tokens: int | None,
        input_length: int | None = None,
    ) -> bytes:
        return _sse("done", {"finish_reason": finish_reason, "generated_tokens": generated_tokens})

    def error(self, *, message: str, kind: str) -> bytes:
        return _sse("error", error_payload(message, kind))


class NdjsonWriter:
    """One JSON object per line, `event` naming what it is; the other fields match SSE's data."""

    content_type = "application/x-ndjson"

    def text(self, text: str) -> bytes:
        return _line({"event": "token", "text": text})

    def done(
        self,
        *,
        finish_reason: str | None,
        generated_tokens: int | None,
        input_length: int | None = None,
    ) -> bytes:
        return _line(
            {"event": "done", "finish_reason": finish_reason, "generated_tokens": generated_tokens}
        )

    def error(self, *, message: str, kind: str) -> bytes:
        return _line({"event": "error", **error_payload(message, kind)})


def _sse(event: str, data: dict[str, object]) -> bytes:
    return b"event: " + event.encode("ascii") + b"\ndata: " + render_json(data) + b"\n\n"


def _line(data: dict[str, object]) -> bytes:
    return render_json(data) + b"\n"
