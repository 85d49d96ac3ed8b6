"""Sans-I/O decoder for TGI's token stream as it arrives in SageMaker ``PayloadPart`` bytes.

Theory of operation
-------------------
SageMaker cuts TGI's server-sent-events stream into ``PayloadPart``s at arbitrary byte
positions: a part may hold several events, a fraction of one, or half of a multi-byte UTF-8
character. So the work happens in three layers, each fed only complete units by the one before:

1. ``LineSplitter`` (stream_lines.py, shared by every engine's decoder) finds line ends (``\\n``,
   ``\\r\\n`` or a lone ``\\r``, as SSE allows) in the *new* bytes only and keeps just the
   unfinished line, so memory is bounded by the longest line and never by the length of the
   answer, and no byte is scanned twice.
2. ``StreamDecoder._handle_line`` decodes one complete line as UTF-8 (never a part, which may end
   mid-character) and applies the WHATWG SSE field rules: comments (TGI's ``:`` keep-alive) and
   fields other than ``data`` are ignored, ``data`` values accumulate until an empty line.
3. ``_payload_events`` maps one dispatched ``data`` payload (TGI's JSON) to events.

Like h11, the decoder never touches a socket: the relay feeds it bytes and gets events back, and
an empty list means "need more data". A protocol error stops decoding for good, but the events
decoded before it are never lost: if ``feed`` already has events to return, it returns them and
the error is raised by the next ``feed``/``close`` call, so what a caller sees before the error
does not depend on where the parts were cut.
"""

from __future__ import annotations

from typing import Any, Final, TypeAlias

from .stream_lines import (
    BOM,
    DATA_FIELD,
    DEFAULT_MAX_LINE_BYTES,
    DONE_MARKER,
    GenerationEnd,
    LineSplitter,
    StreamProtocolError,
    Token,
    careful_loads,
    fast_loads,
    new_token,
    optional_int,
    optional_str,
    preview,
)
from .tgi_errors import ErrorShapeError, TgiError, parse_error

__all__ = [
    "Event",
    "GenerationEnd",
    "StreamDecoder",
    "StreamProtocolError",
    "TgiError",
    "Token",
]

Event: TypeAlias = Token | GenerationEnd | TgiError

_STREAM_NAME: Final = "a TGI token stream"


class StreamDecoder:
    """Turn the bytes of SageMaker ``PayloadPart``s carrying TGI's SSE stream into events.

    ``feed`` the bytes of each part as they arrive and ``close`` at the end of the stream; both
    return the events completed so far (possibly none). ``max_line_bytes`` bounds memory: it
    caps a single line and the data of one pending event (TGI sends one ``data`` line per event,
    so the two coincide).
    """

    __slots__ = (
        "_closed",
        "_data",
        "_data_bytes",
        "_deferred",
        "_failed",
        "_finished",
        "_first_line",
        "_lines",
        "_max_line_bytes",
    )

    def __init__(self, *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        if max_line_bytes < 1:
            raise ValueError(f"max_line_bytes must be positive, got {max_line_bytes}")
        self._max_line_bytes = max_line_bytes
        self._lines = LineSplitter(max_line_bytes, stream_name=_STREAM_NAME)
        self._data: list[bytes] = []  # the pending event's data values
        self._data_bytes = 0  # bytes of the lines that carried them
        self._first_line = True
        self._finished = False
        self._closed = False
        self._failed = False
        self._deferred: StreamProtocolError | None = None

    @property
    def finished(self) -> bool:
        """True once a ``GenerationEnd`` or ``TgiError`` was decoded: the answer ended or failed.

        A stream that ends while this is still False was cut off.
        """
        return self._finished

    @property
    def buffered_bytes(self) -> int:
        """Bytes held for the unfinished line and the pending event: what memory is bounded by."""
        return self._lines.buffered_bytes + self._data_bytes

    def feed(self, data: bytes) -> list[Event]:
        """Decode the bytes of one ``PayloadPart``; ``[]`` means more data is needed."""
        if self._deferred is not None or self._closed or self._failed:
            self._raise_if_unusable()
        events: list[Event] = []
        try:
            split = None if self._first_line else self._lines.split(data)
            if split is None:
                for line in self._lines.feed(data):
                    self._handle_line(line, events)
            else:
                # The hot path, inlined: TGI's one `data:` line per event, then a blank line.
                lines, tail = split
                data_values = self._data
                for line in lines:
                    if line.startswith(b"data:"):
                        self._data_bytes += len(line)
                        if self._data_bytes > self._max_line_bytes:
                            self._add_data(0, b"")  # raises, with the message
                        data_values.append(line[6:] if line[5:6] == b" " else line[5:])
                    elif not line and data_values:
                        self._dispatch(events)
                    else:
                        self._handle_line(line, events)
                self._lines.keep(tail)
        except StreamProtocolError as exc:
            self._failed = True
            if not events:
                raise
            self._deferred = exc
        return events

    def close(self) -> list[Event]:
        """End of input: decode a last line that had no line end and dispatch a pending event.

        The SSE spec drops an event that the stream ends in the middle of, but TGI streams that
        lose their final newline or blank line must still yield their final event. Calling
        ``close`` again is harmless and returns ``[]``.
        """
        was_closed = self._closed
        self._closed = True
        self._raise_deferred()
        if was_closed or self._failed:
            return []
        events: list[Event] = []
        try:
            line = self._lines.flush()
            if line is not None:
                self._handle_line(line, events)
            self._dispatch(events)
        except StreamProtocolError:
            # A last line only adds data and the dispatch yields all its events or none, so no
            # event is ever lost here.
            self._failed = True
            raise
        return events

    def _raise_if_unusable(self) -> None:
        self._raise_deferred()
        if self._closed:
            raise RuntimeError("feed() called after close()")
        if self._failed:
            raise RuntimeError("the stream was already rejected with StreamProtocolError")

    def _raise_deferred(self) -> None:
        """Raise, once, the error that ``feed`` held back so as to return earlier events first."""
        exc = self._deferred
        if exc is not None:
            self._deferred = None
            raise exc

    def _handle_line(self, line: bytes, events: list[Event]) -> None:
        """Apply the WHATWG SSE rules to one complete line.

        The hot path: a `data:` line's value is kept as bytes and validated as UTF-8 when its
        event is parsed (the JSON parser reads bytes); any other line is decoded here.
        """
        if line.startswith(DATA_FIELD) and not self._first_line:
            value = line[6:] if line[5:6] == b" " else line[5:]
            self._add_data(len(line), value)
            return
        if not line:
            self._dispatch(events)
            return
        if self._first_line:
            # SSE ignores one byte order mark at the start of the stream.
            self._first_line = False
            if line.startswith(BOM):
                line = line[len(BOM) :]
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise StreamProtocolError(
                f"a line is not valid UTF-8 ({exc.reason} at byte {exc.start})"
            ) from exc
        if not text:
            self._dispatch(events)
            return
        if text.startswith(":"):
            return  # a comment, e.g. TGI's keep-alive
        field, _, value = text.partition(":")
        if field != "data":
            return  # event, id, retry and unknown fields carry nothing for us
        if value.startswith(" "):
            value = value[1:]  # exactly one optional space, never a character set
        self._add_data(len(line), value.encode("utf-8"))

    def _add_data(self, line_bytes: int, value: bytes) -> None:
        self._data_bytes += line_bytes
        if self._data_bytes > self._max_line_bytes:
            raise StreamProtocolError(
                f"an event's data is longer than max_line_bytes={self._max_line_bytes}"
            )
        self._data.append(value)

    def _dispatch(self, events: list[Event]) -> None:
        """End the pending event (an empty line or end of input) and decode its payload."""
        if not self._data:
            return
        payload = self._data[0] if len(self._data) == 1 else b"\n".join(self._data)
        self._data.clear()
        self._data_bytes = 0
        try:
            obj = fast_loads(payload)
        except (ValueError, RecursionError):
            obj = None
        if type(obj) is dict and obj.get("error") is None:
            token = obj.get("token")
            if type(token) is dict:
                # The hot path: a well-formed token event that is not the last. `type(...) is
                # int` also refuses JSON's true and false, which Python makes ints.
                text = token.get("text")
                special = token.get("special")
                token_id = token.get("id")
                index = obj.get("index")
                if (
                    type(text) is str
                    and type(special) is bool
                    and (token_id is None or type(token_id) is int)
                    and (index is None or type(index) is int)
                    and obj.get("generated_text") is None
                ):
                    events.append(new_token(text, special, token_id, index))
                    return
        decoded = _payload_events(payload)
        # A GenerationEnd or a TgiError is always an event's last.
        if decoded and type(decoded[-1]) is not Token:
            self._finished = True
        events.extend(decoded)


def _payload_events(payload: bytes) -> list[Event]:
    """Map one event's data to events: all of them, or a StreamProtocolError."""
    if payload in (b"", DONE_MARKER):
        return []  # an empty event, or the OpenAI-style end marker
    try:
        obj = fast_loads(payload)
    except (ValueError, RecursionError):
        obj = careful_loads(payload)
    if not isinstance(obj, dict):
        raise StreamProtocolError(f"event data is not a JSON object: {preview(payload)}")
    # An error wins over anything else in the object: losing it would make a failed answer
    # look complete.
    if obj.get("error") is not None:
        return [_tgi_error(obj)]
    if "token" in obj:
        return _token_events(obj)
    raise StreamProtocolError(
        f"event has neither 'token' nor 'error', not a TGI generate_stream event "
        f"(keys {sorted(obj)}): {preview(payload)}"
    )


def _token_events(obj: dict[str, Any]) -> list[Event]:
    """Every check, with an error naming what is wrong, and the final event's GenerationEnd."""
    token = obj["token"]
    if not isinstance(token, dict):
        raise StreamProtocolError(f"'token' is not an object: {token!r}")
    text = token.get("text")
    if not isinstance(text, str):
        raise StreamProtocolError(f"token.text is not a string: {text!r}")
    special = token.get("special")
    if not isinstance(special, bool):
        raise StreamProtocolError(f"token.special is not a boolean: {special!r}")
    events: list[Event] = [
        Token(
            text=text,
            special=special,
            id=optional_int(token, "id", "token.id"),
            index=optional_int(obj, "index", "index"),
        )
    ]
    generated_text = obj.get("generated_text")
    if generated_text is None:
        return events
    if not isinstance(generated_text, str):
        raise StreamProtocolError(f"generated_text is not a string: {generated_text!r}")
    details = obj.get("details")
    if details is None:
        finish_reason = None
        generated_tokens = None
        input_length = None
    elif isinstance(details, dict):
        finish_reason = optional_str(details, "finish_reason", "details.finish_reason")
        generated_tokens = optional_int(details, "generated_tokens", "details.generated_tokens")
        input_length = optional_int(details, "input_length", "details.input_length")
    else:
        raise StreamProtocolError(f"details is not an object: {details!r}")
    events.append(
        GenerationEnd(
            generated_text=generated_text,
            finish_reason=finish_reason,
            generated_tokens=generated_tokens,
            input_length=input_length,
        )
    )
    return events


def _tgi_error(obj: dict[str, Any]) -> TgiError:
    try:
        return parse_error(obj)
    except ErrorShapeError as exc:
        raise StreamProtocolError(str(exc)) from None
