"""CPU per paced token (``relay_cpu_us_per_paced_token``, ``pipe_cpu_us_per_paced_token``,
``fastapi_cpu_us_per_paced_token``): the relay's next to a raw byte pipe's (pipe_floor.py) and
the FastAPI baseline's (fastapi_baseline.py), in rounds.

A round sends the first capacity step's streams (64 at once, 25 tokens/s, 200-token answers)
through the relay and the FastAPI baseline, with capacity.py's client (every text must match),
and through the pipe (every answer whole), one after the other (the relay and the pipe first in
turn, the baseline last); each process's CPU time from ``/proc`` over its part. The relay's and
the baseline's figures include their share of each request's own cost (1/200 of it).

Why rounds: one round is 64 streams' wake-ups on two cores that the emulator and the client share
with the process measured, and the same code over the same traffic cost from 44 to 81 µs a token
from one round to the next (docs/performance.md): one round said more of the machine's moment
than of the code. Each figure is the process's CPU over all ``Plan.paced_rounds`` rounds per token
relayed in them (CPU adds up: a costly round counts in full), and
``relay_cpu_us_per_paced_token_max`` the relay's costliest round, shown beside it. In turn, so
that the relay and the pipe share the machine's moments alike, each of them after the baseline in
every other round.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

from jumpstream.bench.capacity import CapacityAnswer, paced_step
from jumpstream.bench.fastapi_baseline import StreamingBaseline
from jumpstream.bench.pipe_floor import byte_pipe
from jumpstream.bench.plan import BenchFailed, Plan
from jumpstream.bench.proc import process_cpu_seconds
from jumpstream.local import LocalStack
from jumpstream.procs import LineSink

__all__ = ["measure_paced_tokens", "paced_figures"]


def paced_figures(
    relay_rounds: Sequence[float],
    pipe_rounds: Sequence[float],
    fastapi_rounds: Sequence[float],
    tokens_per_round: int,
) -> dict[str, float]:
    """The figures from each round's CPU seconds, the relay's, the pipe's and the baseline's
    (NaN where there were none: no ``/proc``)."""
    if not relay_rounds or not pipe_rounds or not fastapi_rounds:
        nan = math.nan
        return {
            "relay_cpu_us_per_paced_token": nan,
            "relay_cpu_us_per_paced_token_max": nan,
            "pipe_cpu_us_per_paced_token": nan,
            "fastapi_cpu_us_per_paced_token": nan,
        }

    def per_token(seconds: float) -> float:
        return seconds / tokens_per_round * 1e6

    return {
        "relay_cpu_us_per_paced_token": per_token(sum(relay_rounds) / len(relay_rounds)),
        "relay_cpu_us_per_paced_token_max": per_token(max(relay_rounds)),
        "pipe_cpu_us_per_paced_token": per_token(sum(pipe_rounds) / len(pipe_rounds)),
        "fastapi_cpu_us_per_paced_token": per_token(sum(fastapi_rounds) / len(fastapi_rounds)),
    }


def _round_through(name: str, url: str, body: bytes, expected: str, streams: int) -> None:
    """One round's streams through ``name`` at ``url``; any failure fails the bench."""
    step = paced_step(url, body, expected, streams)
    if step.failures:
        raise BenchFailed(f"a paced stream through {name} failed: {step.failures[0]}")


def measure_paced_tokens(
    stack: LocalStack,
    baseline: StreamingBaseline,
    plan: Plan,
    answer: CapacityAnswer,
    *,
    sink: LineSink,
) -> dict[str, float]:
    """Rounds through ``stack``'s relay, a byte pipe and ``baseline``: `paced_figures`.

    The relay and the pipe alternate which goes first, as the bench has measured them since it
    had rounds (their ratio is what runs are compared by); the baseline goes last in each round,
    so each of the two follows it in every other round."""
    streams, expected = plan.capacity_steps[0], answer.reading.text
    relay_rounds: list[float] = []
    pipe_rounds: list[float] = []
    fastapi_rounds: list[float] = []
    with byte_pipe(
        stack,
        upstream_request_body=answer.upstream_body,
        tokens_each=answer.reading.tokens,
        sink=sink,
    ) as pipe:
        relay_part = (
            stack.relay.pid,
            functools.partial(
                _round_through, "the relay", stack.relay_url, answer.body, expected, streams
            ),
            relay_rounds,
        )
        pipe_part = (pipe.pid, functools.partial(pipe.run, streams), pipe_rounds)
        fastapi_part = (
            baseline.pid,
            functools.partial(
                _round_through,
                "the FastAPI baseline",
                baseline.url,
                answer.upstream_body,
                expected,
                streams,
            ),
            fastapi_rounds,
        )
        for number in range(plan.paced_rounds):
            pair = (relay_part, pipe_part) if number % 2 == 0 else (pipe_part, relay_part)
            for pid, run, rounds in (*pair, fastapi_part):
                before = process_cpu_seconds(pid)
                run()
                after = process_cpu_seconds(pid)
                if before is not None and after is not None:
                    rounds.append(after - before)
    return paced_figures(relay_rounds, pipe_rounds, fastapi_rounds, answer.reading.tokens * streams)
