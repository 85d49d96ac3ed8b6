"""Accept negotiation: q-values, specificity, order, and when to answer 406."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from streamer.negotiation import OutputFormat, choose_format

TEXT, SSE, NDJSON = OutputFormat.TEXT, OutputFormat.SSE, OutputFormat.NDJSON


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (None, TEXT),
        ("", TEXT),
        ("*/*", TEXT),
        ("text/plain", TEXT),
        ("text/event-stream", SSE),
        ("application/x-ndjson", NDJSON),
        ("TEXT/EVENT-STREAM", SSE),
        ("text/plain; charset=utf-8", TEXT),
        ("text/*", TEXT),
        ("application/*", NDJSON),
        # An explicit type beats a wildcard at the same quality.
        ("*/*, text/event-stream", SSE),
        ("text/event-stream, */*", SSE),
        # Quality decides first.
        ("text/plain;q=0.5, application/x-ndjson", NDJSON),
        ("text/event-stream;q=0.9, application/x-ndjson;q=0.8", SSE),
        ("text/event-stream; q=0.1, text/plain; q=0.2", TEXT),
        # Among equals, the client's order.
        ("application/x-ndjson, text/event-stream", NDJSON),
        ("text/event-stream, application/x-ndjson", SSE),
        # q=0 excludes a type even when a wildcard would take it.
        ("text/plain;q=0, */*", SSE),
        ("text/plain;q=0, text/event-stream;q=0, */*", NDJSON),
        ("text/*;q=0, */*;q=0.1", NDJSON),
        # A typical fetch() or axios default.
        ("application/json, text/plain, */*", TEXT),
        # Unsupported types alongside a wildcard: the wildcard still matches.
        ("application/json, */*;q=0.1", TEXT),
        # Nothing readable in the header is the same as no header.
        ("garbage", TEXT),
        (",,,", TEXT),
        # A malformed q drops that range only.
        ("text/event-stream;q=high, application/x-ndjson", NDJSON),
    ],
)
def test_choice(accept: str | None, chosen: OutputFormat) -> None:
    assert choose_format(accept) is chosen


@pytest.mark.parametrize(
    "accept",
    [
        "application/json",
        "text/html, application/xml;q=0.9",
        "text/plain;q=0",
        "*/*;q=0",
        "text/plain;q=0, text/event-stream;q=0, application/x-ndjson;q=0",
        "image/*",
    ],
)
def test_nothing_acceptable(accept: str) -> None:
    assert choose_format(accept) is None


_media = st.sampled_from(
    [
        "text/plain",
        "text/event-stream",
        "application/x-ndjson",
        "application/json",
        "text/*",
        "*/*",
        "application/*",
        "image/png",
    ]
)
_quality = st.sampled_from(["", ";q=0", ";q=0.5", ";q=1", ";q=0.001", ";q=1.0", ";q=2", ";q=x"])


@settings(max_examples=200)
@given(ranges=st.lists(st.tuples(_media, _quality), max_size=6))
def test_the_choice_is_always_acceptable(ranges: list[tuple[str, str]]) -> None:
    """Whatever is chosen, some range in the header accepts it with a quality above zero."""
    accept = ", ".join(media + quality for media, quality in ranges)
    chosen = choose_format(accept)
    if chosen is None:
        return
    kind, _subtype = chosen.value.split("/")
    readable = [(m, q) for m, q in ranges if q not in (";q=2", ";q=x")]
    if not readable:
        assert chosen is TEXT
        return
    assert any(
        media in (chosen.value, f"{kind}/*", "*/*") and quality != ";q=0"
        for media, quality in readable
    )
