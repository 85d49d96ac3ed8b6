"""A toy tokenizer: cuts text into TGI-like pieces without any vocabulary file.

Why: the stand-in model must stream tokens that look like a real BPE tokenizer's (English word
pieces with their leading space, Japanese one or two characters at a time, now and then a
character held back over two tokens) and estimate prompt lengths for TGI's length validation,
all deterministically and offline.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

#: Kana, kanji, CJK punctuation and full-width forms: one token each in the length estimate.
_CJK = re.compile(
    r"[\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]"
)
_JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]")
_KANJI = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
_ENGLISH_PIECE = re.compile(r" ?[A-Za-z']+| ?[0-9]+| ?[^\sA-Za-z0-9]|\n| +")
_ASCII_RUN = re.compile(r"[ -~]+")
#: English words longer than this are cut in two, as BPE does with rarer words.
_LONG_WORD = 7
#: Latin runs inside Japanese text are cut into pieces of at most this many characters.
_ASCII_PIECE = 5


@dataclass(frozen=True, slots=True, kw_only=True)
class Piece:
    """A token's text; ``held_back`` marks the empty piece TGI sends before a split character."""

    text: str
    held_back: bool = False


def stable_hash(*parts: str | int) -> int:
    """A hash that is the same in every process (``hash()`` is salted per process)."""
    return zlib.crc32("\x1f".join(str(part) for part in parts).encode("utf-8"))


def is_japanese(text: str) -> bool:
    """True when ``text`` contains kana or kanji: the model then answers in Japanese."""
    return _JAPANESE.search(text) is not None


def estimate_input_tokens(text: str) -> int:
    """Whitespace-separated words plus one token per CJK character, a fair proxy for BPE."""
    cjk = len(_CJK.findall(text))
    words = len(_CJK.sub(" ", text).split())
    return cjk + words


def english_pieces(text: str) -> list[Piece]:
    """Word pieces with leading spaces; long words split in two like subword tokens."""
    pieces: list[Piece] = []
    for match in _ENGLISH_PIECE.finditer(text):
        piece = match.group()
        word = piece.lstrip(" ")
        if len(word) > _LONG_WORD and word.isalpha():
            cut = len(piece) - len(word) + (len(word) + 1) // 2
            pieces += [Piece(text=piece[:cut]), Piece(text=piece[cut:])]
        else:
            pieces.append(Piece(text=piece))
    return pieces


def japanese_pieces(text: str, seed: int) -> list[Piece]:
    """One or two characters a token; sometimes a kanji arrives after an empty token.

    TGI holds back a token that ends inside a multi-byte UTF-8 character and sends ``""``
    for it; the whole character comes with the next token. ``seed`` makes the choice of
    which characters split, and of one or two characters a token, stable for a prompt.
    """
    pieces: list[Piece] = []
    position = 0
    for run in _split_ascii_runs(text):
        if _ASCII_RUN.fullmatch(run):
            for start in range(0, len(run), _ASCII_PIECE):
                pieces.append(Piece(text=run[start : start + _ASCII_PIECE]))
            position += len(run)
            continue
        index = 0
        while index < len(run):
            roll = stable_hash(seed, position + index)
            size = 1 + roll % 2
            chunk = run[index : index + size]
            if _KANJI.match(chunk) and roll % 7 == 0:
                pieces.append(Piece(text="", held_back=True))
            pieces.append(Piece(text=chunk))
            index += size
        position += len(run)
    return pieces


def _split_ascii_runs(text: str) -> list[str]:
    runs: list[str] = []
    last = 0
    for match in _ASCII_RUN.finditer(text):
        if match.start() > last:
            runs.append(text[last : match.start()])
        runs.append(match.group())
        last = match.end()
    if last < len(text):
        runs.append(text[last:])
    return runs


def stand_in_tokenizer_json() -> str:
    """A `tokenizers` tokenizer.json that counts a prompt exactly as `estimate_input_tokens`
    does: each CJK character is a token, each whitespace-separated word another.

    What `jumpstream local` hands the relay for a model whose TGI does not report prompt tokens,
    so the relay's own count (streamer/prompt_tokens.py) meets the emulator's. Needs the
    `tokenizers` package (requirements-dev.txt).
    """
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers

    unknown = "[UNK]"  # every word is unknown: only the count matters
    tokenizer = Tokenizer(models.WordLevel(vocab={unknown: 0}, unk_token=unknown))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_CJK.pattern), behavior="isolated"),
            pre_tokenizers.WhitespaceSplit(),
        ]
    )
    return str(tokenizer.to_str())
