"""The part splitter: where PayloadParts are cut, without sockets."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jumpstream.emulator.splitter import RANDOM_PART_MAX, PartSplitter


@pytest.mark.parametrize("size", [1, 3, 40])
def test_fixed_splits_are_exact_except_the_flushed_tail(size: int) -> None:
    splitter = PartSplitter(size)
    parts = splitter.feed(b"a" * 50) + splitter.feed("日本".encode()) + splitter.flush()
    assert b"".join(parts) == b"a" * 50 + "日本".encode()
    assert all(len(part) == size for part in parts[:-1])
    assert 0 < len(parts[-1]) <= size


@settings(max_examples=200)
@given(st.lists(st.binary(max_size=100), max_size=10), st.integers(0, 2**32 - 1))
def test_random_splits_keep_every_byte_and_stay_in_range(chunks: list[bytes], seed: int) -> None:
    def cut() -> list[bytes]:
        splitter = PartSplitter(random_seed=seed)
        parts = [part for chunk in chunks for part in splitter.feed(chunk)]
        return parts + splitter.flush()

    parts = cut()
    assert b"".join(parts) == b"".join(chunks)
    assert all(1 <= len(part) <= RANDOM_PART_MAX for part in parts)
    assert cut() == parts


def test_passthrough_keeps_each_write_as_one_part() -> None:
    splitter = PartSplitter()
    assert splitter.feed(b"abc") == [b"abc"]
    assert splitter.feed(b"") == []
    assert splitter.flush() == []


def test_part_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1 byte"):
        PartSplitter(0)
