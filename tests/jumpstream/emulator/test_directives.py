"""Directive parsing, the part splitter and the SSE spellings, without sockets."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jumpstream.emulator.directives import (
    IN_STREAM_FAULTS,
    PRE_STREAM_FAULTS,
    DirectiveError,
    Directives,
    Fault,
    parse_directives,
)
from jumpstream.emulator.splitter import RANDOM_PART_MAX, PartSplitter
from jumpstream.emulator.sse import SseStyle, data_event, keepalive


def test_no_directive_leaves_the_prompt_alone() -> None:
    assert parse_directives("What is [x]? [[not a directive]]") == (
        "What is [x]? [[not a directive]]",
        Directives(),
    )


def test_directives_are_stripped_wherever_they_are() -> None:
    prompt, directives = parse_directives(
        "[[keepalive]]Hello [[fault:stream_broken@3]]world[[split:5]][[nospace]][[crlf]]"
    )
    assert prompt == "Hello world"
    assert directives == Directives(
        faults=(Fault(kind="stream_broken", after=3),),
        split=5,
        keepalive=True,
        nospace=True,
        crlf=True,
    )


def test_holds_length_and_random_split() -> None:
    _, directives = parse_directives("[[hold@2]] [[hold]] [[length:300]] [[split:random]]")
    assert directives.holds == (2, 0)
    assert directives.answer_length == 300
    assert directives.split_random
    assert directives.split is None


@pytest.mark.parametrize("kind", sorted(PRE_STREAM_FAULTS | IN_STREAM_FAULTS))
def test_every_fault_kind_parses_with_and_without_a_count(kind: str) -> None:
    assert parse_directives(f"x[[fault:{kind}]]")[1].faults == (Fault(kind=kind),)
    assert parse_directives(f"x[[fault:{kind}@7]]")[1].faults == (Fault(kind=kind, after=7),)


def test_the_first_pre_stream_fault_answers_and_the_earliest_stream_fault_fires() -> None:
    _, directives = parse_directives(
        "[[fault:truncate@9]][[fault:unavailable]][[fault:stream_broken@2]][[fault:throttling]]"
    )
    assert directives.pre_stream_fault == Fault(kind="unavailable")
    assert directives.stream_fault == Fault(kind="stream_broken", after=2)
    assert Directives().pre_stream_fault is None
    assert Directives().stream_fault is None


@pytest.mark.parametrize(
    "text",
    [
        "[[fault:nonsense]]",
        "[[fault]]",
        "[[fault:stall@x]]",
        "[[split:0]]",
        "[[split:abc]]",
        "[[split]]",
        "[[hold@-1]]",
        "[[length]]",
        "[[length:20001]]",
        "[[keepalive:yes]]",
    ],
)
def test_malformed_directives_are_refused(text: str) -> None:
    with pytest.raises(DirectiveError):
        parse_directives(f"hi {text}")


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


@pytest.mark.parametrize(
    ("style", "expected"),
    [
        (SseStyle(), 'data: {"text":"日本"}\n\n'),
        (SseStyle(space=False), 'data:{"text":"日本"}\n\n'),
        (SseStyle(crlf=True), 'data: {"text":"日本"}\r\n\r\n'),
    ],
)
def test_data_events_are_compact_raw_utf8_json(style: SseStyle, expected: str) -> None:
    assert data_event({"text": "日本"}, style) == expected.encode("utf-8")


def test_keepalive_is_an_empty_comment() -> None:
    assert keepalive() == b":\n\n"
    assert keepalive(SseStyle(crlf=True)) == b":\r\n\r\n"
