"""Stop sequences are cut from the streamed text however the tokens split them."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from streamer.stop_sequences import StopSequenceTrimmer

STOPS = ("\nUser:", "###")


def _run(trimmer: StopSequenceTrimmer, pieces: list[str]) -> list[str]:
    return [trimmer.feed(piece) for piece in pieces] + [trimmer.flush()]


def test_text_without_a_stop_goes_out_as_it_arrives() -> None:
    assert _run(StopSequenceTrimmer(STOPS), ["Hello", " world", "."]) == [
        "Hello",
        " world",
        ".",
        "",
    ]


def test_a_possible_start_of_a_stop_is_held_until_it_is_not_one() -> None:
    trimmer = StopSequenceTrimmer(STOPS)
    assert trimmer.feed("line one\n") == "line one"
    assert trimmer.feed("Use") == ""
    assert trimmer.feed("ful") == "\nUseful"
    assert not trimmer.stopped


def test_a_stop_split_across_tokens_is_cut_with_all_after_it() -> None:
    trimmer = StopSequenceTrimmer(STOPS)
    out = _run(trimmer, ["Paris.", "\n", "User", ":", " more"])
    assert "".join(out) == "Paris."
    assert trimmer.stopped


def test_a_held_prefix_is_released_at_the_end() -> None:
    assert "".join(_run(StopSequenceTrimmer(STOPS), ["Done", "\nUs"])) == "Done\nUs"


def test_no_stops_is_a_pass_through() -> None:
    assert _run(StopSequenceTrimmer(()), ["a\n", "User:"]) == ["a\n", "User:", ""]


@given(
    st.lists(st.sampled_from(["a", "b", "\n", "User", ":", "#", "##", "U", "ser:"]), max_size=30)
)
def test_output_is_the_text_cut_before_the_first_stop(pieces: list[str]) -> None:
    text = "".join(pieces)
    positions = [i for stop in STOPS if (i := text.find(stop)) >= 0]
    expected = text[: min(positions)] if positions else text
    assert "".join(_run(StopSequenceTrimmer(STOPS), pieces)) == expected
