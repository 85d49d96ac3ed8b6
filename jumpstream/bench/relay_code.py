"""The one place the relay's code (the ``streamer`` package) runs in the bench's own process:
its decoder, the body it sends SageMaker and its stream-error marker. (Elsewhere the bench reads
only the relay's ``contract``.)

The relay itself is measured as a process, started by ``run.sh``; only its stream decoder runs in
the bench's own process, to read what boto3 gets directly and to be measured next to
sagemaker-core's ``LineIterator``. The decoder and the request parser are imported when first
used, so the figures that do not need them never load them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final

from streamer.contract import MAX_NEW_TOKENS_LIMIT, STREAM_ERROR_PREFIX

__all__ = [
    "STREAM_ERROR_PREFIX",
    "TokenTexts",
    "decoder_texts",
    "new_stream_decoder",
    "relay_upstream_body",
]

#: The bench's answers are all well under this; the relay's own limit is not what is measured.
_MAX_LINE_BYTES: Final = 64 * 1024 * 1024


def relay_upstream_body(request: bytes) -> bytes:
    """What the relay sends SageMaker for the caller's `request` body."""
    from streamer.validation import parse_request

    limit = MAX_NEW_TOKENS_LIMIT.ceiling or MAX_NEW_TOKENS_LIMIT.default
    return parse_request(request, max_new_tokens_limit=limit).upstream_body()


def new_stream_decoder() -> Any:
    """A fresh ``StreamDecoder`` of the relay: PayloadPart bytes in, TGI events out."""
    from streamer.decoder import StreamDecoder

    return StreamDecoder(max_line_bytes=_MAX_LINE_BYTES)


def _token_type() -> type:
    from streamer.decoder import Token

    return Token


def _collect(events: Iterable[Any], token_type: type, texts: list[str]) -> int:
    """Append the visible texts of ``events`` (not special, not empty); return how many tokens."""
    tokens = 0
    for event in events:
        if type(event) is token_type:
            tokens += 1
            if not event.special and event.text:
                texts.append(event.text)
    return tokens


class TokenTexts:
    """One answer read with the relay's decoder, part by part: its visible texts and tokens."""

    def __init__(self) -> None:
        self._decoder = new_stream_decoder()
        self._token_type = _token_type()
        self.texts: list[str] = []
        self.tokens = 0

    def feed(self, part: bytes) -> bool:
        """Decode one PayloadPart; True when it completed visible text."""
        before = len(self.texts)
        self.tokens += _collect(self._decoder.feed(part), self._token_type, self.texts)
        return len(self.texts) > before

    def close(self) -> None:
        """The end of the stream: whatever the decoder still held."""
        self.tokens += _collect(self._decoder.close(), self._token_type, self.texts)


def decoder_texts(parts: Sequence[bytes]) -> tuple[list[str], int]:
    """The visible texts the relay's decoder finds in ``parts``, and how many tokens."""
    decoder, token_type = new_stream_decoder(), _token_type()
    texts: list[str] = []
    tokens = 0
    for part in parts:
        tokens += _collect(decoder.feed(part), token_type, texts)
    tokens += _collect(decoder.close(), token_type, texts)
    return texts, tokens
