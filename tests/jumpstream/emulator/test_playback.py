"""Playback: pacing, keep-alives, holds, splits and faults, driven without sockets."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from botocore.eventstream import EventStreamBuffer

from jumpstream.emulator.directives import parse_directives
from jumpstream.emulator.engine_tgi import stream_failure
from jumpstream.emulator.playback import Emission, Pace, event_stream, play
from jumpstream.emulator.sse import SseStyle, data_event, keepalive
from jumpstream.emulator.streams import StreamRecord, StreamRegistry

FAST = Pace(first_delay=0, per_second=0)
#: Hang guard for the async tests; none of them needs more than a few milliseconds.
GUARD_SECONDS = 10


def emissions(count: int) -> list[Emission]:
    return [Emission(data=data_event(i), tokens=1) for i in range(count)]


def decode(messages: list[bytes]) -> list[Any]:
    buffer = EventStreamBuffer()
    for message in messages:
        buffer.add_data(message)
    return list(buffer)


def payloads(messages: list[bytes]) -> list[bytes]:
    return [message.payload for message in decode(messages)]


def start(
    directives_text: str, count: int
) -> tuple[AsyncIterator[bytes], StreamRecord, StreamRegistry]:
    _, directives = parse_directives(directives_text)
    registry = StreamRegistry()
    record = registry.open("s")
    played = play(
        emissions(count),
        failure=stream_failure(SseStyle()),
        keepalive=keepalive(),
        directives=directives,
        pace=FAST,
        record=record,
        registry=registry,
        seed=1,
    )
    return event_stream(played), record, registry


async def drain(stream: AsyncIterator[bytes]) -> list[bytes]:
    return [message async for message in stream]


def run(coroutine: Any) -> Any:
    async def guarded() -> Any:
        return await asyncio.wait_for(coroutine, GUARD_SECONDS)

    return asyncio.run(guarded())


def test_each_emission_becomes_one_payload_part_and_counts_tokens() -> None:
    stream, record, _ = start("", 5)
    messages = run(drain(stream))
    assert payloads(messages) == [emission.data for emission in emissions(5)]
    assert record.tokens_sent == 5


def test_keepalives_come_first_and_between_tokens_but_not_last() -> None:
    stream, _, _ = start("[[keepalive]]", 8)
    parts = payloads(run(drain(stream)))
    assert parts[0] == keepalive()
    assert parts[-1] != keepalive()
    assert parts.count(keepalive()) == 2
    assert [part for part in parts if part != keepalive()] == [e.data for e in emissions(8)]


def test_hold_waits_for_release_after_n_tokens() -> None:
    async def scenario() -> None:
        stream, record, registry = start("[[hold@2]]", 4)
        received = [await anext(stream), await anext(stream)]
        following = asyncio.ensure_future(anext(stream))
        while not record.held:
            await asyncio.sleep(0)
        assert record.tokens_sent == 2
        assert not following.done()
        assert registry.release() == 1
        received.append(await following)
        received += await drain(stream)
        assert payloads(received) == [e.data for e in emissions(4)]
        assert not record.held

    run(scenario())


@pytest.mark.parametrize("kind", ["validation", "overloaded", "generation"])
def test_tgi_error_faults_end_the_stream_with_an_error_event(kind: str) -> None:
    stream, record, _ = start(f"[[fault:{kind}@2]]", 5)
    parts = payloads(run(drain(stream)))
    assert parts[:2] == [e.data for e in emissions(2)]
    error = json.loads(parts[2].removeprefix(b"data: "))
    assert error["error_type"] == kind
    assert error["error"]
    assert len(parts) == 3
    assert record.tokens_sent == 2


@pytest.mark.parametrize(
    ("kind", "exception_type", "code"),
    [
        ("stream_broken", "ModelStreamError", "StreamBroken"),
        ("timeout", "ModelStreamError", "ModelInvocationTimeExceeded"),
        ("internal_stream", "InternalStreamFailure", None),
    ],
)
def test_sagemaker_stream_faults_end_with_the_modelled_exception(
    kind: str, exception_type: str, code: str | None
) -> None:
    stream, _, _ = start(f"[[fault:{kind}@1]]", 5)
    messages = decode(run(drain(stream)))
    assert [m.headers[":message-type"] for m in messages] == ["event", "exception"]
    assert messages[1].headers[":exception-type"] == exception_type
    assert json.loads(messages[1].payload).get("ErrorCode") == code


def test_a_fault_past_the_end_still_costs_the_final_event() -> None:
    stream, record, _ = start("[[fault:truncate@99]]", 5)
    assert payloads(run(drain(stream))) == [e.data for e in emissions(4)]
    assert record.tokens_sent == 4


def test_split_parts_cross_event_boundaries_and_flush_before_a_fault() -> None:
    stream, _, _ = start("[[split:4]][[fault:internal_stream@3]]", 5)
    messages = decode(run(drain(stream)))
    parts = [m.payload for m in messages if m.headers[":message-type"] == "event"]
    assert all(len(part) == 4 for part in parts[:-1])
    assert b"".join(parts) == b"".join(e.data for e in emissions(3))
    assert messages[-1].headers[":exception-type"] == "InternalStreamFailure"


def test_stall_never_ends_on_its_own_and_stops_when_cancelled() -> None:
    async def scenario() -> None:
        stream, record, _ = start("[[fault:stall@1]]", 3)
        await anext(stream)
        following = asyncio.ensure_future(anext(stream))
        for _ in range(100):
            await asyncio.sleep(0)
        assert not following.done()
        assert record.tokens_sent == 1
        following.cancel()
        with pytest.raises(asyncio.CancelledError):
            await following

    run(scenario())


def framed(tokens: list[int]) -> list[Emission]:
    """Emissions carrying these many tokens each (0: what frames the tokens, as vLLM's first
    chunk, its usage chunk and [DONE] do)."""
    return [
        Emission(data=data_event({"n": i, "tokens": n}), tokens=n) for i, n in enumerate(tokens)
    ]


def play_framed(directives_text: str, tokens: list[int]) -> tuple[list[bytes], StreamRecord]:
    _, directives = parse_directives(directives_text)
    registry = StreamRegistry()
    record = registry.open("s")
    played = play(
        framed(tokens),
        failure=lambda kind, sent: f"{kind} after {sent}".encode(),
        keepalive=b"~",
        directives=directives,
        pace=FAST,
        record=record,
        registry=registry,
        seed=1,
    )
    return payloads(run(drain(event_stream(played)))), record


def test_faults_count_tokens_not_emissions() -> None:
    # A role chunk, four tokens, a usage chunk and [DONE]: after two tokens means three parts.
    parts, record = play_framed("[[fault:generation@2]]", [0, 1, 1, 1, 1, 0, 0])
    assert parts == [e.data for e in framed([0, 1, 1, 1, 1, 0, 0])[:3]] + [b"generation after 2"]
    assert record.tokens_sent == 2


def test_a_fault_at_zero_comes_after_what_precedes_the_first_token() -> None:
    parts, _ = play_framed("[[fault:validation]]", [0, 1, 1, 0])
    assert parts == [framed([0])[0].data, b"validation after 0"]


def test_a_fault_past_the_end_costs_the_last_token_and_the_framing_after_it() -> None:
    parts, record = play_framed("[[fault:truncate@50]]", [0, 1, 1, 1, 0, 0])
    assert parts == [e.data for e in framed([0, 1, 1, 1, 0, 0])[:3]]
    assert record.tokens_sent == 2


def test_a_whole_reply_fails_before_its_one_emission() -> None:
    parts, record = play_framed("[[fault:overloaded@7]]", [12])
    assert parts == [b"overloaded after 0"]
    assert record.tokens_sent == 0


def test_a_reply_without_tokens_fails_before_its_first_emission() -> None:
    parts, _ = play_framed("[[fault:generation@3]]", [0])
    assert parts == [b"generation after 0"]


def test_keepalives_follow_tokens_but_never_precede_only_framing() -> None:
    parts, _ = play_framed("[[keepalive]]", [0, 1, 1, 1, 1, 0, 0])
    assert parts[0] == b"~"
    assert parts.count(b"~") == 1  # the 4th token is the last: no keep-alive before the framing
    parts, _ = play_framed("[[keepalive]]", [0, 1, 1, 1, 1, 1, 0])
    assert parts.count(b"~") == 2
    assert parts.index(b"~", 1) == 6  # after the role chunk and four tokens


def test_holds_count_tokens_too() -> None:
    async def scenario() -> None:
        _, directives = parse_directives("[[hold@1]]")
        registry = StreamRegistry()
        record = registry.open("s")
        played = play(
            framed([0, 1, 1, 0]),
            failure=lambda kind, sent: b"",
            keepalive=b"",
            directives=directives,
            pace=FAST,
            record=record,
            registry=registry,
            seed=1,
        )
        first_two = [await anext(played), await anext(played)]
        following = asyncio.ensure_future(anext(played))
        while not record.held:
            await asyncio.sleep(0)
        assert first_two == [e.data for e in framed([0, 1])]
        assert record.tokens_sent == 1
        registry.release()
        rest = [await following] + [part async for part in played]
        assert rest == [e.data for e in framed([0, 1, 1, 0])[2:]]

    run(scenario())
