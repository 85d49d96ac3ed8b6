"""Play a container reply out part by part, paced like a GPU and with faults.

Why a separate step: the stand-in model computes its whole answer at once; what makes a stream
realistic (time to first token, a steady token rate, keep-alives, arbitrary part boundaries,
pauses and failures after N tokens) is applied here, one emission at a time, using only
``asyncio.sleep`` so that one slow stream never blocks another. It is the same for every engine:
an engine gives the bytes (its emissions, its keep-alive, its own error report), this module
decides when they go. What plays out is the payload of each PayloadPart, and a
:class:`~jumpstream.emulator.stream_faults.StreamFault` where SageMaker itself fails the reply;
:func:`event_stream` frames them for InvokeEndpointWithResponseStream.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from dataclasses import dataclass

from jumpstream.emulator import eventstream
from jumpstream.emulator.directives import ENGINE_FAULTS, SAGEMAKER_STREAM_FAULTS, Directives
from jumpstream.emulator.splitter import PartSplitter
from jumpstream.emulator.stream_faults import StreamFault
from jumpstream.emulator.streams import StreamRecord, StreamRegistry

#: With ``[[keepalive]]``, a keep-alive follows every this many tokens.
KEEPALIVE_EVERY = 4

#: The bytes an engine writes for one of its own failures (a kind of ENGINE_FAULTS) once it has
#: sent this many tokens.
EngineFailure = Callable[[str, int], bytes]
#: What a reply plays out: the bytes of each PayloadPart, or SageMaker's failure of the reply.
Played = bytes | StreamFault


@dataclass(frozen=True, slots=True, kw_only=True)
class Emission:
    """Bytes the container sends at once, and how many generated tokens they account for
    (none for what frames the tokens: vLLM's first chunk, its usage chunk, ``[DONE]``)."""

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
    failure: EngineFailure,
    keepalive: bytes,
    directives: Directives,
    pace: Pace,
    record: StreamRecord,
    registry: StreamRegistry,
    seed: int,
) -> AsyncGenerator[Played, None]:
    """Yield the parts of ``emissions`` (and any SageMaker failure), honouring every directive.

    ``[[hold@N]]`` and in-stream faults at N apply once N tokens were sent, before the emission
    with the next token; an N past the end applies before the last token's emission, so that a
    fault always costs the stream its final event. Emissions without tokens go out with their
    neighbours, unpaced.
    """
    splitter = PartSplitter(directives.split, random_seed=seed if directives.split_random else None)
    holds = {_emission_after(emissions, hold) for hold in directives.holds}
    fault = directives.stream_fault
    fault_at = None if fault is None else _emission_after(emissions, fault.after)
    total = sum(emission.tokens for emission in emissions)
    loop = asyncio.get_running_loop()

    if directives.keepalive:
        for part in splitter.feed(keepalive):
            yield part
    await asyncio.sleep(pace.first_delay)
    due = loop.time()
    paced = False
    for position, emission in enumerate(emissions):
        if position in holds:
            for part in splitter.flush():
                yield part
            await registry.hold(record)
            due = loop.time()
        if emission.tokens and paced:
            due += pace.interval
            await asyncio.sleep(max(0.0, due - loop.time()))
        if fault is not None and position == fault_at:
            for part in splitter.flush():
                yield part
            if fault.kind in ENGINE_FAULTS:
                report = failure(fault.kind, record.tokens_sent)
                for part in [*splitter.feed(report), *splitter.flush()]:
                    yield part
            elif fault.kind in SAGEMAKER_STREAM_FAULTS:
                yield StreamFault(fault.kind)
            elif fault.kind == "stall":
                # Never end on our own: only the client going away (a cancellation) ends this.
                await asyncio.Event().wait()
            # "truncate": the stream just ends, without its final event.
            return
        for part in splitter.feed(emission.data):
            yield part
        record.tokens_sent += emission.tokens
        paced = paced or bool(emission.tokens)
        # Every KEEPALIVE_EVERY tokens, unless the stream is about to end anyway.
        due_keepalive = emission.tokens and record.tokens_sent % KEEPALIVE_EVERY == 0
        if directives.keepalive and due_keepalive and record.tokens_sent < total:
            for part in splitter.feed(keepalive):
                yield part
    for part in splitter.flush():
        yield part


def _emission_after(emissions: Sequence[Emission], tokens: int) -> int:
    """The position of the emission that carries the token after the first ``tokens``, at most
    the last token's; the first emission when none carries a token (an error reply)."""
    total = sum(emission.tokens for emission in emissions)
    wanted = min(tokens, max(total - 1, 0))
    sent = 0
    for position, emission in enumerate(emissions):
        if emission.tokens and sent + emission.tokens > wanted:
            return position
        sent += emission.tokens
    return 0


async def event_stream(played: AsyncGenerator[Played, None]) -> AsyncIterator[bytes]:
    """``played`` as InvokeEndpointWithResponseStream sends it: event-stream messages."""
    async with contextlib.aclosing(played):
        async for item in played:
            yield item.event() if isinstance(item, StreamFault) else eventstream.payload_part(item)
