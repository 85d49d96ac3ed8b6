"""The upstream pool's work per request (``pool_*``): the relay's pool next to httpcore's.

The relay holds one upstream connection per open stream, and idle ones between bursts; what a
request costs its pool must not grow with them (connection_pool.py says why httpcore's does).

Method: in this process, a pool on the relay's network backend (network.py) and a loopback
`HttpPeer` on a thread of its own. First N connections are made: left idle (N requests at once,
each read to its end) or busy (N answers held open, as streams waiting for their next token).
Then requests go one after another, each read to its end and closed:
- work: the Python function calls made in httpcore's code and the pool's during one request
  (the relay's pool takes http_types.py's request, httpcore's pool its own), counted by a
  profile hook. A count, not a time: the same on a busy machine, and what the
  test that pins the pool's work per request (tests/streamer/test_connection_pool.py) checks;
- CPU: this thread's CPU time per request over many (the peer's thread is not counted).
Both for N = 16, 128 and 512 idle connections, the worst case of httpcore's pool.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, Final, Literal

import httpcore
from streamer import connection_pool
from streamer.aws import KEEPALIVE_SECONDS
from streamer.connection_pool import ConnectionPool
from streamer.http_types import Request, split_url
from streamer.network import AsyncioBackend

from jumpstream.bench.http_peer import http_peer
from jumpstream.bench.plan import Plan

__all__ = ["POOL_SIZES", "PoolWork", "measure_pool", "pool_work", "relay_pool", "scanning_pool"]

#: How many connections the pool holds besides the measured request's.
POOL_SIZES: Final = (16, 128, 512)
_HOST: Final = [(b"Host", b"peer")]
#: Where the counted calls are made: httpcore's package and the relay's pool module.
_HTTPCORE_DIR: Final = str(Path(httpcore.__file__).parent)
_POOL_FILE: Final = connection_pool.__file__

State = Literal["idle", "busy"]
PoolFactory = Callable[[], Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolWork:
    """One request's Python calls in the pool and httpcore, and its mean CPU time."""

    calls: int
    cpu_us: float


def relay_pool() -> ConnectionPool:
    """The relay's pool, as aws.py makes it (plain http: no TLS, no proxy)."""
    return ConnectionPool(keepalive_expiry=KEEPALIVE_SECONDS, network_backend=AsyncioBackend())


def scanning_pool() -> httpcore.AsyncConnectionPool:
    """httpcore's own pool, as the relay made it before: no caps, the same keep-alive."""
    return httpcore.AsyncConnectionPool(
        max_connections=None,
        max_keepalive_connections=None,
        keepalive_expiry=KEEPALIVE_SECONDS,
        network_backend=AsyncioBackend(),
    )


def _get(pool: Any, url: str) -> Any:
    """A GET of `url` as `pool` takes it."""
    if isinstance(pool, ConnectionPool):
        origin, target = split_url(url)
        return Request(b"GET", origin, target, headers=_HOST)
    return httpcore.Request(b"GET", url, headers=_HOST)


async def _request(pool: Any, url: str) -> None:
    response = await pool.handle_async_request(_get(pool, url))
    try:
        async for _ in response.stream:
            pass
    finally:
        await response.aclose()


async def _counted_request(pool: Any, url: str) -> int:
    calls = 0

    def count(frame: FrameType, event: str, arg: object) -> None:
        nonlocal calls
        if event == "call":
            filename = frame.f_code.co_filename
            if filename == _POOL_FILE or filename.startswith(_HTTPCORE_DIR):
                calls += 1

    sys.setprofile(count)
    try:
        await _request(pool, url)
    finally:
        sys.setprofile(None)
    return calls


async def _work(
    make_pool: PoolFactory, url: str, connections: int, state: State, requests: int
) -> PoolWork:
    pool = make_pool()
    held: list[Any] = []
    try:
        if state == "idle":
            await asyncio.gather(*(_request(pool, url + "/") for _ in range(connections)))
        else:
            for _ in range(connections):
                held.append(await pool.handle_async_request(_get(pool, url + "/hold")))
        await _request(pool, url + "/")  # the measured requests' connection, made
        calls = await _counted_request(pool, url + "/")
        started = time.thread_time()
        for _ in range(requests):
            await _request(pool, url + "/")
        cpu = (time.thread_time() - started) / requests
    finally:
        for response in held:
            await response.aclose()
        await pool.aclose()
    return PoolWork(calls=calls, cpu_us=cpu * 1e6)


def pool_work(
    make_pool: PoolFactory, *, connections: int, state: State, requests: int = 1
) -> PoolWork:
    """What one request costs `make_pool()`'s pool while it holds `connections` others."""
    with http_peer() as peer:
        return asyncio.run(_work(make_pool, peer.url, connections, state, requests))


def measure_pool(plan: Plan) -> dict[str, float]:
    """Calls per request for both pools at each size, and CPU per request at the largest."""
    results: dict[str, float] = {}
    largest = POOL_SIZES[-1]
    for name, make_pool in (("pool", relay_pool), ("httpcore_pool", scanning_pool)):
        for size in POOL_SIZES:
            # httpcore's pool spends ~0.1 s a request at 512 idle connections: fewer of them.
            requests = plan.pool_requests if name == "pool" else max(plan.pool_requests // 10, 5)
            work = pool_work(
                make_pool,
                connections=size,
                state="idle",
                requests=requests if size == largest else 1,
            )
            results[f"{name}_calls_per_request_{size}"] = work.calls
            if size == largest:
                results[f"{name}_cpu_us_per_request_{size}"] = work.cpu_us
    return results
