"""What every stream decoder shares: the events, the line splitter, and reading a line's JSON.

SageMaker cuts each engine's stream into ``PayloadPart``s at arbitrary byte positions, so every
decoder stands on the same two layers (decoder.py tells the whole story for TGI's):

1. ``LineSplitter`` finds line ends in the new bytes only and holds just the unfinished line, so
   memory is bounded by the longest line and never by the length of the answer;
2. each complete line is decoded as UTF-8 and JSON, never a part, which may end mid-character.

TGI's decoder (decoder.py) applies the SSE rules on top, fast. The engines that write one whole
JSON object per line (LMI's token lines, OpenAI's chunks) share line_decoder.LineDecoder.

Every decoder yields the same events, in TGI's words (``Token``, ``GenerationEnd`` with TGI's
finish reasons), plus its engine's own error event, so every writer works unchanged whatever the
engine. Like h11, none of them touches a socket, and a protocol error never loses the events
decoded before it: ``feed`` returns them and the next ``feed`` or ``close`` raises the error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final, Protocol

try:
    # A compiled parser, 3-4 times the standard library's speed on these events. The asset
    # bundles its wheel; a bundle made for another Python than the one running it cannot load
    # it, and then the standard library does the same work, slower.
    from orjson import loads as fast_loads
except ImportError:  # pragma: no cover - depends on the interpreter
    fast_loads = json.loads

__all__ = [
    "BOM",
    "DATA_FIELD",
    "DEFAULT_MAX_LINE_BYTES",
    "DONE_MARKER",
    "FAILED_FINISH_REASONS",
    "Decoder",
    "GenerationEnd",
    "LineSplitter",
    "StreamProtocolError",
    "Token",
    "careful_loads",
    "fast_loads",
    "new_token",
    "optional_int",
    "optional_str",
    "preview",
]

#: A decoder's line limit when none is given; the relay gives its own (pump.max_line_bytes_for).
DEFAULT_MAX_LINE_BYTES: Final = 4 * 1024 * 1024


#: The finish reasons by which an OpenAI-style server (vLLM, and LMI around it) says the answer
#: failed rather than ended: vLLM's `abort` (the request was dropped), and LMI's `error`. An
#: answer that stops with either is reported as failed, never as complete.
FAILED_FINISH_REASONS: Final = frozenset({"error", "abort"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Token:
    """One generated token (or, for an engine that streams text pieces, one piece).

    ``text`` may be ``""``: TGI holds back a token that ends in an incomplete UTF-8 character and
    sends the whole character with a later token. ``special`` tokens (``</s>``,
    ``<|endoftext|>``) are control markers that must never be shown to a user; the decoders keep
    them as events so the caller can count them and decide.
    """

    text: str
    special: bool
    id: int | None = None
    index: int | None = None  # TGI >= 1.4 and LMI send it; older streams don't.


_new_object = object.__new__
_set_text = Token.text.__set__  # type: ignore[attr-defined]
_set_special = Token.special.__set__  # type: ignore[attr-defined]
_set_id = Token.id.__set__  # type: ignore[attr-defined]
_set_index = Token.index.__set__  # type: ignore[attr-defined]


def new_token(text: str, special: bool, token_id: int | None, index: int | None) -> Token:
    """`Token(...)` for the hot path: the same frozen object at a third of the cost.

    A frozen dataclass's `__init__` sets each field through `object.__setattr__` (~1.2 us for
    four fields, a quarter of TGI's decoder's time per event); the slots' own descriptors do the
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
    """The end of a complete answer, in TGI's words whatever the engine said.

    ``finish_reason`` is TGI's (``eos_token``, ``length``, ``stop_sequence``); the fields are
    ``None`` where the engine did not say (TGI fills them only when the request set
    ``parameters.details``; ``input_length``, the prompt's tokens, comes from TGI 2.3 on, LMI's
    async mode and the OpenAI engines' usage chunk). ``generated_text`` is the whole answer where
    the stream carries it (TGI's and LMI's last line); an OpenAI stream does not, and the relay
    never uses it.
    """

    generated_text: str | None
    finish_reason: str | None
    generated_tokens: int | None
    input_length: int | None = None


class StreamProtocolError(ValueError):
    """The upstream sent something that is not the engine's stream (bad JSON, an unknown shape,
    a line longer than max_line_bytes, invalid UTF-8 in a line)."""


class Decoder(Protocol):
    """What the relay needs of a stream decoder (StreamDecoder's interface, every engine's)."""

    @property
    def finished(self) -> bool:
        """True once the answer's end or an error was decoded."""
        ...

    @property
    def buffered_bytes(self) -> int: ...

    def feed(self, data: bytes) -> list[Any]: ...

    def close(self) -> list[Any]: ...


_LINE_END: Final = re.compile(rb"\r\n?|\n")
_CR: Final = 0x0D
_CR_BYTE: Final = b"\r"
_LF: Final = 0x0A
BOM: Final = b"\xef\xbb\xbf"
DATA_FIELD: Final = b"data:"
DONE_MARKER: Final = b"[DONE]"
_PREVIEW_CHARS: Final = 120


def preview(payload: bytes) -> str:
    """Quote the start of a bad payload for the error message, without logging megabytes."""
    text = payload[: 4 * _PREVIEW_CHARS].decode("utf-8", "replace")
    if len(text) > _PREVIEW_CHARS:
        return repr(text[:_PREVIEW_CHARS]) + "..."
    return repr(text)


class LineSplitter:
    """Split bytes into lines at ``\\n``, ``\\r\\n`` or a lone ``\\r``, holding the unfinished one.

    A ``\\r`` at the very end of a chunk ends its line at once, and a ``\\n`` that starts the
    next chunk is then skipped, so a ``\\r\\n`` cut in two still counts as one line end. This
    gives the same lines as httpx-sse, which holds the ``\\r`` back until the next byte, but
    without delaying a complete line (or an event's closing blank line) until more bytes come.
    ``stream_name`` says what a line too long is not, in the error.
    """

    __slots__ = ("_buffer", "_max_line_bytes", "_skip_lf", "_stream_name")

    def __init__(self, max_line_bytes: int, *, stream_name: str) -> None:
        self._buffer = bytearray()
        self._max_line_bytes = max_line_bytes
        self._skip_lf = False
        self._stream_name = stream_name

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
        """Yield each line that ``data`` completes, without its line end: any mix of ``\\n``,
        ``\\r\\n`` and lone ``\\r``, a ``\\r\\n`` possibly cut in two."""
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
                f"not {self._stream_name}"
            )


def careful_loads(payload: bytes) -> Any:
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
        raise StreamProtocolError(f"event data is not JSON ({exc}): {preview(payload)}") from exc


def optional_int(obj: dict[str, Any], key: str, name: str) -> int | None:
    """`obj[key]` if it is an integer or missing/null; else a protocol error naming `name`."""
    value = obj.get(key)
    # bool is an int subclass in Python, but JSON true is not a number.
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise StreamProtocolError(f"{name} is not an integer: {value!r}")


def optional_str(obj: dict[str, Any], key: str, name: str) -> str | None:
    """`obj[key]` if it is a string or missing/null; else a protocol error naming `name`."""
    value = obj.get(key)
    if value is None or isinstance(value, str):
        return value
    raise StreamProtocolError(f"{name} is not a string: {value!r}")
