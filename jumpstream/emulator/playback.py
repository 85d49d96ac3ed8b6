"""Play a container reply out as event-stream messages, paced like a GPU and with faults.

Why a separate step: the stand-in model computes its whole answer at once; what makes a stream
realistic (time to first token, a steady token rate, keep-alives, arbitrary part boundaries,
pauses and failures after N tokens) is applied here, one emission at a time, using only
``asyncio.sleep`` so that one slow stream never blocks another.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from jumpstream.emulator import eventstream
from jumpstream.emulator.directives import Directives, Fault
from jumpstream.emulator.splitter import PartSplitter
from jumpstream.emulator.sse import SseStyle, data_event, error_response, keepalive
from jumpstream.emulator.streams import StreamRecord, StreamRegistry

#: With ``[[keepalive]]``, a keep-alive comment follows every this many tokens.
KEEPALIVE_EVERY = 4

#: The errors TGI itself puts in the stream for the in-stream fault kinds it owns.
TGI_ERRORS: dict[str, str] = {
    "validation": (
        "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 2048. "
        "Given: 1999 `inputs` tokens and 100 `max_new_tokens`"
    ),
    "overloaded": "Model is overloaded",
    "generation": (
        "Request failed during generation: Server error: CUDA out of memory. "
        "Tried to allocate 20.00 MiB"
    ),
}

STREAM_BROKEN_MESSAGE = (
    "The stream from the model container was broken: its connection was reset or closed "
    "before the response was complete."
)
TIMEOUT_MESSAGE = (
    "The model container did not finish sending the response within the invocation timeout."
)
INTERNAL_STREAM_MESSAGE = "An internal error occurred while streaming the response. Try again."


@dataclass(frozen=True, slots=True, kw_only=True)
class Emission:
    """Bytes the container sends at once, and how many generated tokens they account for."""

    data: bytes
    tokens: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Pace:
    """When the container sends: a delay before the first emission, then a steady rate."""

    first_delay: float = 0.2
    per_second: float = 20.0

    @property
    def interval(self) -> float:
        return 0.0 if self.per_second <= 0 else 1.0 / self.per_second


async def play(
    emissions: Sequence[Emission],
    *,
    directives: Directives,
    pace: Pace,
    record: StreamRecord,
    registry: StreamRegistry,
    style: SseStyle,
    seed: int,
) -> AsyncIterator[bytes]:
    """Yield event-stream messages for ``emissions``, honouring every directive.

    ``[[hold@N]]`` and in-stream faults at N apply before emission N (that is, after N were
    sent); an N past the end applies before the last emission, so that a fault always costs
    the stream its final event.
    """
    splitter = PartSplitter(directives.split, random_seed=seed if directives.split_random else None)
    last = max(len(emissions) - 1, 0)
    holds = {min(hold, last) for hold in directives.holds}
    fault = directives.stream_fault
    fault_at = None if fault is None else min(fault.after, last)
    loop = asyncio.get_running_loop()

    if directives.keepalive:
        for part in splitter.feed(keepalive(style)):
            yield eventstream.payload_part(part)
    await asyncio.sleep(pace.first_delay)
    due = loop.time()
    for position, emission in enumerate(emissions):
        if position in holds:
            for part in splitter.flush():
                yield eventstream.payload_part(part)
            await registry.hold(record)
            due = loop.time()
        if position:
            due += pace.interval
            await asyncio.sleep(max(0.0, due - loop.time()))
        if fault is not None and position == fault_at:
            for part in splitter.flush():
                yield eventstream.payload_part(part)
            async for message in _fault(fault, splitter, style):
                yield message
            return
        for part in splitter.feed(emission.data):
            yield eventstream.payload_part(part)
        record.tokens_sent += emission.tokens
        between = position < last and position % KEEPALIVE_EVERY == KEEPALIVE_EVERY - 1
        if directives.keepalive and between:
            for part in splitter.feed(keepalive(style)):
                yield eventstream.payload_part(part)
    for part in splitter.flush():
        yield eventstream.payload_part(part)


async def _fault(fault: Fault, splitter: PartSplitter, style: SseStyle) -> AsyncIterator[bytes]:
    if fault.kind in TGI_ERRORS:
        data = data_event(error_response(TGI_ERRORS[fault.kind], fault.kind), style)
        for part in [*splitter.feed(data), *splitter.flush()]:
            yield eventstream.payload_part(part)
    elif fault.kind == "stream_broken":
        yield eventstream.model_stream_error(STREAM_BROKEN_MESSAGE, eventstream.STREAM_BROKEN)
    elif fault.kind == "timeout":
        yield eventstream.model_stream_error(
            TIMEOUT_MESSAGE, eventstream.MODEL_INVOCATION_TIME_EXCEEDED
        )
    elif fault.kind == "internal_stream":
        yield eventstream.internal_stream_failure(INTERNAL_STREAM_MESSAGE)
    elif fault.kind == "stall":
        # Never end on our own: only the client going away (a cancellation) ends this.
        await asyncio.Event().wait()
    # "truncate": the stream just ends, without its final event.
