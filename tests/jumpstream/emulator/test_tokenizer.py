"""The stand-in model's toy tokenizer: pieces that rebuild the text, languages told apart."""

from __future__ import annotations

import itertools
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from jumpstream.emulator.tokenizer import (
    english_pieces,
    estimate_input_tokens,
    is_japanese,
    japanese_pieces,
)

KANJI = re.compile(r"[\u4e00-\u9fff]")


def test_english_pieces_keep_leading_spaces_and_rebuild_the_text() -> None:
    text = " Streaming lets a client show understanding, quickly."
    pieces = english_pieces(text)
    assert "".join(piece.text for piece in pieces) == text
    # Long words come in two pieces, the second without a space; punctuation stands alone.
    assert all(len(piece.text.strip()) <= 7 for piece in pieces)
    assert any(piece.text.isalpha() and not piece.text.startswith(" ") for piece in pieces)
    assert [piece.text for piece in pieces][-1] == "."
    assert "," in [piece.text for piece in pieces]


@settings(max_examples=200)
@given(
    st.text(alphabet="あいうえお漢字日本語カタカナ、。ABC xyz", max_size=60), st.integers(0, 10**6)
)
def test_japanese_pieces_rebuild_the_text(text: str, seed: int) -> None:
    pieces = japanese_pieces(text, seed)
    assert "".join(piece.text for piece in pieces) == text
    for piece, following in itertools.pairwise(pieces):
        if piece.held_back:
            assert KANJI.match(following.text)


def test_language_detection_and_length_estimate() -> None:
    assert is_japanese("What is 日本?")
    assert not is_japanese("What is Japan?")
    assert estimate_input_tokens("two words") == 2
    assert estimate_input_tokens("日本語 and more") == 5
    assert estimate_input_tokens("") == 0
