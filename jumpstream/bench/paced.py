"""CPU per paced token (``relay_cpu_us_per_paced_token``, ``pipe_cpu_us_per_paced_token``): the
relay's next to a raw byte pipe's (pipe_floor.py), in rounds.

A round sends the first capacity step's streams (64 at once, 25 tokens/s, 200-token answers)
through the relay, with capacity.py's client (every text must match), and the same streams
through the pipe (every answer whole), one after the other, the relay first in even rounds and the
pipe first in odd ones; each process's CPU time from ``/proc`` over its half. The relay's figure
includes its share of each request's own cost (1/200 of it).

Why rounds: one round is 64 streams' wake-ups on two cores that the emulator and the client share
with the process measured, and the same code over the same traffic cost from 44 to 81 µs a token
from one round to the next (docs/performance.md): one round said more of the machine's moment
than of the code. Each figure is the process's CPU over all ``Plan.paced_rounds`` rounds per token
relayed in them (CPU adds up: a costly round counts in full), and
``relay_cpu_us_per_paced_token_max`` the relay's costliest round, shown beside it. In turn, so
that the relay and the pipe share the machine's moments alike.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence

from jumpstream.bench.capacity import CapacityAnswer, Step, run_step
from jumpstream.bench.pipe_floor import byte_pipe
from jumpstream.bench.plan import BenchFailed, Plan
from jumpstream.bench.proc import process_cpu_seconds
from jumpstream.local import LocalStack
from jumpstream.procs import LineSink

__all__ = ["measure_paced_tokens", "paced_figures"]


def paced_figures(
    relay_rounds: Sequence[float], pipe_rounds: Sequence[float], tokens_per_round: int
) -> dict[str, float]:
    """The figures from each round's CPU seconds, the relay's and the pipe's (NaN where there
    were none: no ``/proc``)."""
    if not relay_rounds or not pipe_rounds:
        nan = math.nan
        return {
            "relay_cpu_us_per_paced_token": nan,
            "relay_cpu_us_per_paced_token_max": nan,
            "pipe_cpu_us_per_paced_token": nan,
        }

    def per_token(seconds: float) -> float:
        return seconds / tokens_per_round * 1e6

    return {
        "relay_cpu_us_per_paced_token": per_token(sum(relay_rounds) / len(relay_rounds)),
        "relay_cpu_us_per_paced_token_max": per_token(max(relay_rounds)),
        "pipe_cpu_us_per_paced_token": per_token(sum(pipe_rounds) / len(pipe_rounds)),
    }


def measure_paced_tokens(
    stack: LocalStack, plan: Plan, answer: CapacityAnswer, *, sink: LineSink
) -> dict[str, float]:
    """Rounds through ``stack``'s relay and a byte pipe, in turn: `paced_figures`."""
    streams = plan.capacity_steps[0]
    relay_rounds: list[float] = []
    pipe_rounds: list[float] = []

    def through_relay() -> None:
        step = Step(streams=streams)
        asyncio.run(run_step(stack.relay_url, answer.body, answer.reading.text, step))
        if step.failures:
            raise BenchFailed(f"a paced stream through the relay failed: {step.failures[0]}")

    with byte_pipe(
        stack,
        upstream_request_body=answer.upstream_body,
        tokens_each=answer.reading.tokens,
        sink=sink,
    ) as pipe:
        relay_half = (stack.relay.pid, through_relay, relay_rounds)
        pipe_half = (pipe.pid, lambda: pipe.run(streams), pipe_rounds)
        for number in range(plan.paced_rounds):
            halves = (relay_half, pipe_half) if number % 2 == 0 else (pipe_half, relay_half)
            for pid, run, rounds in halves:
                before = process_cpu_seconds(pid)
                run()
                after = process_cpu_seconds(pid)
                if before is not None and after is not None:
                    rounds.append(after - before)
    return paced_figures(relay_rounds, pipe_rounds, answer.reading.tokens * streams)
