"""The model-specific text rewrite: rinna's `<NL>` becomes a newline however tokens split it."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from streamer.model_text import (
    LeadingSpaceTrimmer,
    MarkerRewriter,
    PassThrough,
    TransformChain,
    transform_for,
)
from streamer.prompt_template import PromptTemplate


def rewrite(pieces: list[str]) -> str:
    rewriter = MarkerRewriter("<NL>", "\n")
    return "".join(rewriter.feed(piece) for piece in pieces) + rewriter.flush()


@pytest.mark.parametrize(
    ("pieces", "expected"),
    [
        (["こんにちは<NL>元気?"], "こんにちは\n元気?"),
        (["a<", "NL>b"], "a\nb"),
        (["a<N", "L>b"], "a\nb"),
        (["a<NL", ">b"], "a\nb"),
        (["<", "N", "L", ">"], "\n"),
        (["<NL<NL>"], "<NL\n"),
        (["<NL><NL>"], "\n\n"),
        (["a <b", " c"], "a <b c"),
        (["ends with <N"], "ends with <N"),
        (["x<NX"], "x<NX"),
    ],
)
def test_markers_become_newlines_across_splits(pieces: list[str], expected: str) -> None:
    assert rewrite(pieces) == expected


def test_only_a_possible_marker_prefix_is_held_back() -> None:
    rewriter = MarkerRewriter("<NL>", "\n")
    assert rewriter.feed("text<N") == "text"
    assert rewriter.feed("o") == "<No"
    assert rewriter.feed("plain") == "plain"
    assert rewriter.feed("<") == ""
    assert rewriter.flush() == "<"
    assert rewriter.flush() == ""


# Texts rich in the marker's characters, so splits land inside markers often.
_marker_texts = st.text(
    alphabet=st.sampled_from(["<", "N", "L", ">", "a", "改", "\n"]), max_size=40
)


@settings(max_examples=200)
@given(text=_marker_texts, cuts=st.lists(st.integers(min_value=0, max_value=40), max_size=10))
def test_any_split_gives_the_same_text_as_replacing_the_whole(text: str, cuts: list[int]) -> None:
    bounds = sorted({0, len(text), *(cut for cut in cuts if cut <= len(text))})
    pieces = [text[start:end] for start, end in itertools.pairwise(bounds)]
    assert rewrite(pieces) == text.replace("<NL>", "\n")


@settings(max_examples=200)
@given(pieces=st.lists(_marker_texts, max_size=8))
def test_released_text_is_never_taken_back(pieces: list[str]) -> None:
    """What went out is a prefix of the final answer: streaming never has to correct itself."""
    rewriter = MarkerRewriter("<NL>", "\n")
    sent = ""
    for piece in pieces:
        sent += rewriter.feed(piece)
        assert "".join(pieces).replace("<NL>", "\n").startswith(sent)


def test_markers_that_could_overlap_themselves_are_refused() -> None:
    with pytest.raises(ValueError, match="first character"):
        MarkerRewriter("aba", "x")
    with pytest.raises(ValueError, match="first character"):
        MarkerRewriter("<NL>", "<br>")


RINNA_LIKE = PromptTemplate(
    user="{content}", assistant="{content}", output_replacements=(("<NL>", "\n"),)
)
PLAIN = PromptTemplate(user="{content}", assistant="{content}")


@pytest.mark.parametrize(
    ("template", "rewrites"), [(RINNA_LIKE, True), (PLAIN, False), (None, False)]
)
def test_transform_follows_the_templates_output_replacements(
    template: PromptTemplate | None, rewrites: bool
) -> None:
    transform = transform_for(template)
    assert isinstance(transform, MarkerRewriter) is rewrites
    assert isinstance(transform, PassThrough) is not rewrites
    out = transform.feed("a<NL>b") + transform.flush()
    assert out == ("a\nb" if rewrites else "a<NL>b")


def test_stop_sequences_are_cut_before_the_templates_rewrites() -> None:
    transform = transform_for(RINNA_LIKE, stop_sequences=["<NL>ユーザー:"])
    assert isinstance(transform, TransformChain)
    pieces = ["一<N", "L>二<NL>", "ユー", "ザー:", "余分"]
    out = "".join(transform.feed(piece) for piece in pieces) + transform.flush()
    assert out == "一\n二"


def test_a_chain_passes_what_the_first_transform_held_through_the_next_at_the_end() -> None:
    transform = transform_for(RINNA_LIKE, stop_sequences=["<NL>ユーザー:"])
    assert transform.feed("a<NL>") == "a"
    assert transform.flush() == "\n"


@pytest.mark.parametrize(
    ("pieces", "expected"),
    [
        ([" Large", " language", " models"], "Large language models"),
        ([" ", " \n", "Hi  there", " "], "Hi  there "),
        (["Hi", " there"], "Hi there"),
        ([" ", "\n"], ""),
        ([], ""),
    ],
)
def test_a_chat_turn_loses_its_leading_whitespace_and_nothing_after(
    pieces: list[str], expected: str
) -> None:
    trimmer = LeadingSpaceTrimmer()
    assert "".join(trimmer.feed(piece) for piece in pieces) + trimmer.flush() == expected


@given(st.lists(st.text(), max_size=8))
def test_the_trimmed_answer_is_the_whole_answer_without_its_leading_whitespace(
    pieces: list[str],
) -> None:
    trimmer = LeadingSpaceTrimmer()
    assert "".join(trimmer.feed(piece) for piece in pieces) == "".join(pieces).lstrip()


def test_the_leading_whitespace_goes_after_the_rewrites_and_only_for_a_chat_turn() -> None:
    rinna = PromptTemplate(
        user="U: {content}", assistant="A: {content}", output_replacements=(("<NL>", "\n"),)
    )
    pieces = [" <N", "L>", " a<NL>b"]
    chat = transform_for(rinna, chat_turn=True)
    assert "".join(chat.feed(piece) for piece in pieces) + chat.flush() == "a\nb"
    plain = transform_for(rinna)
    assert "".join(plain.feed(piece) for piece in pieces) + plain.flush() == " \n a\nb"
