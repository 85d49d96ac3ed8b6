"""RelayPump: upstream bytes in, the pieces a caller sees out, with no HTTP and no threads."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from relay_support import (
    ScriptedStream,
    answer_events,
    error_event,
    final_event,
    token_event,
)
from streamer.decoder import StreamError
from streamer.model_text import MarkerRewriter, PassThrough
from streamer.relay import Ended, Failed, Piece, RelayPump, Text, tgi_error
from streamer.upstream import UpstreamError


def drain(script: list[bytes | BaseException], *, rinna: bool = False) -> list[Piece]:
    transform = MarkerRewriter("<NL>", "\n") if rinna else PassThrough()
    pump = RelayPump(ScriptedStream(script), transform=transform)
    pieces: list[Piece] = []
    for _ in range(len(script) + 2):
        pieces.extend(pump.pull())
        if pump.finished:
            break
    assert pump.finished
    assert pump.pull() == []
    return pieces


def texts(pieces: list[Piece]) -> str:
    return "".join(piece.text for piece in pieces if isinstance(piece, Text))


def test_a_whole_answer_is_its_texts_then_the_end() -> None:
    pieces = drain(answer_events(["Hello", ",", " world"]))
    assert pieces == [
        Text(text="Hello"),
        Text(text=","),
        Text(text=" world"),
        Ended(finish_reason="eos_token", generated_tokens=4),
    ]


def test_special_and_empty_tokens_are_never_shown() -> None:
    script = [
        token_event("<s>", special=True),
        token_event(""),
        token_event("猫"),
        token_event("<|endoftext|>", special=True),
        final_event("</s>", generated_text="猫", special=True),
    ]
    assert drain(script) == [
        Text(text="猫"),
        Ended(finish_reason="eos_token", generated_tokens=3),
    ]


def test_a_visible_final_token_is_shown_before_the_end() -> None:
    script = [token_event("a"), final_event("b", generated_text="ab", special=False)]
    assert texts(drain(script)) == "ab"


def test_missing_details_give_an_end_without_reason() -> None:
    script = [
        token_event("a"),
        final_event("</s>", generated_text="a", finish_reason=None, generated_tokens=None),
    ]
    assert drain(script)[-1] == Ended(finish_reason=None, generated_tokens=None)


def test_parts_cut_anywhere_give_the_same_pieces() -> None:
    whole = b"".join(answer_events(["日本", "語", "です"]))
    one_byte_parts: list[bytes | BaseException] = [whole[i : i + 1] for i in range(len(whole))]
    assert texts(drain(one_byte_parts)) == "日本語です"
    assert drain(one_byte_parts)[-1] == drain([whole])[-1]


@settings(max_examples=100)
@given(
    words=st.lists(st.text(min_size=1, max_size=5), min_size=1, max_size=6),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=12),
)
def test_any_cut_of_the_bytes_gives_the_same_text(words: list[str], cuts: list[int]) -> None:
    whole = b"".join(answer_events(words))
    bounds = sorted({0, len(whole), *(cut for cut in cuts if cut < len(whole))})
    parts: list[bytes | BaseException] = [whole[a:b] for a, b in itertools.pairwise(bounds)]
    pieces = drain(parts)
    assert texts(pieces) == "".join(words)
    assert isinstance(pieces[-1], Ended)


def test_rinna_newlines_split_across_tokens() -> None:
    pieces = drain(answer_events(["一行目<N", "L>二行目<", "NL>"]), rinna=True)
    assert texts(pieces) == "一行目\n二行目\n"


def test_a_held_back_marker_prefix_is_flushed_at_the_end() -> None:
    pieces = drain(answer_events(["ends with <N"]), rinna=True)
    assert texts(pieces) == "ends with <N"
    assert isinstance(pieces[-1], Ended)


@pytest.mark.parametrize(
    ("error_type", "kind", "status"),
    [
        ("validation", "validation", 422),
        ("overloaded", "overloaded", 503),
        ("generation", "model_error", 502),
        ("incomplete_generation", "model_error", 502),
        (None, "model_error", 502),
    ],
)
def test_tgi_errors_end_the_answer(error_type: str | None, kind: str, status: int) -> None:
    pieces = drain([token_event("partial"), error_event("it broke", error_type)])
    assert pieces[0] == Text(text="partial")
    failure = pieces[-1]
    assert isinstance(failure, Failed)
    assert (failure.error.kind, failure.error.status) == (kind, status)


def test_a_validation_message_reaches_the_caller_and_others_stay_in_the_log() -> None:
    validation = tgi_error(
        StreamError(message="Input validation error: `inputs` too long", error_type="validation")
    )
    assert "`inputs` too long" in validation.message
    generation = tgi_error(
        StreamError(message="CUDA out of memory at 0x7f00", error_type="generation")
    )
    assert "CUDA" not in generation.message
    assert "CUDA" in (generation.detail or "")
    assert tgi_error(StreamError(message="x", error_type="overloaded")).retry_after


def test_an_upstream_error_mid_stream_keeps_the_text_before_it() -> None:
    error = UpstreamError(kind="upstream_error", status=502, message="broken")
    pieces = drain([token_event("one"), error])
    assert pieces == [Text(text="one"), Failed(error=error)]


def test_held_back_text_is_sent_before_a_failure() -> None:
    error = UpstreamError(kind="upstream_timeout", status=504, message="slow")
    pieces = drain([token_event("a<N"), error], rinna=True)
    assert pieces == [Text(text="a"), Text(text="<N"), Failed(error=error)]


def test_a_stream_that_stops_without_a_final_event_is_incomplete() -> None:
    pieces = drain([token_event("so far")])
    assert pieces[0] == Text(text="so far")
    failure = pieces[-1]
    assert isinstance(failure, Failed)
    assert (failure.error.kind, failure.error.status) == ("incomplete_stream", 502)


def test_an_empty_stream_is_incomplete() -> None:
    (failure,) = drain([])
    assert isinstance(failure, Failed)
    assert failure.error.kind == "incomplete_stream"


@pytest.mark.parametrize(
    "garbage",
    [
        b"data: {not json}\n\n",
        b"data: [1, 2]\n\n",
        b'data: {"something": "else"}\n\n',
        b"data: \xff\xfe\n\n",
    ],
)
def test_bytes_that_are_not_a_tgi_stream_are_an_upstream_error(garbage: bytes) -> None:
    pieces = drain([token_event("ok"), garbage])
    failure = pieces[-1]
    assert isinstance(failure, Failed)
    assert (failure.error.kind, failure.error.status) == ("upstream_error", 502)
    # The decoder's own words quote the payload: they go to the log, not to the caller.
    assert "not json" not in failure.error.message
    assert failure.error.detail


def test_a_protocol_error_in_the_last_unterminated_line_is_an_upstream_error() -> None:
    failure = drain([token_event("ok"), b"data: {broken"])[-1]
    assert isinstance(failure, Failed)
    assert failure.error.kind == "upstream_error"


def test_nothing_is_read_after_the_end() -> None:
    stream = ScriptedStream([*answer_events(["a"]), token_event("after the end")])
    pump = RelayPump(stream, transform=PassThrough())
    pieces: list[Piece] = []
    while not pump.finished:
        pieces.extend(pump.pull())
    assert texts(pieces) == "a"
    assert next(stream) == token_event("after the end")


def test_close_closes_the_stream_once() -> None:
    closes: list[None] = []

    class CountingStream(ScriptedStream):
        def close(self) -> None:
            closes.append(None)

    pump = RelayPump(CountingStream([]), transform=PassThrough())
    pump.close()
    pump.close()
    assert len(closes) == 1


def test_tokens_received_counts_special_ones_too() -> None:
    pump = RelayPump(ScriptedStream(answer_events(["a", "b"])), transform=PassThrough())
    while not pump.finished:
        pump.pull()
    assert pump.tokens_received == 3
