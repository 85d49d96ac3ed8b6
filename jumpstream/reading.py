"""Reading the relay's answer in each of its three formats, as the bytes arrive.

Why sans-I/O readers: the same parsing serves ``ask``, ``demo`` and ``bench``, whatever the bytes
come through, and is tested by feeding every body whole and cut at every position. Each reader
turns bytes into the same three events: a piece of text, the end, or a failure reported inside
the body (the relay can only report a failure there once the status line is sent).

Plain text has no framing, so a failure is a last line ``[stream error] <sentence> (<type>)``.
The plain-text reader holds back a line that starts like that until it knows whether the body
ends after it; everything else goes out as soon as it arrives. (The relay starts that line on a
new line, adding a line break if the text lacked one; the reader cannot tell that break from the
answer's own, and leaves it in the text.)
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Final, Protocol

__all__ = [
    "ACCEPT",
    "FORMATS",
    "AnswerEvent",
    "AnswerReader",
    "Failed",
    "Finished",
    "NdjsonReader",
    "PlainTextReader",
    "ReaderError",
    "SseReader",
    "TextChunk",
    "read_answer",
    "reader_for",
]

#: The Accept header that asks the relay for each format.
ACCEPT: Final = {
    "text": "text/plain",
    "sse": "text/event-stream",
    "ndjson": "application/x-ndjson",
}
FORMATS: Final = tuple(ACCEPT)
STREAM_ERROR_MARKER: Final = "[stream error]"
_STREAM_ERROR_LINE: Final = re.compile(r"\[stream error\] (?P<message>.*) \((?P<kind>[a-z_]+)\)")


@dataclass(frozen=True, slots=True, kw_only=True)
class TextChunk:
    """Answer text, to show as it comes."""

    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Finished:
    """The answer ended normally; fields are None where the format does not say."""

    finish_reason: str | None = None
    generated_tokens: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Failed:
    """The relay reported, inside the body, that the answer broke off."""

    message: str
    kind: str


AnswerEvent = TextChunk | Finished | Failed


class ReaderError(ValueError):
    """The body is not what its format promises (not the relay, or a broken connection)."""


class AnswerReader(Protocol):
    """Bytes in (in pieces cut anywhere), events out; ``close`` at the end of the body."""

    def feed(self, data: bytes) -> list[AnswerEvent]: ...

    def close(self) -> list[AnswerEvent]: ...


def read_answer(chunks: Iterable[bytes], reader: AnswerReader) -> Iterator[AnswerEvent]:
    """Every event of one answer body, as its chunks arrive, then what `close` flushes."""
    for chunk in chunks:
        yield from reader.feed(chunk)
    yield from reader.close()


def reader_for(output_format: str) -> AnswerReader:
    """A fresh reader for one answer in ``text``, ``sse`` or ``ndjson``."""
    if output_format == "sse":
        return SseReader()
    if output_format == "ndjson":
        return NdjsonReader()
    if output_format == "text":
        return PlainTextReader()
    raise ValueError(f"unknown format {output_format!r}; expected one of {', '.join(FORMATS)}")


class PlainTextReader:
    """``text/plain``: the answer's text itself, and maybe a ``[stream error]`` last line."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._pending = ""
        self._at_line_start = True

    def feed(self, data: bytes) -> list[AnswerEvent]:
        return self._text_events(self._release(self._decoder.decode(data), final=False))

    def close(self) -> list[AnswerEvent]:
        shown = self._release(self._decoder.decode(b"", final=True), final=True)
        events = self._text_events(shown)
        held, self._pending = self._pending, ""
        failure = _STREAM_ERROR_LINE.fullmatch(held.removesuffix("\n"))
        if failure is not None:
            events.append(Failed(message=failure["message"], kind=failure["kind"]))
            return events
        events += self._text_events(held)
        events.append(Finished())
        return events

    def _release(self, text: str, *, final: bool) -> str:
        """Text that can be shown now; a possible error line stays in ``_pending``."""
        buffer = self._pending + text
        shown: list[str] = []
        while buffer:
            if self._at_line_start and _could_be_error_line(buffer):
                newline = buffer.find("\n")
                if newline < 0 or newline == len(buffer) - 1 or final:
                    # Unfinished, or finished but maybe the last line: wait for more (or EOF).
                    break
                # Text follows it, so it was a line of the answer after all.
                shown.append(buffer[: newline + 1])
                buffer = buffer[newline + 1 :]
                continue
            newline = buffer.find("\n")
            if newline < 0:
                shown.append(buffer)
                self._at_line_start = False
                buffer = ""
                break
            shown.append(buffer[: newline + 1])
            buffer = buffer[newline + 1 :]
            self._at_line_start = True
        self._pending = buffer
        return "".join(shown)

    @staticmethod
    def _text_events(text: str) -> list[AnswerEvent]:
        return [TextChunk(text=text)] if text else []


def _could_be_error_line(line_start: str) -> bool:
    """True when text at a line start is, or may still become, a ``[stream error]`` line."""
    if len(line_start) < len(STREAM_ERROR_MARKER):
        return STREAM_ERROR_MARKER.startswith(line_start)
    return line_start.startswith(STREAM_ERROR_MARKER)


class _Lines:
    """Complete lines out of bytes cut anywhere; a line break is never inside a UTF-8 character."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[str]:
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        return [_decode_line(line) for line in lines]

    def close(self) -> list[str]:
        rest, self._buffer = self._buffer, b""
        return [_decode_line(rest)] if rest else []


def _decode_line(line: bytes) -> str:
    try:
        return line.removesuffix(b"\r").decode("utf-8")
    except UnicodeDecodeError as error:
        raise ReaderError(f"a line of the answer is not UTF-8: {error}") from None


class SseReader:
    """``text/event-stream``: ``event: token|done|error`` blocks, each with one JSON data line."""

    def __init__(self) -> None:
        self._lines = _Lines()
        self._event = "message"
        self._data: list[str] = []

    def feed(self, data: bytes) -> list[AnswerEvent]:
        return self._handle(self._lines.feed(data))

    def close(self) -> list[AnswerEvent]:
        events = self._handle(self._lines.close())
        if self._data:
            raise ReaderError("the answer ended inside an event (no blank line after it)")
        return events

    def _handle(self, lines: list[str]) -> list[AnswerEvent]:
        events: list[AnswerEvent] = []
        for line in lines:
            if not line:
                if self._data:
                    event = _event_from(self._event, _parse_json("\n".join(self._data)))
                    if event is not None:
                        events.append(event)
                self._event, self._data = "message", []
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                self._event = value
            elif name == "data":
                self._data.append(value)
        return events


class NdjsonReader:
    """``application/x-ndjson``: one JSON object per line, its ``event`` naming what it is."""

    def __init__(self) -> None:
        self._lines = _Lines()

    def feed(self, data: bytes) -> list[AnswerEvent]:
        return self._handle(self._lines.feed(data))

    def close(self) -> list[AnswerEvent]:
        return self._handle(self._lines.close())

    @staticmethod
    def _handle(lines: list[str]) -> list[AnswerEvent]:
        events: list[AnswerEvent] = []
        for line in lines:
            if not line.strip():
                continue
            document = _parse_json(line)
            event = _event_from(str(document.get("event")), document)
            if event is not None:
                events.append(event)
        return events


def _parse_json(text: str) -> dict[str, Any]:
    try:
        document = json.loads(text)
    except ValueError as error:
        raise ReaderError(f"an event of the answer is not JSON: {error}") from None
    if not isinstance(document, dict):
        raise ReaderError("an event of the answer is not a JSON object")
    return document


def _event_from(name: str, data: dict[str, Any]) -> AnswerEvent | None:
    """The event a token/done/error payload stands for; None for names this client ignores."""
    if name == "token":
        text = data.get("text")
        if not isinstance(text, str):
            raise ReaderError("a token event has no text")
        return TextChunk(text=text)
    if name == "done":
        reason = data.get("finish_reason")
        tokens = data.get("generated_tokens")
        return Finished(
            finish_reason=reason if isinstance(reason, str) else None,
            generated_tokens=tokens if _is_int(tokens) else None,
        )
    if name == "error":
        return Failed(message=str(data.get("error", "")), kind=str(data.get("type", "unknown")))
    return None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
