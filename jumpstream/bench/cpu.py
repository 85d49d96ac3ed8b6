"""CPU per token and per request (``relay_cpu_*``, ``direct_cpu_us_per_token``).

What the relay costs in CPU, next to what reading the same stream costs without it.

Method: CPU time, not wall time, so a busy machine does not distort it (time spent waiting for a
core is not counted, by either side):

- The relay: its process's user + system time from ``/proc/PID/stat`` (every thread of it),
  read before and after a batch of requests sent back to back on one kept-alive connection as
  the Web Adapter sends them, each reading taken once the relay has gone quiet (so a request's
  work after its last byte, the log line and the metrics, falls in its own batch). The relay is
  the one ``run.sh`` started, writing its log line per request to a pipe, as in Lambda.
- Direct: a boto3 reader of the same stream from the emulator, in this process
  (``time.thread_time``: the reading thread only, not the bench's threads that collect the
  children's output). Both parse the event stream with botocore and decode with the relay's
  decoder, so the ratio is what the relay adds to reading: an asynchronous HTTP client, the
  event loop, the writer, the server and one send to the caller per token.
- Both read the same prompts (their texts must match) from an emulator paced at 2,000 tokens/s:
  each token arrives on its own, as from a model, and costs a wake-up of its own. (Unpaced, a
  reader that falls behind gets many tokens per read and pays less than half as much per token;
  paced at 500 tokens/s, more. The figures compare runs at this one pace.)
- Per token: the mean CPU of a long answer minus that of a one-token answer, over the
  difference in tokens (the slope: no per-request cost in it). Per request: a one-token answer's
  mean CPU less its tokens at that per-token cost (the intercept: reading the request, the
  SageMaker call and its signature, the log line, the metrics).

The kernel counts CPU time in 10 ms ticks: each figure comes from hundreds of milliseconds of it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from jumpstream.bench.clients import (
    AdapterLikeClient,
    Reading,
    boto3_client,
    check_same_texts,
    max_new_tokens_for,
    prompt,
    read_direct,
)
from jumpstream.bench.plan import BenchFailed, Plan
from jumpstream.bench.proc import process_cpu_seconds
from jumpstream.local import LocalStack

__all__ = ["Batch", "CpuCost", "measure_cpu", "split_cost"]

#: The short answers' length: one token (and the EOS token).
_SHORT_ANSWER_TOKENS: Final = 1
#: How long the relay is left alone before its CPU time is read: its last request's work after
#: the last byte (closing the upstream, the log line) is done well within this.
_SETTLE_SECONDS: Final = 0.05


@dataclass(frozen=True, slots=True, kw_only=True)
class Batch:
    """``cpu_seconds`` spent reading ``answers`` answers of ``tokens`` tokens each."""

    cpu_seconds: float
    answers: int
    tokens: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CpuCost:
    """CPU seconds per token, and per request apart from its tokens."""

    per_token: float
    per_request: float


def split_cost(*, long: Batch, short: Batch) -> CpuCost:
    """The slope and intercept through a batch of long answers and a batch of short ones."""
    if long.tokens <= short.tokens:
        raise ValueError("the long answers must have more tokens than the short ones")
    long_each = long.cpu_seconds / long.answers
    short_each = short.cpu_seconds / short.answers
    per_token = (long_each - short_each) / (long.tokens - short.tokens)
    return CpuCost(per_token=per_token, per_request=short_each - short.tokens * per_token)


def _tokens_each(readings: Sequence[Reading]) -> int:
    """The one token count of answers to prompts of one length (decoded directly)."""
    counts = {reading.tokens for reading in readings}
    if len(counts) != 1:
        raise BenchFailed(f"answers of one length had different token counts: {sorted(counts)}")
    return counts.pop()


def _relay_cpu(pid: int) -> float:
    """The relay's CPU seconds so far, once it has gone quiet; NaN without /proc."""
    time.sleep(_SETTLE_SECONDS)
    seconds = process_cpu_seconds(pid)
    return math.nan if seconds is None else seconds


def _relay_batch(
    client: AdapterLikeClient, pid: int, prompts: Sequence[str], limit: int
) -> tuple[list[Reading], float]:
    before = _relay_cpu(pid)
    readings = [client.read(text, limit) for text in prompts]
    return readings, _relay_cpu(pid) - before


def _direct_batch(
    read: Callable[[str, int], Reading], prompts: Sequence[str], limit: int
) -> tuple[list[Reading], float]:
    before = time.thread_time()
    readings = [read(text, limit) for text in prompts]
    return readings, time.thread_time() - before


def measure_cpu(stack: LocalStack, plan: Plan) -> dict[str, float]:
    """Long and one-token answers, through the relay then directly; the same texts both ways."""
    long_prompts = [prompt(plan.cpu_answer_tokens, f"cpu {i}") for i in range(plan.cpu_answers)]
    short_prompts = [prompt(_SHORT_ANSWER_TOKENS, f"cpu {i}") for i in range(plan.cpu_requests)]
    long_limit = max_new_tokens_for(plan.cpu_answer_tokens)
    short_limit = max_new_tokens_for(_SHORT_ANSWER_TOKENS)
    warm_up = prompt(_SHORT_ANSWER_TOKENS, "cpu warm-up")

    with AdapterLikeClient(stack.relay_url) as client:
        client.read(warm_up, short_limit)
        relay_long, relay_long_cpu = _relay_batch(client, stack.relay.pid, long_prompts, long_limit)
        relay_short, relay_short_cpu = _relay_batch(
            client, stack.relay.pid, short_prompts, short_limit
        )

    boto3 = boto3_client(stack.emulator_url)

    def read(text: str, limit: int) -> Reading:
        return read_direct(boto3, text, limit)

    read(warm_up, short_limit)
    direct_long, direct_long_cpu = _direct_batch(read, long_prompts, long_limit)
    direct_short, direct_short_cpu = _direct_batch(read, short_prompts, short_limit)

    check_same_texts(direct_long, relay_long)
    check_same_texts(direct_short, relay_short)
    long_tokens, short_tokens = _tokens_each(direct_long), _tokens_each(direct_short)
    relay = split_cost(
        long=Batch(cpu_seconds=relay_long_cpu, answers=len(long_prompts), tokens=long_tokens),
        short=Batch(cpu_seconds=relay_short_cpu, answers=len(short_prompts), tokens=short_tokens),
    )
    direct = split_cost(
        long=Batch(cpu_seconds=direct_long_cpu, answers=len(long_prompts), tokens=long_tokens),
        short=Batch(cpu_seconds=direct_short_cpu, answers=len(short_prompts), tokens=short_tokens),
    )
    return {
        "relay_cpu_us_per_token": relay.per_token * 1e6,
        "direct_cpu_us_per_token": direct.per_token * 1e6,
        "relay_cpu_over_direct": relay.per_token / direct.per_token,
        "relay_cpu_ms_per_request": relay.per_request * 1e3,
    }
