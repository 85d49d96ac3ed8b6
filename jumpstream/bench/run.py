"""Running every measurement, each stack only while its measurements run.

The bench fails (exit status 1) only when something did not work: an error, a text that differs.
A target missed is a row of the table, not a failure.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, TextIO

from streamer import contract

from jumpstream.bench.capacity import capacity_answer, measure_capacity
from jumpstream.bench.cold_start import measure_cold_start
from jumpstream.bench.concurrency import measure_concurrency
from jumpstream.bench.cpu import measure_cpu
from jumpstream.bench.decoder import decoder_peak_kib, measure_decoder
from jumpstream.bench.fastapi_baseline import streaming_baseline
from jumpstream.bench.paced import measure_paced_tokens
from jumpstream.bench.plan import (
    CPU_PACE_TOKENS_PER_SECOND,
    FIRST_TOKEN_DELAY_SECONDS,
    MAX_NEW_TOKENS_LIMIT,
    PACE_TOKENS_PER_SECOND,
    BenchFailed,
    BenchOptions,
)
from jumpstream.bench.pool import POOL_SIZES, measure_pool
from jumpstream.bench.report import KEYS, machine, render_table, write_json
from jumpstream.bench.throughput import measure_throughput
from jumpstream.bench.ttft import measure_ttft
from jumpstream.local import StackConfig, start_stack
from jumpstream.procs import ChildExited, LineBuffer, StartupTimeout

__all__ = ["run_bench"]


def _stack_config(
    model_id: str, *, tokens_per_second: float, first_token_delay: float
) -> StackConfig:
    return StackConfig(
        relay_port=0,
        model_id=model_id,
        tokens_per_second=tokens_per_second,
        first_token_delay=first_token_delay,
        relay_env={contract.MAX_NEW_TOKENS_LIMIT.name: str(MAX_NEW_TOKENS_LIMIT)},
    )


def _measure_all(options: BenchOptions, output: LineBuffer, stderr: TextIO) -> dict[str, Any]:
    """Each stack runs only while its measurements do, so nothing else competes for the CPU.

    The paced streams come after the figures of one stream at a time, and the cold starts last,
    their figure a ratio of starts made in alternation. The paced streams' capacity steps leave
    hundreds of megabytes freed behind them, and on this machine (a Firecracker virtual machine)
    work right after such a free runs slower: after a process that touched 1.5 GB ended, the
    unpaced direct reader's throughput was 40 and 42k tokens/s, against 60k in the runs beside
    them. (Of five runs that measured the upstream pool after the paced streams, two put its CPU
    per request at 800 and 1,244 µs, against 103 to 152 in the others: not isolated.)
    """
    plan, model_id = options.plan, options.model_id
    results: dict[str, Any] = {}
    unpaced = _stack_config(model_id, tokens_per_second=0, first_token_delay=0)
    with start_stack(unpaced, sink=output) as stack:
        _say(stderr, f"measuring throughput ({plan.throughput_tokens} tokens, unpaced)")
        results.update(measure_throughput(stack, plan))
    fast = _stack_config(
        model_id, tokens_per_second=CPU_PACE_TOKENS_PER_SECOND, first_token_delay=0
    )
    with start_stack(fast, sink=output) as stack:
        _say(
            stderr,
            f"measuring CPU per token and per request, relay and direct "
            f"({CPU_PACE_TOKENS_PER_SECOND:g} tokens/s)",
        )
        results.update(measure_cpu(stack, plan))
    _say(stderr, "measuring the decoder against LineIterator and a naive split")
    results.update(measure_decoder(plan, model_id))
    results["decoder_peak_kib_1k"] = decoder_peak_kib(1_000, model_id)
    results["decoder_peak_kib_100k"] = decoder_peak_kib(100_000, model_id)
    _say(
        stderr,
        "measuring the upstream pool's work per request, the relay's and httpcore's "
        f"({', '.join(map(str, POOL_SIZES))} idle connections)",
    )
    results.update(measure_pool(plan))
    paced = _stack_config(
        model_id,
        tokens_per_second=PACE_TOKENS_PER_SECOND,
        first_token_delay=FIRST_TOKEN_DELAY_SECONDS,
    )
    with start_stack(paced, sink=output) as stack:
        _say(stderr, "measuring time to first token (paced emulator, one kept-alive connection)")
        results.update(measure_ttft(stack, plan))
        _say(stderr, f"measuring {plan.concurrent_streams} concurrent paced streams")
        results.update(measure_concurrency(stack, plan))
        answer = capacity_answer(stack, plan)
        with streaming_baseline(stack, paced, sink=output) as baseline:
            # Before the capacity steps, where the old one-round figure was taken (the first
            # step): after them, both the relay's and the pipe's rounds cost a fifth more (not
            # isolated; likely what their freed memory costs, above).
            _say(
                stderr,
                "measuring CPU per paced token, the relay's, a raw byte pipe's and the FastAPI "
                f"baseline's in turn ({plan.paced_rounds} rounds of {plan.capacity_steps[0]} "
                "streams)",
            )
            results.update(measure_paced_tokens(stack, baseline, plan, answer, sink=output))
            steps = ", ".join(map(str, plan.capacity_steps))
            _say(
                stderr,
                "measuring how many paced streams one relay holds, and one FastAPI baseline, "
                f"in turn (steps of {steps})",
            )
            results.update(measure_capacity(stack, baseline, plan, answer))
    _say(stderr, f"measuring cold starts ({plan.cold_starts} of each)")
    results.update(measure_cold_start(plan, output, model_id))
    return results


def run_bench(options: BenchOptions, *, stdout: TextIO, stderr: TextIO) -> int:
    """Run every measurement, print the table, write the JSON; return the exit status."""
    output = LineBuffer()
    started = time.perf_counter()
    before = machine()
    try:
        results = _measure_all(options, output, stderr)
    except (ChildExited, StartupTimeout, OSError, BenchFailed, RuntimeError) as error:
        stderr.write(output.render())
        _say(stderr, f"jumpstream bench failed: {error}")
        return 1
    results["machine"] = {**before, "load_average_after": machine()["load_average_1_5_15"]}
    document = {key: results[key] for key in KEYS}
    _say(stdout, render_table(document))
    _say(
        stdout,
        "all texts matched: relay, FastAPI baseline and direct, decoder, LineIterator and "
        "naive split "
        f"({time.perf_counter() - started:.0f} s{', quick' if options.quick else ''})",
    )
    path = write_json(Path(options.output_dir), document)
    _say(stdout, f"results written to {path}")
    return 0


def _say(stream: TextIO, line: str) -> None:
    stream.write(line + "\n")
    stream.flush()
