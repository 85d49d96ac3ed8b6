"""How much of each measurement to do, how the emulator paces each stack, and the one failure.

A plan is sample counts only: every measurement runs the same way in ``--quick`` and in a full
run, on fewer samples.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from jumpstream.local import DEFAULT_MODEL_ID

__all__ = [
    "CPU_PACE_TOKENS_PER_SECOND",
    "FIRST_TOKEN_DELAY_SECONDS",
    "FULL",
    "MAX_NEW_TOKENS_LIMIT",
    "PACE_TOKENS_PER_SECOND",
    "QUICK",
    "REQUEST_TIMEOUT_SECONDS",
    "START_TIMEOUT_SECONDS",
    "BenchFailed",
    "BenchOptions",
    "Plan",
]

#: The paced emulator (time to first token, concurrency): a first token after this long, then
#: this many tokens per second, as a model writes them.
FIRST_TOKEN_DELAY_SECONDS: Final = 0.05
PACE_TOKENS_PER_SECOND: Final = 25.0
#: The CPU measurement's pace: each token still comes on its own, as from a model (the relay
#: spends well under the 0.5 ms between two on one), yet a 2,000-token answer takes a second.
#: Unpaced, a reader that falls behind gets many tokens per read and pays less per token than
#: it would in production.
CPU_PACE_TOKENS_PER_SECOND: Final = 2000.0
#: The relay's MAX_NEW_TOKENS_LIMIT in the bench: above the longest answer asked for.
MAX_NEW_TOKENS_LIMIT: Final = 4096
REQUEST_TIMEOUT_SECONDS: Final = 120.0
#: How long a process the bench starts may take to answer its first ``GET /health``.
START_TIMEOUT_SECONDS: Final = 60.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """How much of each measurement to do."""

    ttft_pairs: int
    ttft_answer_tokens: int
    throughput_tokens: int
    throughput_repeats: int
    decoder_tokens: int
    decoder_rounds: int
    cold_starts: int
    concurrent_streams: int
    concurrent_answer_tokens: int
    #: Long answers whose CPU per token is measured, and their length.
    cpu_answers: int
    cpu_answer_tokens: int
    #: One-token answers whose CPU per request is measured.
    cpu_requests: int
    #: Requests whose CPU the upstream pool measurement averages (pool.py).
    pool_requests: int
    #: The capacity steps (paced streams at once, capacity.py) and each answer's length.
    capacity_steps: tuple[int, ...]
    capacity_answer_tokens: int
    #: Rounds of the first capacity step, through the relay and a byte pipe in turn, over which
    #: the CPU per paced token is taken (paced.py).
    paced_rounds: int


FULL: Final = Plan(
    ttft_pairs=30,
    ttft_answer_tokens=4,
    throughput_tokens=2000,
    throughput_repeats=3,
    decoder_tokens=20_000,
    decoder_rounds=9,
    cold_starts=10,
    concurrent_streams=64,
    concurrent_answer_tokens=75,
    cpu_answers=5,
    cpu_answer_tokens=2000,
    cpu_requests=500,
    pool_requests=200,
    capacity_steps=(64, 128, 256, 512, 1024),
    capacity_answer_tokens=200,
    paced_rounds=5,
)
QUICK: Final = Plan(
    ttft_pairs=10,
    ttft_answer_tokens=2,
    throughput_tokens=2000,
    throughput_repeats=1,
    decoder_tokens=5_000,
    decoder_rounds=3,
    cold_starts=5,
    concurrent_streams=64,
    concurrent_answer_tokens=25,
    cpu_answers=2,
    cpu_answer_tokens=2000,
    cpu_requests=200,
    pool_requests=50,
    capacity_steps=(16, 32),
    capacity_answer_tokens=25,
    paced_rounds=2,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class BenchOptions:
    """What to measure and where to write it."""

    quick: bool = False
    output_dir: str | Path = "bench-results"
    model_id: str = DEFAULT_MODEL_ID

    @property
    def plan(self) -> Plan:
        return QUICK if self.quick else FULL


class BenchFailed(Exception):
    """Something did not work as it should; the numbers would be meaningless."""
