"""Choosing the answer's format from the Accept header (RFC 9110, section 12.5.1).

curl sends `*/*` and a person wants plain text; a browser's EventSource sends `text/event-stream`;
a program reading line by line asks for NDJSON. Each supported type takes the quality of the most
specific range that matches it (`text/plain` beats `text/*` beats `*/*`). The highest quality
wins; among equal qualities the more specific match wins, then the range listed first, then the
relay's own order of preference.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

__all__ = ["OutputFormat", "choose_format"]

_QUALITY = re.compile(r"(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


class OutputFormat(enum.Enum):
    """The three ways the relay writes an answer; the value is the media type matched on."""

    TEXT = "text/plain"
    SSE = "text/event-stream"
    NDJSON = "application/x-ndjson"


# The relay's preference when the client has none: plain text first.
_PREFERENCE = (OutputFormat.TEXT, OutputFormat.SSE, OutputFormat.NDJSON)


@dataclass(frozen=True, slots=True)
class _Range:
    kind: str
    subtype: str
    quality: float
    position: int

    def specificity(self, media_type: str) -> int:
        """2 for an exact match, 1 for `type/*`, 0 for `*/*`, -1 when the range doesn't match."""
        kind, subtype = media_type.split("/")
        if self.kind == "*" and self.subtype == "*":
            return 0
        if self.kind != kind:
            return -1
        if self.subtype == "*":
            return 1
        return 2 if self.subtype == subtype else -1


def choose_format(accept: str | None) -> OutputFormat | None:
    """The best format for this Accept header, or None when it accepts none of them (406).

    No header, a blank one, or one with no readable media range means "anything": plain text.
    """
    ranges = _parse(accept or "")
    if not ranges:
        return OutputFormat.TEXT
    best: tuple[tuple[float, int, int, int], OutputFormat] | None = None
    for preference, output in enumerate(_PREFERENCE):
        matches = [(r.specificity(output.value), r) for r in ranges]
        specificity, chosen = max(
            ((s, r) for s, r in matches if s >= 0),
            key=lambda match: (match[0], -match[1].position),
            default=(-1, None),
        )
        if chosen is None or chosen.quality <= 0:
            continue
        rank = (chosen.quality, specificity, -chosen.position, -preference)
        if best is None or rank > best[0]:
            best = (rank, output)
    return None if best is None else best[1]


def _parse(accept: str) -> list[_Range]:
    """Media ranges with their quality; malformed ranges are skipped, not fatal."""
    ranges: list[_Range] = []
    for position, item in enumerate(accept.split(",")):
        media_range, *parameters = (part.strip() for part in item.split(";"))
        kind, slash, subtype = media_range.lower().partition("/")
        if not slash or not _TOKEN.fullmatch(kind) or not _TOKEN.fullmatch(subtype):
            continue
        if kind == "*" and subtype != "*":
            continue
        quality: float | None = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                value = value.strip()
                quality = float(value) if _QUALITY.fullmatch(value) else None
        if quality is not None:
            ranges.append(_Range(kind, subtype, quality, position))
    return ranges
