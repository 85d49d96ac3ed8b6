"""Capacity (``concurrent_streams_max``, ``fastapi_concurrent_streams_max``): how many paced
streams one relay process holds, and one process of the FastAPI baseline (fastapi_baseline.py).

Method: steps of N streams started at once, N doubling from the plan's first step; every stream
asks for the same answer, paced by the emulator at 25 tokens/s as a model writes. A step holds
when no stream failed or read another text, the p99 time to first token is at most
``TTFT_P99_LIMIT_MS`` and the p99 gap between two pieces of one answer is at most the pace plus
``GAP_P99_LIMIT_MS``. ``concurrent_streams_max`` is the largest step that held (0 if none did);
the steps stop at the first that did not. Wall time by nature: the emulator, the relay and
this client share the machine's cores, so a busy machine lowers the figure. The client is an
asyncio protocol per stream whose answer llhttp (httptools) parses in the protocol's own
callback: a piece of text costs it one callback, so its share of the cores stays small (h11 over
asyncio streams, a task's step and h11's events per piece, took ~0.4 of a core at 512 streams,
as much as the emulator; an HTTP client with a pool, httpx's, would also pay per request for
every connection it holds). paced.py sends the first step again, in rounds, for the CPU per
paced token.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlsplit

import httptools

from jumpstream.ask import request_body
from jumpstream.bench.clients import (
    Reading,
    boto3_client,
    max_new_tokens_for,
    prompt,
    read_direct,
    upstream_body,
)
from jumpstream.bench.fastapi_baseline import StreamingBaseline
from jumpstream.bench.plan import PACE_TOKENS_PER_SECOND, REQUEST_TIMEOUT_SECONDS, Plan
from jumpstream.bench.stats import percentile
from jumpstream.local import LocalStack

__all__ = [
    "GAP_P99_LIMIT_MS",
    "TTFT_P99_LIMIT_MS",
    "CapacityAnswer",
    "Step",
    "capacity_answer",
    "measure_capacity",
    "paced_step",
    "run_step",
]

#: What a step must meet to count as held (the issue's limits).
TTFT_P99_LIMIT_MS: Final = 1000.0
GAP_P99_LIMIT_MS: Final = 40.0
_READ_BYTES: Final = 64 * 1024


@dataclass(slots=True)
class Step:
    """What one step of ``streams`` streams at once measured."""

    streams: int
    ttft_ms: list[float] = field(default_factory=list)
    gaps_ms: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def held(self) -> bool:
        pace_ms = 1000 / PACE_TOKENS_PER_SECOND
        return (
            not self.failures
            and len(self.ttft_ms) == self.streams
            and percentile(self.ttft_ms, 0.99) <= TTFT_P99_LIMIT_MS
            and percentile(self.gaps_ms, 0.99) <= pace_ms + GAP_P99_LIMIT_MS
        )


class _Answer(asyncio.Protocol):
    """One stream's connection: sends the request, and parses the answer as it arrives
    (llhttp's callbacks), noting when each piece of the body came."""

    def __init__(self, request: bytes, done: asyncio.Future[None]) -> None:
        self._request = request
        self._done = done
        self._parser = httptools.HttpResponseParser(self)
        self.status = 0
        self.arrivals: list[float] = []
        self.chunks: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._end(error)

    def connection_lost(self, exc: Exception | None) -> None:
        self._end(exc or ConnectionError("the relay closed the connection before the end"))

    def on_headers_complete(self) -> None:
        self.status = self._parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        self.arrivals.append(time.perf_counter())
        self.chunks.append(bytes(body))

    def on_message_complete(self) -> None:
        self._end(None)

    def _end(self, error: BaseException | None) -> None:
        if self._done.done():
            return
        if error is None:
            self._done.set_result(None)
        else:
            self._done.set_exception(error)


async def _stream(host: str, port: int, body: bytes, expected: str, step: Step) -> None:
    started = time.perf_counter()
    request = (
        b"POST / HTTP/1.1\r\nHost: %b:%d\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%b" % (host.encode("ascii"), port, len(body), body)
    )
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    try:
        transport, answer = await loop.create_connection(lambda: _Answer(request, done), host, port)
    except OSError as error:
        step.failures.append(repr(error))
        return
    try:
        await done
    except (OSError, httptools.HttpParserError) as error:
        step.failures.append(repr(error))
        return
    finally:
        transport.close()
    if answer.status != 200:
        step.failures.append(f"status {answer.status}")
        return
    if b"".join(answer.chunks).decode("utf-8") != expected:
        step.failures.append("a text differed")
        return
    step.ttft_ms.append((answer.arrivals[0] - started) * 1000)
    step.gaps_ms.extend((b - a) * 1000 for a, b in itertools.pairwise(answer.arrivals))


async def run_step(relay_url: str, body: bytes, expected: str, step: Step) -> None:
    parts = urlsplit(relay_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    async with asyncio.timeout(REQUEST_TIMEOUT_SECONDS):
        await asyncio.gather(
            *(_stream(host, port, body, expected, step) for _ in range(step.streams))
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class CapacityAnswer:
    """The answer every paced stream asks for (capacity.py's steps and paced.py's rounds), read
    once directly from the emulator: what each stream must read, and how many tokens it has."""

    reading: Reading
    #: The request for it: the relay's body, and SageMaker's (what the relay sends upstream).
    body: bytes
    upstream_body: bytes


def capacity_answer(stack: LocalStack, plan: Plan) -> CapacityAnswer:
    """Read the capacity answer directly (at the emulator's pace: seconds)."""
    text = prompt(plan.capacity_answer_tokens, "capacity")
    limit = max_new_tokens_for(plan.capacity_answer_tokens)
    return CapacityAnswer(
        reading=read_direct(boto3_client(stack.emulator_url), text, limit),
        body=request_body(text, max_new_tokens=limit),
        upstream_body=upstream_body(text, limit),
    )


def paced_step(url: str, body: bytes, expected: str, streams: int) -> Step:
    """``streams`` streams at once to ``url``, each sent ``body`` and expected to read
    ``expected``: one step, measured."""
    step = Step(streams=streams)
    asyncio.run(run_step(url, body, expected, step))
    return step


def measure_capacity(
    stack: LocalStack, baseline: StreamingBaseline, plan: Plan, answer: CapacityAnswer
) -> dict[str, float]:
    """Steps of paced streams at once through the relay and the FastAPI baseline (sent
    SageMaker's request, which it forwards) in turn, each until one of its steps does not hold.

    In turn, step by step, as paced.py's rounds: so that the two meet the machine's moments
    alike, rather than one taking all its steps before the other."""
    targets = {
        "concurrent_streams_max": (stack.relay_url, answer.body),
        "fastapi_concurrent_streams_max": (baseline.url, answer.upstream_body),
    }
    held = dict.fromkeys(targets, 0)
    going = list(targets)
    for streams in plan.capacity_steps:
        for key in list(going):
            url, body = targets[key]
            if paced_step(url, body, answer.reading.text, streams).held:
                held[key] = streams
            else:
                going.remove(key)
        if not going:
            break
    return held
