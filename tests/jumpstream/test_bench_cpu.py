"""The CPU measurement's pieces: reading a process's CPU time from /proc, and splitting what two
batches cost into a cost per token and per request. No figure here is judged fast or slow."""

from __future__ import annotations

import os
import sys
import time

import pytest

from jumpstream.bench.clients import Reading, check_same_texts
from jumpstream.bench.cpu import Batch, split_cost
from jumpstream.bench.plan import BenchFailed
from jumpstream.bench.proc import process_cpu_seconds, relay_memory

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")
_TICK = 1 / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 0.01


def _burn(seconds: float) -> None:
    until = time.process_time() + seconds
    while time.process_time() < until:
        pass


@linux_only
def test_process_cpu_seconds_agrees_with_the_process_own_count() -> None:
    _burn(0.05)
    before = process_cpu_seconds(os.getpid())
    _burn(0.2)
    after = process_cpu_seconds(os.getpid())
    times = os.times()
    assert before is not None
    assert after is not None
    assert after - before >= 0.2 - 2 * _TICK  # the work done is counted
    assert after == pytest.approx(times.user + times.system, abs=2 * _TICK)


def test_process_cpu_seconds_of_a_missing_process_is_none() -> None:
    assert process_cpu_seconds(2**22 + 12345) is None


def test_relay_memory_reads_proc_status() -> None:
    # The pid is read here, not in a parameter: test ids must be the same in every xdist worker.
    memory = relay_memory(os.getpid())
    assert memory is not None
    assert memory.peak_kib >= memory.rss_kib > 0


def test_relay_memory_of_a_missing_process_is_none() -> None:
    assert relay_memory(2**22 + 12345) is None


def test_split_cost_recovers_the_cost_per_token_and_per_request() -> None:
    per_token, per_request = 50e-6, 2e-3
    long = Batch(cpu_seconds=3 * (per_request + 2001 * per_token), answers=3, tokens=2001)
    short = Batch(cpu_seconds=200 * (per_request + 2 * per_token), answers=200, tokens=2)
    cost = split_cost(long=long, short=short)
    assert cost.per_token == pytest.approx(per_token)
    assert cost.per_request == pytest.approx(per_request)


def test_split_cost_needs_longer_long_answers() -> None:
    batch = Batch(cpu_seconds=1.0, answers=10, tokens=2)
    with pytest.raises(ValueError, match="more tokens"):
        split_cost(long=batch, short=batch)


def _reading(text: str) -> Reading:
    return Reading(first_text_ms=1.0, total_ms=2.0, text=text, tokens=2)


def test_the_same_prompts_must_read_the_same_texts_both_ways() -> None:
    check_same_texts([_reading("a"), _reading("b")], [_reading("a"), _reading("b")])
    with pytest.raises(BenchFailed, match="texts differ"):
        check_same_texts([_reading("a")], [_reading("a ")])
    with pytest.raises(BenchFailed, match="2 direct answers but 1"):
        check_same_texts([_reading("a"), _reading("b")], [_reading("a")])
