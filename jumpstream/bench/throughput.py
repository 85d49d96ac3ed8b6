"""Throughput (``throughput_*``): one unpaced answer read whole, directly with boto3 and through
the relay, in tokens per second of wall time.

Three busy processes (emulator, relay, client) then share the machine's cores, so this figure
moves with the machine's load; ``relay_cpu_*`` (cpu.py) says what the relay itself costs.
"""

from __future__ import annotations

import statistics

from jumpstream.bench.clients import paired_reads
from jumpstream.bench.plan import Plan
from jumpstream.local import LocalStack

__all__ = ["measure_throughput"]


def measure_throughput(stack: LocalStack, plan: Plan) -> dict[str, float]:
    """One long unpaced answer, read whole, direct and through the relay."""
    pairs = paired_reads(
        stack, tokens=plan.throughput_tokens, count=plan.throughput_repeats, tag="throughput"
    )
    # The same answer both ways: the token count boto3 decoded holds for the relay's too.
    direct_tps = statistics.median(d.tokens / (d.total_ms / 1000) for d, _ in pairs)
    relay_tps = statistics.median(d.tokens / (r.total_ms / 1000) for d, r in pairs)
    return {
        "throughput_direct_tps": direct_tps,
        "throughput_relay_tps": relay_tps,
        "throughput_ratio": relay_tps / direct_tps,
    }
