"""CPU per paced token (``relay_cpu_us_per_paced_token``, ``pipe_cpu_us_per_paced_token``): the
relay's next to a raw byte pipe's (pipe_floor.py), in alternating rounds.

A round sends the first capacity step's streams (64 at once, 25 tokens/s, 200-token answers)
through the relay, with capacity.py's client (every text must match), then the same streams
through the pipe (every answer whole); each process's CPU time from ``/proc`` over its half, per
token relayed. The relay's figure includes its share of each request's own cost (1/200 of it).

Why rounds, and why the median: one round is 64 streams' wake-ups on two cores that the emulator
and the client share with the process measured, and the same code over the same traffic costs
from one round to the next up to 1.6 times as much (44 to 81 µs a token, docs/performance.md).
One round made a figure that said more of the machine's moment than of the code. The median of
``Plan.paced_rounds`` rounds is the figure; ``relay_cpu_us_per_paced_token_max`` is the costliest
round, shown beside it. Alternating puts the relay and the pipe under the same conditions, round
by round, so their figures compare.
"""

from __future__ import annotations

import asyncio
import math
import statistics

from jumpstream.ask import request_body
from jumpstream.bench.capacity import Step, run_step
from jumpstream.bench.clients import (
    boto3_client,
    max_new_tokens_for,
    prompt,
    read_direct,
    upstream_body,
)
from jumpstream.bench.pipe_floor import byte_pipe
from jumpstream.bench.plan import BenchFailed, Plan
from jumpstream.bench.proc import process_cpu_seconds
from jumpstream.local import LocalStack
from jumpstream.procs import LineSink

__all__ = ["measure_paced_tokens"]


def measure_paced_tokens(stack: LocalStack, plan: Plan, *, sink: LineSink) -> dict[str, float]:
    """Alternating rounds through ``stack``'s relay and a byte pipe: the median CPU per token
    of each, and the relay's costliest round."""
    streams = plan.capacity_steps[0]
    text = prompt(plan.capacity_answer_tokens, "capacity")
    limit = max_new_tokens_for(plan.capacity_answer_tokens)
    reading = read_direct(boto3_client(stack.emulator_url), text, limit)
    body = request_body(text, max_new_tokens=limit)
    tokens = reading.tokens * streams
    relay_rounds: list[float] = []
    pipe_rounds: list[float] = []
    pipe_started = byte_pipe(
        stack,
        upstream_request_body=upstream_body(text, limit),
        tokens_each=reading.tokens,
        sink=sink,
    )
    with pipe_started as pipe:
        for _ in range(plan.paced_rounds):
            step = Step(streams=streams)
            before = process_cpu_seconds(stack.relay.pid)
            asyncio.run(run_step(stack.relay_url, body, reading.text, step))
            after = process_cpu_seconds(stack.relay.pid)
            if step.failures:
                raise BenchFailed(f"a paced stream through the relay failed: {step.failures[0]}")
            if before is not None and after is not None:
                relay_rounds.append((after - before) / tokens * 1e6)
            before = process_cpu_seconds(pipe.pid)
            pipe.run(streams)
            after = process_cpu_seconds(pipe.pid)
            if before is not None and after is not None:
                pipe_rounds.append((after - before) / tokens * 1e6)
    if not relay_rounds or not pipe_rounds:  # no /proc
        nan = math.nan
        return {
            "relay_cpu_us_per_paced_token": nan,
            "relay_cpu_us_per_paced_token_max": nan,
            "pipe_cpu_us_per_paced_token": nan,
        }
    return {
        "relay_cpu_us_per_paced_token": statistics.median(relay_rounds),
        "relay_cpu_us_per_paced_token_max": max(relay_rounds),
        "pipe_cpu_us_per_paced_token": statistics.median(pipe_rounds),
    }
