"""Model-specific fixes to the text a model streams, applied before the caller sees it.

rinna's japanese-gpt-neox-3.6b models were trained with newlines written as the literal `<NL>`,
and write them that way. Tokens split text anywhere, so `<N` may end one token and `L>` start the
next: the rewriter holds back only a suffix that could still become `<NL>`, and the rest of the
text goes out as soon as it arrives.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["MarkerRewriter", "PassThrough", "TextTransform", "transform_for"]


class TextTransform(Protocol):
    """Streaming text in, text out; `flush` releases anything held back at the end."""

    def feed(self, text: str) -> str: ...

    def flush(self) -> str: ...


class PassThrough:
    """Most models' text needs no change."""

    def feed(self, text: str) -> str:
        return text

    def flush(self) -> str:
        return ""


class MarkerRewriter:
    """Replaces every `marker` with `replacement`, however the text is split across feeds.

    The output equals `"".join(pieces).replace(marker, replacement)`: a held suffix is always a
    proper prefix of the marker, and since the marker's first character occurs only once in it
    and never in the replacement, no match can start before the held part and end inside it.
    """

    def __init__(self, marker: str, replacement: str) -> None:
        if not marker or marker[0] in marker[1:] or marker[0] in replacement:
            raise ValueError(
                "the marker must be non-empty, and its first character must occur neither "
                "again in it nor in the replacement"
            )
        self._marker = marker
        self._replacement = replacement
        self._held = ""

    def feed(self, text: str) -> str:
        buffered = (self._held + text).replace(self._marker, self._replacement)
        keep = self._partial_marker_suffix(buffered)
        self._held = buffered[len(buffered) - keep :]
        return buffered[: len(buffered) - keep]

    def flush(self) -> str:
        held, self._held = self._held, ""
        return held

    def _partial_marker_suffix(self, text: str) -> int:
        for length in range(min(len(self._marker) - 1, len(text)), 0, -1):
            if text.endswith(self._marker[:length]):
                return length
        return 0


def transform_for(model_id: str | None) -> TextTransform:
    """A fresh transform for one response of this model."""
    if model_id is not None and "rinna-3-6b" in model_id:
        return MarkerRewriter("<NL>", "\n")
    return PassThrough()
