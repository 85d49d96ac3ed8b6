"""Directive parsing: what a prompt asks of the emulator, without sockets."""

from __future__ import annotations

import pytest

from jumpstream.emulator.directives import (
    IN_STREAM_FAULTS,
    PRE_STREAM_FAULTS,
    DirectiveError,
    Directives,
    Fault,
    parse_directives,
    read_directives,
)


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


def test_markdown_asks_for_the_markdown_sample() -> None:
    assert parse_directives("Show me code [[markdown]]") == (
        "Show me code ",
        Directives(markdown=True),
    )


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
        "[[markdown:python]]",
    ],
)
def test_malformed_directives_are_refused(text: str) -> None:
    with pytest.raises(DirectiveError):
        parse_directives(f"hi {text}")


def test_directives_are_read_from_each_engines_prompt_field() -> None:
    for key in ("inputs", "prompt"):
        body, directives = read_directives({key: "Hi [[split:3]]", "max_tokens": 5})
        assert body == {key: "Hi ", "max_tokens": 5}
        assert directives.split == 3


def test_directives_in_messages_are_stripped_from_every_message_and_all_apply() -> None:
    messages = [
        {"role": "system", "content": "Be brief.[[keepalive]]"},
        {"role": "user", "content": [{"type": "text", "text": "Hi [[fault:generation@2]]"}]},
        {"role": "assistant", "content": None},
    ]
    body, directives = read_directives({"messages": messages, "stream": True})
    assert body == {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Hi "}]},
            {"role": "assistant", "content": None},
        ],
        "stream": True,
    }
    assert directives == Directives(faults=(Fault(kind="generation", after=2),), keepalive=True)
    assert messages[0]["content"] == "Be brief.[[keepalive]]"  # the caller's body is not changed


def test_bodies_of_other_shapes_are_left_for_the_engine_to_judge() -> None:
    for body in ([1, 2], "text", {"inputs": 5}, {"messages": "hi"}, {"messages": [1, {"x": 1}]}):
        assert read_directives(body) == (body, Directives())


def test_a_malformed_directive_in_a_message_is_still_refused() -> None:
    with pytest.raises(DirectiveError):
        read_directives({"messages": [{"role": "user", "content": "[[split:0]]"}]})
