"""Time to first token (``ttft_*``): what the relay adds before the first text arrives.

Requests go back to back on one kept-alive connection, each in one write, as the Web Adapter
sends invocations, to the relay; then the same prompts back to back to the emulator directly with
boto3. The emulator is paced (a first-token delay, then 25 tokens/s), so both wait for the same
model. ``ttft_added_*`` are the percentiles of each prompt's difference (relay minus direct).
Wall time, by nature: it is a latency. A busy machine adds to it (each hop waits for a core).
"""

from __future__ import annotations

import statistics

from jumpstream.bench.clients import paired_reads
from jumpstream.bench.plan import Plan
from jumpstream.bench.stats import percentile
from jumpstream.local import LocalStack

__all__ = ["measure_ttft"]


def measure_ttft(stack: LocalStack, plan: Plan) -> dict[str, float]:
    """Time to the first text, back to back, through the relay and directly."""
    pairs = paired_reads(stack, tokens=plan.ttft_answer_tokens, count=plan.ttft_pairs, tag="ttft")
    added = [relay.first_text_ms - direct.first_text_ms for direct, relay in pairs]
    return {
        "ttft_direct_ms_p50": statistics.median(direct.first_text_ms for direct, _ in pairs),
        "ttft_relay_ms_p50": statistics.median(relay.first_text_ms for _, relay in pairs),
        "ttft_added_ms_p50": statistics.median(added),
        "ttft_added_ms_p95": percentile(added, 0.95),
    }
