"""Concurrency (``concurrent_*``): many paced streams at once through one relay process.

Every stream gets the same prompt at 25 tokens/s; the figure is the p99 gap between two pieces
of one answer, minus the pace: how late a piece comes when the relay serves many at once. Wall
time, by nature; a busy machine adds to it.
"""

from __future__ import annotations

import itertools
import time

import anyio
import httpx

from jumpstream.ask import request_body
from jumpstream.bench.clients import boto3_client, max_new_tokens_for, prompt, read_direct
from jumpstream.bench.plan import (
    PACE_TOKENS_PER_SECOND,
    REQUEST_TIMEOUT_SECONDS,
    BenchFailed,
    Plan,
)
from jumpstream.bench.stats import percentile
from jumpstream.local import LocalStack

__all__ = ["measure_concurrency"]


def measure_concurrency(stack: LocalStack, plan: Plan) -> dict[str, float]:
    """Many paced streams at once through one relay process: how late does a piece come?"""
    tokens = plan.concurrent_answer_tokens
    text = prompt(tokens, "concurrent")
    limit = max_new_tokens_for(tokens)
    expected = read_direct(boto3_client(stack.emulator_url), text, limit).text
    body = request_body(text, max_new_tokens=limit)
    gaps: list[float] = []
    failures: list[str] = []

    async def one(client: httpx.AsyncClient) -> None:
        arrivals: list[float] = []
        chunks: list[bytes] = []
        async with client.stream(
            "POST",
            stack.relay_url + "/",
            content=body,
            headers={"content-type": "application/json"},
        ) as response:
            if response.status_code != 200:
                failures.append(f"status {response.status_code}")
                return
            async for chunk in response.aiter_raw():
                if chunk:
                    arrivals.append(time.perf_counter())
                    chunks.append(chunk)
        if b"".join(chunks).decode("utf-8") != expected:
            failures.append("a text differed")
            return
        gaps.extend((later - earlier) * 1000 for earlier, later in itertools.pairwise(arrivals))

    async def run() -> None:
        limits = httpx.Limits(max_connections=plan.concurrent_streams)
        async with (
            httpx.AsyncClient(timeout=REQUEST_TIMEOUT_SECONDS, limits=limits) as client,
            anyio.create_task_group() as group,
        ):
            for _ in range(plan.concurrent_streams):
                group.start_soon(one, client)

    anyio.run(run)
    if failures:
        raise BenchFailed(f"{len(failures)} concurrent streams failed: {failures[:3]}")
    pace_ms = 1000 / PACE_TOKENS_PER_SECOND
    return {
        "concurrent_streams": plan.concurrent_streams,
        "concurrent_p99_added_gap_ms": percentile(gaps, 0.99) - pace_ms,
    }
