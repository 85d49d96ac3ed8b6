"""The client-side readers of the relay's three formats, fed bodies the relay's own writers make.

Bodies are produced by `streamer.formats` (the relay's writers), so these tests also pin the
contract between the relay and its clients: whatever the relay writes, the client reads back.
Every body is fed whole, byte by byte, and cut at arbitrary points.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from streamer.formats import NdjsonWriter, PlainTextWriter, SseWriter, StreamWriter

from jumpstream.reading import (
    AnswerEvent,
    Failed,
    Finished,
    NdjsonReader,
    PlainTextReader,
    ReaderError,
    SseReader,
    TextChunk,
    reader_for,
)

WRITERS = {"text": PlainTextWriter, "sse": SseWriter, "ndjson": NdjsonWriter}
Ending = Finished | Failed


def render(writer: StreamWriter, texts: list[str], ending: Ending) -> bytes:
    """A whole answer body as the relay writes it."""
    body = b"".join(writer.text(text) for text in texts)
    if isinstance(ending, Failed):
        return body + writer.error(message=ending.message, kind=ending.kind)
    return body + writer.done(
        finish_reason=ending.finish_reason, generated_tokens=ending.generated_tokens
    )


def read(output_format: str, pieces: list[bytes]) -> list[AnswerEvent]:
    reader = reader_for(output_format)
    events: list[AnswerEvent] = []
    for piece in pieces:
        events += reader.feed(piece)
    return events + reader.close()


def merged(events: list[AnswerEvent]) -> tuple[str, list[AnswerEvent]]:
    """All text joined, and the non-text events in order."""
    text = "".join(event.text for event in events if isinstance(event, TextChunk))
    return text, [event for event in events if not isinstance(event, TextChunk)]


def cut(body: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(body), *(point % (len(body) + 1) for point in cuts)})
    return [body[start:end] for start, end in itertools.pairwise(points)]


def expected_text(output_format: str, answer: str, ending: Ending) -> str:
    """Before an error line, plain text gets a line break if it lacks one: the writer adds it."""
    if output_format == "text" and isinstance(ending, Failed) and answer[-1:] not in ("", "\n"):
        return answer + "\n"
    return answer


def expected_ending(output_format: str, ending: Ending) -> Ending:
    """Plain text cannot say why the answer finished, only that it did."""
    if output_format == "text" and isinstance(ending, Finished):
        return Finished()
    return ending


TEXTS = ["Hello", ", world", "\n", "日本語の", "テキスト", "\n\n", "[bracket] ", "end."]


@pytest.mark.parametrize("output_format", ["text", "sse", "ndjson"])
@pytest.mark.parametrize(
    "ending",
    [
        Finished(finish_reason="eos_token", generated_tokens=9),
        Failed(message="The model is overloaded; try again shortly.", kind="overloaded"),
    ],
)
@pytest.mark.parametrize("feeding", ["whole", "byte by byte"])
def test_reads_back_what_the_relay_writes(output_format: str, ending: Ending, feeding: str) -> None:
    body = render(WRITERS[output_format](), TEXTS, ending)
    pieces = [body] if feeding == "whole" else [body[i : i + 1] for i in range(len(body))]
    text, others = merged(read(output_format, pieces))
    assert text == expected_text(output_format, "".join(TEXTS), ending)
    assert others == [expected_ending(output_format, ending)]


def test_sse_and_ndjson_keep_one_text_event_per_token() -> None:
    for output_format in ("sse", "ndjson"):
        body = render(WRITERS[output_format](), ["a", "b"], Finished())
        assert read(output_format, [body]) == [
            TextChunk(text="a"),
            TextChunk(text="b"),
            Finished(),
        ]


def test_plain_text_is_released_as_soon_as_it_cannot_be_an_error_line() -> None:
    reader = PlainTextReader()
    assert reader.feed(b"Hello ") == [TextChunk(text="Hello ")]
    assert reader.feed(b"world\n[") == [TextChunk(text="world\n")]  # "[" may start an error line
    assert reader.feed(b"ok] more") == [TextChunk(text="[ok] more")]


def test_plain_text_holds_an_error_line_until_the_body_ends() -> None:
    reader = PlainTextReader()
    assert reader.feed(b"Answer so far\n[stream error] The stream broke") == [
        TextChunk(text="Answer so far\n")
    ]
    assert reader.feed(b". (upstream_error)\n") == []
    assert reader.close() == [Failed(message="The stream broke.", kind="upstream_error")]


def test_plain_text_error_line_starts_a_new_line_after_partial_text() -> None:
    body = render(PlainTextWriter(), ["no newline at the end"], Failed(message="m", kind="k"))
    assert body.endswith(b"no newline at the end\n[stream error] m (k)\n")
    assert read("text", [body]) == [
        TextChunk(text="no newline at the end\n"),
        Failed(message="m", kind="k"),
    ]


def test_plain_text_line_that_looks_like_an_error_but_is_followed_by_text_is_text() -> None:
    body = b"[stream error] quoted by the model (example)\nand more text"
    text, others = merged(read("text", [body]))
    assert text == body.decode()
    assert others == [Finished()]


def test_plain_text_marker_inside_a_line_is_text() -> None:
    body = b"see [stream error] x (y)\n"
    assert merged(read("text", [body])) == (body.decode(), [Finished()])


def test_plain_text_japanese_split_inside_a_character_comes_out_whole() -> None:
    body = "日本".encode()
    reader = PlainTextReader()
    assert reader.feed(body[:2]) == []
    assert reader.feed(body[2:4]) == [TextChunk(text="日")]
    assert reader.feed(body[4:]) == [TextChunk(text="本")]


def test_sse_ignores_comments_and_unknown_events() -> None:
    body = b': keep-alive\n\nevent: ping\ndata: {}\n\nevent: token\ndata: {"text": "x"}\n\n'
    assert read("sse", [body]) == [TextChunk(text="x")]


def test_sse_accepts_crlf_lines() -> None:
    body = b'event: token\r\ndata: {"text": "x"}\r\n\r\nevent: done\r\ndata: {}\r\n\r\n'
    assert read("sse", [body]) == [TextChunk(text="x"), Finished()]


@pytest.mark.parametrize(
    ("output_format", "body"),
    [
        ("sse", b"event: token\ndata: not json\n\n"),
        ("sse", b"event: token\ndata: []\n\n"),
        ("sse", b'event: token\ndata: {"text": 3}\n\n'),
        ("sse", b'event: token\ndata: {"text": "cut off"}\n'),
        ("ndjson", b"{not json}\n"),
        ("ndjson", b'{"event": "token"}\n'),
        ("ndjson", b'{"event": "token", "text": "\xff"}\n'),
    ],
)
def test_malformed_bodies_raise_reader_error(output_format: str, body: bytes) -> None:
    with pytest.raises(ReaderError):
        read(output_format, [body])


def test_ndjson_without_an_ending_has_no_outcome() -> None:
    # The caller decides what a body without done/error means (ask reports it as incomplete).
    assert read("ndjson", [b'{"event": "token", "text": "a"}\n']) == [TextChunk(text="a")]


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown format"):
        reader_for("xml")


def test_reader_types() -> None:
    assert isinstance(reader_for("text"), PlainTextReader)
    assert isinstance(reader_for("sse"), SseReader)
    assert isinstance(reader_for("ndjson"), NdjsonReader)


_FRAGMENTS = [*'ab [](){}:\n\r"\\xé日本語 😀', "[stream error]", "[stream", "\n\n", "data: "]
_TEXT = st.lists(st.sampled_from(_FRAGMENTS), max_size=12).map("".join)
_ENDING = st.one_of(
    st.builds(
        Finished,
        finish_reason=st.sampled_from(["eos_token", "length", "stop_sequence", None]),
        generated_tokens=st.one_of(st.none(), st.integers(0, 10_000)),
    ),
    st.builds(
        Failed,
        message=st.text(
            alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r"),
            min_size=1,
            max_size=40,
        ),
        kind=st.sampled_from(["upstream_error", "upstream_timeout", "model_error"]),
    ),
)


@settings(max_examples=200)
@given(
    output_format=st.sampled_from(["text", "sse", "ndjson"]),
    texts=st.lists(_TEXT, max_size=12),
    ending=_ENDING,
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=20),
)
def test_any_answer_cut_anywhere_reads_back_the_same(
    output_format: str, texts: list[str], ending: Ending, cuts: list[int]
) -> None:
    answer = "".join(texts)
    if output_format == "text":
        # Plain text cannot tell an answer whose last line quotes an error line from an error.
        last_line = answer.rstrip("\n").rpartition("\n")[2]
        assume(not last_line.startswith("[stream error]"))
    body = render(WRITERS[output_format](), texts, ending)
    text, others = merged(read(output_format, cut(body, cuts)))
    assert text == expected_text(output_format, answer, ending)
    assert others == [expected_ending(output_format, ending)]
