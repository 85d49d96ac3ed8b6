"""From PayloadPart bytes to what the caller sees: text pieces, then an end or a failure.

`AnswerPump` pulls one answer through without HTTP: each `pull` awaits one read of the upstream
stream (the PayloadParts of one chunk) and returns the pieces it completed; where the stream can
tell when a read is at hand (`listen`), `pull_nowait` takes it in the connection's own callback.
It decodes with one decoder per answer, the engine's for the request (engines.py: TGI's token
events, LMI's token lines, OpenAI chunks; all yield the same events), drops special tokens and
empty texts, applies the model's text transform, and turns every way the stream can go wrong
(the engine's error event, a SageMaker error, bytes that are not the engine's stream, a stream
that just stops) into one `ErrorPiece` carrying an `UpstreamError`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from .errors import UpstreamError
from .http_types import MustAwait
from .model_text import TextTransform
from .stream_lines import GenerationEnd, StreamProtocolError, Token
from .upstream import UpstreamStream

if TYPE_CHECKING:
    from .engines import StreamFormat

__all__ = [
    "DRAIN_MAX_BYTES",
    "AnswerPump",
    "EndPiece",
    "ErrorPiece",
    "Piece",
    "TextPiece",
    "max_line_bytes_for",
]

# A byte of the prompt comes back as at most six: JSON may write any character as `\uXXXX`.
_JSON_ESCAPE_FACTOR: Final = 6
# Room per generated token in the final event's generated_text (a token is a few characters).
_BYTES_PER_TOKEN: Final = 64
# The rest of an event: the token object, details, top_tokens, the `data:` prefix.
_EVENT_OVERHEAD_BYTES: Final = 64 * 1024
# What the upstream may still send after the final event (TGI sends nothing more): read this much
# at most so the connection can go back to the pool, else close it.
DRAIN_MAX_BYTES: Final = 64 * 1024


def max_line_bytes_for(*, max_body_bytes: int, max_new_tokens_limit: int) -> int:
    """The longest line a valid request can cause, whatever the engine: it bounds the decoder's
    memory.

    The longest is an answer's last: TGI's final event, whose `generated_text` is the whole
    answer and, when the caller sets `return_full_text`, the whole prompt before it; LMI's last
    token line, whose `generated_text` is the answer and whose `details.inputs` is the prompt
    (the relay never asks LMI for the full text). The prompt is at most the body, and any of its
    characters may come back escaped. An OpenAI chunk holds a piece of text, and its usage chunk
    a few numbers.
    """
    return (
        _JSON_ESCAPE_FACTOR * max_body_bytes
        + _BYTES_PER_TOKEN * max_new_tokens_limit
        + _EVENT_OVERHEAD_BYTES
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class TextPiece:
    """Visible text, ready to send."""

    text: str


_new_object = object.__new__
_set_piece_text = TextPiece.text.__set__  # type: ignore[attr-defined]


def _text_piece(text: str) -> TextPiece:
    """`TextPiece(text=text)` for the hot path, one per token: the same frozen object without a
    dataclass `__init__` setting its field through `object.__setattr__` (as
    stream_lines.new_token)."""
    piece = _new_object(TextPiece)
    _set_piece_text(piece, text)
    return piece


@dataclass(frozen=True, slots=True, kw_only=True)
class EndPiece:
    """The model finished; fields are None where the model did not say."""

    finish_reason: str | None
    generated_tokens: int | None
    #: The prompt's length in tokens, where the engine reports it (TGI 2.3 and later, LMI's
    #: async mode, vLLM's usage chunk).
    input_length: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorPiece:
    """The answer cannot go on; `error` says what the caller is told."""

    error: UpstreamError


Piece = TextPiece | EndPiece | ErrorPiece


class AnswerPump:
    """Pulls one answer out of an upstream stream, a read at a time, on the event loop.

    `abandon` (when the relay gives up, at its deadline) may come while a `pull` is suspended
    in its read; that read then turns into nothing.
    """

    def __init__(
        self,
        stream: UpstreamStream,
        *,
        transform: TextTransform,
        stream_format: StreamFormat,
        max_line_bytes: int,
    ) -> None:
        """`stream_format` is the engine's for the request: its decoder, what its errors mean."""
        self._stream = stream
        self._transform = transform
        self._decoder = stream_format.decoder(max_line_bytes=max_line_bytes)
        self._error_in_stream = stream_format.error_in_stream
        self._stream_name = stream_format.name
        self._finished = False
        self._ended = False
        self._closed = False
        self._undrainable = False  # `end_at_hand` met what `drain` stops at

    @property
    def finished(self) -> bool:
        """True once an EndPiece or ErrorPiece was returned; `pull` then returns nothing."""
        return self._finished

    @property
    def ended(self) -> bool:
        """True once the model's final event was seen: the answer is complete."""
        return self._ended

    async def pull(self) -> list[Piece]:
        """Read once (the PayloadParts of one chunk) and return the pieces completed."""
        if self._finished:
            return []
        try:
            data = await self._stream.__anext__()
        except StopAsyncIteration:
            return self._unless_abandoned(self._end_of_stream)
        except UpstreamError as error:
            return self._unless_abandoned(self._fail, [], error)
        return self._unless_abandoned(self._decode, data)

    def pull_nowait(self) -> list[Piece] | None:
        """`pull`'s pieces when its read need not wait; None while it would. Raises MustAwait
        where the read is the stream's end or how the connection ended: `pull` then ends the
        answer (nothing consumed)."""
        if self._finished:
            return []
        try:
            data = self._stream.next_nowait()  # type: ignore[attr-defined]  # see `listen`
        except UpstreamError as error:
            return self._fail([], error)
        if data is None:
            return None
        return self._decode(data)

    def listen(self, listener: Callable[[], None] | None) -> bool:
        """Call `listener` (on the event loop, from the connection's callback) whenever
        `pull_nowait` may have pieces, until called with None; False where the upstream stream
        cannot tell (then only `pull` reads it)."""
        listen = getattr(self._stream, "listen", None)
        return bool(listen(listener)) if listen is not None else False

    def abandon(self) -> str:
        """Stop the answer for a reason of the relay's own (its deadline, a bug of its own).

        Returns the text the transform still holds back: it is real model output, to be sent
        before the error. The stream stays open for `aclose`.
        """
        held = "" if self._finished else self._transform.flush()
        self._finished = True
        return held

    async def drain(self, *, max_bytes: int = DRAIN_MAX_BYTES) -> bool:
        """After the final event, read the stream to its end; True if the end was reached.

        The HTTP client returns a connection to its pool only once the response was read to the
        end, so a drained stream lets the next request reuse the open TLS connection to
        SageMaker instead of paying for a new handshake. Only a complete answer is drained, and
        only `max_bytes` of it: a failed or abandoned stream is closed at once, which is what
        stops the model's work.
        """
        if not self._ended or self._undrainable:
            return False
        read = 0
        while read <= max_bytes and not self._closed:
            try:
                read += len(await self._stream.__anext__())
            except StopAsyncIteration:
                return True
            except Exception:
                return False
        return False

    def end_at_hand(self, *, max_bytes: int = DRAIN_MAX_BYTES) -> bool:
        """True when the rest of a complete answer's stream, up to its end, has arrived (what
        came after the final event is read here and dropped, as `drain` would): `drain` and
        `aclose` then finish without waiting. False for an answer not complete, for a stream
        whose rest is still to come or that cannot tell, and for one that failed or ran past
        `max_bytes` after the end: that stream is then closed, not drained (`drain` returns
        False)."""
        next_nowait = getattr(self._stream, "next_nowait", None)
        if not self._ended or self._closed or self._undrainable or next_nowait is None:
            return False
        read = 0
        while True:
            try:
                data = next_nowait()
            except MustAwait:
                return True
            except Exception:
                break  # a failure after the final event
            if data is None:
                return False
            read += len(data)
            if read > max_bytes:
                break
        # What `drain` would have stopped at: the stream is closed, not drained (the failure,
        # raised here, is not raised again).
        self._undrainable = True
        return False

    async def aclose(self) -> None:
        """Close the upstream stream once; safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            await self._stream.aclose()

    def _unless_abandoned(self, step: Callable[..., list[Piece]], *args: object) -> list[Piece]:
        """Turn what a read returned into pieces, unless the answer was abandoned meanwhile."""
        return [] if self._finished else step(*args)

    def _decode(self, data: bytes) -> list[Piece]:
        try:
            events = self._decoder.feed(data)
        except StreamProtocolError as error:
            return self._fail([], self._protocol_error(error))
        return self._handle(events)

    def _end_of_stream(self) -> list[Piece]:
        try:
            events = self._decoder.close()
        except StreamProtocolError as error:
            return self._fail([], self._protocol_error(error))
        pieces = self._handle(events)
        if self._finished:
            return pieces
        return self._fail(
            pieces,
            UpstreamError(
                kind="incomplete_stream",
                message="The model's stream ended before the answer was complete.",
                detail="the upstream stream ended without a final event",
            ),
        )

    def _handle(self, events: list[Any]) -> list[Piece]:
        pieces: list[Piece] = []
        for event in events:
            if isinstance(event, Token):
                if not event.special and event.text:
                    text = self._transform.feed(event.text)
                    if text:
                        pieces.append(_text_piece(text))
            elif isinstance(event, GenerationEnd):
                self._add_text(pieces, self._transform.flush())
                pieces.append(
                    EndPiece(
                        finish_reason=event.finish_reason,
                        generated_tokens=event.generated_tokens,
                        input_length=event.input_length,
                    )
                )
                self._finished = True
                self._ended = True
                return pieces
            else:  # the engine's error event
                return self._fail(pieces, self._error_in_stream(event))
        return pieces

    def _fail(self, pieces: list[Piece], error: UpstreamError) -> list[Piece]:
        """Text held back by the transform is real model output: send it before the error."""
        self._add_text(pieces, self._transform.flush())
        pieces.append(ErrorPiece(error=error))
        self._finished = True
        return pieces

    @staticmethod
    def _add_text(pieces: list[Piece], text: str) -> None:
        if text:
            pieces.append(_text_piece(text))

    def _protocol_error(self, error: StreamProtocolError) -> UpstreamError:
        return UpstreamError.bad_gateway(
            f"The model's stream could not be read: it was not a valid {self._stream_name}.",
            str(error),
        )
