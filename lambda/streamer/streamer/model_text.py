"""Model-specific fixes to the text a model streams, applied before the caller sees it.

rinna's japanese-gpt-neox-3.6b models were trained with newlines written as the literal `<NL>`,
and write them that way; the catalog's prompt template says so in its output replacements. Tokens
split text anywhere, so `<N` may end one token and `L>` start the next: the rewriter holds back
only a suffix that could still become `<NL>`, and the rest of the text goes out as soon as it
arrives. Stop sequences that a chat request added are cut the same way (stop_sequences.py), and
an answer shown as a chat turn loses the whitespace it starts with (LeadingSpaceTrimmer).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from .prompt_template import PromptTemplate
from .stop_sequences import StopSequenceTrimmer

__all__ = [
    "LeadingSpaceTrimmer",
    "MarkerRewriter",
    "PassThrough",
    "TextTransform",
    "TransformChain",
    "transform_for",
]


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


class LeadingSpaceTrimmer:
    """Drops the whitespace an answer starts with, and nothing after its first visible character.

    Models trained on `Falcon: text` or `システム: text` answer a prompt ending `Falcon:` with a
    first token such as `" Large"`: the space belongs to the layout, not to the answer. A chat
    client shows it in every bubble, and sent back as history it would render `Falcon:  Large`,
    which the model was not trained on. The text only ever loses its start; held back: nothing.
    """

    def __init__(self) -> None:
        self._started = False

    def feed(self, text: str) -> str:
        if self._started:
            return text
        text = text.lstrip()
        self._started = bool(text)
        return text

    def flush(self) -> str:
        return ""


class TransformChain:
    """Transforms applied in order; what one holds back at the end still passes the next."""

    def __init__(self, transforms: Sequence[TextTransform]) -> None:
        self._transforms = tuple(transforms)

    def feed(self, text: str) -> str:
        for transform in self._transforms:
            text = transform.feed(text)
        return text

    def flush(self) -> str:
        text = ""
        for transform in self._transforms:
            text = transform.feed(text) + transform.flush()
        return text


def transform_for(
    template: PromptTemplate | None,
    *,
    stop_sequences: Sequence[str] = (),
    chat_turn: bool = False,
) -> TextTransform:
    """A fresh transform for one response: cut `stop_sequences`, then the template's rewrites,
    then, for an answer shown as a chat turn (`chat_turn`), its leading whitespace.

    Stop sequences are cut first, from the text as the model wrote it, because that is the text
    TGI matched them against; the leading whitespace last, from the text the caller would see.
    """
    transforms: list[TextTransform] = []
    if stop_sequences:
        transforms.append(StopSequenceTrimmer(stop_sequences))
    if template is not None:
        transforms.extend(MarkerRewriter(old, new) for old, new in template.output_replacements)
    if chat_turn:
        transforms.append(LeadingSpaceTrimmer())
    if not transforms:
        return PassThrough()
    return transforms[0] if len(transforms) == 1 else TransformChain(transforms)
