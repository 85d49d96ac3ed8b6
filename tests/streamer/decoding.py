"""Feeding a decoder the way SageMaker does: whole, a byte per part, cut anywhere (h11's way)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from streamer.stream_lines import Decoder, StreamProtocolError

DecoderFactory = Callable[..., Decoder]


def decode_parts(make: DecoderFactory, parts: Iterable[bytes], **kwargs: Any) -> list[Any]:
    """Every event a fresh decoder yields for these parts, its close included."""
    decoder = make(**kwargs)
    events: list[Any] = []
    for part in parts:
        events += decoder.feed(part)
    events += decoder.close()
    return events


def decode_until_refused(
    make: DecoderFactory, parts: Iterable[bytes]
) -> tuple[list[Any], StreamProtocolError | None]:
    """The events a fresh decoder yields for these parts, its close included, up to the
    StreamProtocolError that stopped it (None if none did)."""
    decoder = make()
    events: list[Any] = []
    try:
        for part in parts:
            events += decoder.feed(part)
        events += decoder.close()
    except StreamProtocolError as error:
        return events, error
    return events, None


def bytewise(stream: bytes) -> list[bytes]:
    return [stream[i : i + 1] for i in range(len(stream))]


def split_at(stream: bytes, cuts: Iterable[int]) -> list[bytes]:
    bounds = [0, *sorted(cuts), len(stream)]
    return [stream[a:b] for a, b in itertools.pairwise(bounds)]


def assert_decodes_everywhere(make: DecoderFactory, stream: bytes, expected: Sequence[Any]) -> None:
    """Whole, one byte per part, and cut in two at every position: always the same events."""
    assert decode_parts(make, [stream]) == expected
    assert decode_parts(make, bytewise(stream)) == expected
    for cut in range(len(stream) + 1):
        assert decode_parts(make, split_at(stream, [cut])) == expected, f"cut at byte {cut}"


def assert_buffer_bounded(make: DecoderFactory, parts: Iterable[bytes], longest: int) -> None:
    """Fed these parts, a decoder never holds more than the longest line, and nothing at the end."""
    decoder = make()
    for part in parts:
        decoder.feed(part)
        assert decoder.buffered_bytes <= longest
    decoder.close()
    assert decoder.buffered_bytes == 0
