"""Sans-I/O decoder for TGI's token stream as it arrives in SageMaker ``PayloadPart`` bytes.

Theory of operation
-------------------
SageMaker cuts TGI's server-sent-events stream into ``PayloadPart``s at arbitrary byte
positions: a part may hold several events, a fraction of one, or half of a multi-byte UTF-8
character. So the work happens in three layers, each fed only complete units by the one before:

1. ``_LineSplitter`` finds line ends (``\\n``, ``\\r\\n`` or a lone ``\\r``, as SSE allows) in the
   *new* bytes only and keeps just the unfinished line, so memory is bounded by the longest line
   and never by the length of the answer, and no byte is scanned twice.
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

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

from .tgi_errors import ErrorShapeError, TgiError, parse_error

try:
    # A compiled parser, 3-4 times the standard library's speed on TGI's events. The asset
    # bundles its wheel; a bundle made for another Python than the one running it cannot load
    # it, and then the standard library does the same work, slower.
    from orjson import loads as _fast_loads
except ImportError:  # pragma: no cover - depends on the interpreter
    _fast_loads = json.loads

__all__ = [
    "Event",
    "GenerationEnd",
    "StreamDecoder",
    "StreamProtocolError",
    "TgiError",
    "Token",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Token:
    """One generated token, as TGI streamed it.

    ``text`` may be ``""`` because TGI holds back a token that ends in an incomplete UTF-8
    character and sends the whole character with a later token. ``special`` tokens (``</s>``,
    ``<|endoftext|>``) are control markers that must never be shown to a user; the decoder keeps
    them as events so the caller can count them and decide.
    """

    text: str
    special: bool
    id: int | None = None
    index: int | None = None  # TGI >= 1.4 sends it; older streams don't.


_new_object = object.__new__
_set_text = Token.text.__set__  # type: ignore[attr-defined]
_set_special = Token.special.__set__  # type: ignore[attr-defined]
_set_id = Token.id.__set__  # type: ignore[attr-defined]
_set_index = Token.index.__set__  # type: ignore[attr-defined]


def _new_token(text: str, special: bool, token_id: int | None, index: int | None) -> Token:
    """`Token(...)` for the hot path: the same frozen object at a third of the cost.

    A frozen dataclass's `__init__` sets each field through `object.__setattr__` (~1.2 us for
    four fields, a quarter of the decoder's time per event); the slots' own descriptors do the
    same work directly.
    """
    token = _new_object(Token)
    _set_text(token, text)
    _set_special(token, special)
    _set_id(token, token_id)
    _set_index(token, index)
    return token


@dataclass(frozen=True, slots=True, kw_only=True)
class GenerationEnd:
    """TGI's final event: emitted right after the ``Token`` that the same JSON object carries.

    ``finish_reason``, ``generated_tokens`` and ``input_length`` (the prompt's tokens, TGI 2.3
    and later) come from ``details``, which TGI only fills when the request set
    ``parameters.details``; otherwise they are ``None``.
    """

    generated_text: str
    finish_reason: str | None
    generated_tokens: int | None
    input_length: int | None = None


Event: TypeAlias = Token | GenerationEnd | TgiError


class StreamProtocolError(ValueError):
    """The upstream sent something that is not a TGI stream (bad JSON, unknown shape, a line
    longer than max_line_bytes, invalid UTF-8 in a line)."""


_LINE_END: Final = re.compile(rb"\r\n?|\n")
_CR: Final = 0x0D
_CR_BYTE: Final = b"\r"
_DATA_FIELD: Final = b"data:"
_LF: Final = 0x0A
_BOM: Final = b"\xef\xbb\xbf"
_DONE_MARKER: Final = b"[DONE]"
_PREVIEW_CHARS: Final = 120


def _preview(payload: bytes) -> str:
    """Quote the start of a bad payload for the error message, without logging megabytes."""
    text = payload[: 4 * _PREVIEW_CHARS].decode("utf-8", "replace")
    if len(text) > _PREVIEW_CHARS:
        return repr(text[:_PREVIEW_CHARS]) + "..."
    return repr(text)


class _LineSplitter:
    """Split bytes into lines at ``\\n``, ``\\r\\n`` or a lone ``\\r``, holding the unfinished one.

    A ``\\r`` at the very end of a chunk ends its line at once, and a ``\\n`` that starts the
    next chunk is then skipped, so a ``\\r\\n`` cut in two still counts as one line end. This
    gives the same lines as httpx-sse, which holds the ``\\r`` back until the next byte, but
    without delaying a complete line (or an event's closing blank line) until more bytes come.
    """

    __slots__ = ("_buffer", "_max_line_bytes", "_skip_lf")

    def __init__(self, max_line_bytes: int) -> None:
        self._buffer = bytearray()
        self._max_line_bytes = max_line_bytes
        self._skip_lf = False

    @property
    def buffered_bytes(self) -> int:
        return len(self._buffer)

    def split(self, data: bytes) -> tuple[list[bytes], bytes] | None:
        """The usual case, TGI's, fast: the complete lines of ``data`` and its unfinished tail,
        for `keep`; or None when ``data`` needs `feed` (a CR in it or pending, or so many bytes
        that a line could pass the limit).

        Only ``\\n`` ends lines here, so ``bytes.split`` finds them all, and no line can be
        longer than the buffer and ``data`` together, which the limit was checked against.
        """
        if (
            self._skip_lf
            or _CR_BYTE in data
            or len(self._buffer) + len(data) > self._max_line_bytes
        ):
            return None
        lines = data.split(b"\n")
        tail = lines.pop()
        if lines and self._buffer:
            self._buffer += lines[0]
            lines[0] = bytes(self._buffer)
            self._buffer.clear()
        return lines, tail

    def keep(self, tail: bytes) -> None:
        """Hold the unfinished line `split` returned (within the limit, as `split` checked)."""
        if tail:
            self._buffer += tail

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Yield each line that ``data`` completes, without its line end."""
        return self._feed_any(data)

    def _feed_any(self, data: bytes) -> Iterator[bytes]:
        """Any mix of ``\\n``, ``\\r\\n`` and lone ``\\r``, a ``\\r\\n`` possibly cut in two."""
        start = 0
        if self._skip_lf and data:
            self._skip_lf = False
            if data[0] == _LF:
                start = 1
        for match in _LINE_END.finditer(data, start):
            end = match.start()
            self._check_length(len(self._buffer) + end - start)
            if self._buffer:
                self._buffer += data[start:end]
                line = bytes(self._buffer)
                self._buffer.clear()
            else:
                line = data[start:end]
            start = match.end()
            if start == len(data) and data[end] == _CR and end + 1 == start:
                self._skip_lf = True
            yield line
        if start < len(data):
            # Check before copying, so an endless line costs at most max_line_bytes of memory.
            self._check_length(len(self._buffer) + len(data) - start)
            self._buffer += data[start:]

    def flush(self) -> bytes | None:
        """Return the last line if the input ended without a line end (else ``None``)."""
        self._skip_lf = False
        if not self._buffer:
            return None
        line = bytes(self._buffer)
        self._buffer.clear()
        return line

    def _check_length(self, length: int) -> None:
        if length > self._max_line_bytes:
            raise StreamProtocolError(
                f"a line is longer than max_line_bytes={self._max_line_bytes}: "
                "not a TGI token stream"
            )


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

    def __init__(self, *, max_line_bytes: int = 4 * 1024 * 1024) -> None:
        if max_line_bytes < 1:
            raise ValueError(f"max_line_bytes must be positive, got {max_line_bytes}")
        self._max_line_bytes = max_line_bytes
        self._lines = _LineSplitter(max_line_bytes)
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
        if line.startswith(_DATA_FIELD) and not self._first_line:
            value = line[6:] if line[5:6] == b" " else line[5:]
            self._add_data(len(line), value)
            return
        if not line:
            self._dispatch(events)
            return
        if self._first_line:
            # SSE ignores one byte order mark at the start of the stream.
            self._first_line = False
            if line.startswith(_BOM):
                line = line[len(_BOM) :]
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
            obj = _fast_loads(payload)
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
                    events.append(_new_token(text, special, token_id, index))
                    return
        decoded = _payload_events(payload)
        # A GenerationEnd or a TgiError is always an event's last.
        if decoded and type(decoded[-1]) is not Token:
            self._finished = True
        events.extend(decoded)


def _payload_events(payload: bytes) -> list[Event]:
    """Map one event's data to events: all of them, or a StreamProtocolError."""
    if payload in (b"", _DONE_MARKER):
        return []  # an empty event, or the OpenAI-style end marker
    try:
        obj = _fast_loads(payload)
    except (ValueError, RecursionError):
        obj = _careful_loads(payload)
    if not isinstance(obj, dict):
        raise StreamProtocolError(f"event data is not a JSON object: {_preview(payload)}")
    # An error wins over anything else in the object: losing it would make a failed answer
    # look complete.
    if obj.get("error") is not None:
        return [_tgi_error(obj)]
    if "token" in obj:
        return _token_events(obj)
    raise StreamProtocolError(
        f"event has neither 'token' nor 'error', not a TGI generate_stream event "
        f"(keys {sorted(obj)}): {_preview(payload)}"
    )


def _careful_loads(payload: bytes) -> Any:
    """The standard library's parser, where the fast one refused the payload: it takes what
    orjson does not (a lone surrogate escape, NaN, huge integers), and names what is wrong."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StreamProtocolError(
            f"a line is not valid UTF-8 ({exc.reason} at byte {exc.start} of its data)"
        ) from exc
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise StreamProtocolError(f"event data is not JSON ({exc}): {_preview(payload)}") from exc


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
            id=_optional_int(token, "id", "token.id"),
            index=_optional_int(obj, "index", "index"),
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
        finish_reason = _optional_str(details, "finish_reason", "details.finish_reason")
        generated_tokens = _optional_int(details, "generated_tokens", "details.generated_tokens")
        input_length = _optional_int(details, "input_length", "details.input_length")
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


def _optional_int(obj: dict[str, Any], key: str, name: str) -> int | None:
    value = obj.get(key)
    # bool is an int subclass in Python, but JSON true is not a number.
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise StreamProtocolError(f"{name} is not an integer: {value!r}")


def _optional_str(obj: dict[str, Any], key: str, name: str) -> str | None:
    value = obj.get(key)
    if value is None or isinstance(value, str):
        return value
    raise StreamProtocolError(f"{name} is not a string: {value!r}")
