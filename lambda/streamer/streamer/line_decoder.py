"""The base of the decoders whose every line holds one whole JSON object (LMI, OpenAI chunks).

LMI writes JSON lines (`application/jsonlines`), or SSE with its SSE formatter; vLLM writes SSE;
LMI's async mode passes vLLM's chunks on as JSON lines. So ``LineDecoder`` takes either framing
line by line: ``data: X``, ``data:X`` or a bare JSON line, with comments, blank, ``event:``,
``id:`` and ``retry:`` lines ignored and ``[DONE]`` ending the stream (nothing after it is read).
An SSE event of several ``data:`` lines, which none of these servers writes, is not taken.
Lines come from stream_lines.LineSplitter, so memory is bounded by the longest line.
"""

from __future__ import annotations

from typing import Any, Final

from .stream_lines import (
    BOM,
    DATA_FIELD,
    DEFAULT_MAX_LINE_BYTES,
    DONE_MARKER,
    LineSplitter,
    StreamProtocolError,
    careful_loads,
    fast_loads,
    preview,
)

__all__ = ["LineDecoder"]

# SSE fields that carry nothing for a decoder of whole-line payloads.
_IGNORED_FIELDS: Final = frozenset({"event", "id", "retry", "data"})


class LineDecoder:
    """The base of the decoders whose every line holds one whole JSON object.

    A subclass maps each object to events (`_handle_object`), says what `[DONE]` and the end of
    input mean (`_handle_done`, `_handle_close`), and sets `finished` through `_finish`. Memory
    is bounded by ``max_line_bytes``: a line is decoded as soon as it is complete, and nothing
    else is held.
    """

    __slots__ = ("_closed", "_deferred", "_done", "_failed", "_finished", "_first_line", "_lines")

    #: What the stream is, for the errors that say it is not ("an LMI token stream").
    stream_name: str = "a stream of JSON lines"

    def __init__(self, *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        if max_line_bytes < 1:
            raise ValueError(f"max_line_bytes must be positive, got {max_line_bytes}")
        self._lines = LineSplitter(max_line_bytes, stream_name=self.stream_name)
        self._first_line = True
        self._finished = False
        self._done = False  # `[DONE]` came: nothing after it is read
        self._closed = False
        self._failed = False
        self._deferred: StreamProtocolError | None = None

    @property
    def finished(self) -> bool:
        """True once the answer's end or an error was decoded: a stream that ends while this is
        still False was cut off."""
        return self._finished

    @property
    def buffered_bytes(self) -> int:
        """Bytes held for the unfinished line: what memory is bounded by."""
        return self._lines.buffered_bytes

    def feed(self, data: bytes) -> list[Any]:
        """Decode the bytes of one ``PayloadPart``; ``[]`` means more data is needed."""
        if self._deferred is not None:
            exc, self._deferred = self._deferred, None
            raise exc
        if self._closed:
            raise RuntimeError("feed() called after close()")
        if self._failed:
            raise RuntimeError("the stream was already rejected with StreamProtocolError")
        events: list[Any] = []
        try:
            for line in self._lines.feed(data):
                self._handle_line(line, events)
        except StreamProtocolError as exc:
            self._failed = True
            if not events:
                raise
            self._deferred = exc
        return events

    def close(self) -> list[Any]:
        """End of input: decode a last line that had no line end, then what the end means.
        Calling ``close`` again is harmless and returns ``[]``."""
        was_closed = self._closed
        self._closed = True
        if self._deferred is not None:
            exc, self._deferred = self._deferred, None
            raise exc
        if was_closed or self._failed:
            return []
        events: list[Any] = []
        try:
            line = self._lines.flush()
            if line is not None:
                self._handle_line(line, events)
        except StreamProtocolError:
            self._failed = True
            raise
        if not self._done:
            self._handle_close(events)
        return events

    def _handle_line(self, line: bytes, events: list[Any]) -> None:
        if self._done:
            return  # the server said the stream is over: nothing after it is read
        payload = self._payload(line)
        if payload is None:
            return
        if payload == DONE_MARKER:
            self._done = True
            self._handle_done(events)
            return
        try:
            obj = fast_loads(payload)
        except (ValueError, RecursionError):
            obj = careful_loads(payload)
        if type(obj) is not dict:
            raise StreamProtocolError(f"a line is not a JSON object: {preview(payload)}")
        self._handle_object(obj, events)

    def _payload(self, line: bytes) -> bytes | None:
        """The JSON a line carries, whichever framing it has; None for a line that carries none
        (blank, a comment, an SSE field other than data)."""
        if self._first_line:
            self._first_line = False
            if line.startswith(BOM):
                line = line[len(BOM) :]  # one byte order mark at the start, as SSE allows
        if line.startswith(DATA_FIELD):
            value = line[6:] if line[5:6] == b" " else line[5:]
            return value or None
        if line[:1] == b"{":
            return line  # the usual JSON line: nothing else starts with a brace
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise StreamProtocolError(
                f"a line is not valid UTF-8 ({exc.reason} at byte {exc.start})"
            ) from exc
        if not text.strip() or text.startswith(":"):
            return None  # a blank line between events, or a keep-alive comment
        field, colon, _ = text.partition(":")
        if field in _IGNORED_FIELDS and (colon or field == text):
            return None
        return line

    def _finish(self) -> None:
        self._finished = True

    def _handle_object(self, obj: dict[str, Any], events: list[Any]) -> None:
        raise NotImplementedError

    def _handle_done(self, events: list[Any]) -> None:
        """`[DONE]`: the server says the stream is over."""

    def _handle_close(self, events: list[Any]) -> None:
        """The input ended without `[DONE]` (JSON lines have no end marker)."""
