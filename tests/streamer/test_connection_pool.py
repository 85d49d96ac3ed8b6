"""connection_pool.py against a real loopback server (jumpstream.bench.http_peer): the work per
request, the stale-connection retry and the pruning of idle connections."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import httpcore
import pytest
from streamer.connection_pool import ConnectionPool
from streamer.network import AsyncioBackend

from jumpstream.bench.http_peer import HttpPeer, Reused, http_peer
from jumpstream.bench.pool import pool_work, relay_pool, scanning_pool
from tests.streamer.support import HANG_GUARD_SECONDS

_HOST = [(b"Host", b"peer")]
#: Long enough that no idle connection expires during a test that does not wait for it.
_LONG_KEEPALIVE_SECONDS = 60.0


def run(function: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    async def guarded() -> Any:
        return await asyncio.wait_for(function(), HANG_GUARD_SECONDS)

    return asyncio.run(guarded())


def pool(keepalive: float = _LONG_KEEPALIVE_SECONDS) -> ConnectionPool:
    return ConnectionPool(keepalive_expiry=keepalive, network_backend=AsyncioBackend())


async def get(pool: ConnectionPool, peer: HttpPeer) -> bytes:
    response = await pool.handle_async_request(
        httpcore.Request(b"GET", peer.url + "/", headers=_HOST)
    )
    try:
        return b"".join([part async for part in response.aiter_stream()])
    finally:
        await response.aclose()


async def until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.01)


# --- the work per request ---------------------------------------------------------------------


@pytest.mark.parametrize("state", ["idle", "busy"])
def test_a_requests_work_does_not_grow_with_the_connections_open(state: Any) -> None:
    """Calls counted, not time: 8 times the connections, idle or carrying streams, and one
    request still makes the same calls. A pass over the connections (one call each) would add
    at least 112 calls here; httpcore's quadratic one adds tens of thousands."""
    few = pool_work(relay_pool, connections=16, state=state).calls
    many = pool_work(relay_pool, connections=128, state=state).calls
    assert many <= few + few // 10, (few, many)


def test_the_count_sees_a_pool_that_scans_its_connections() -> None:
    """The same count on httpcore's pool, which examines every connection on each request: the
    measure the test above relies on does see work that grows with the connections."""
    few = pool_work(scanning_pool, connections=16, state="idle").calls
    many = pool_work(scanning_pool, connections=128, state="idle").calls
    assert many > 8 * few, (few, many)


# --- a kept-alive connection the server closed ------------------------------------------------


@pytest.mark.parametrize("reused", [Reused.CLOSE, Reused.RESET])
def test_a_reused_connection_closed_before_any_byte_is_retried_on_a_new_one(
    reused: Reused,
) -> None:
    """The server closes (or resets) a kept-alive connection as the next request arrives, as
    when its idle timeout crosses the request: the request is sent again on a new connection."""
    with http_peer() as peer:

        async def client() -> list[bytes]:
            relay_pool = pool()
            try:
                first = await get(relay_pool, peer)
                peer.reused = reused
                second = await get(relay_pool, peer)
                third = await get(relay_pool, peer)  # the new connection stays usable
            finally:
                await relay_pool.aclose()
            return [first, second, third]

        assert run(client) == [b"ok", b"ok", b"ok"]
    # One request failed on the reused connection, then went on a new one; the third request
    # reused that new one (so the server failed it too, and a third connection answered).
    assert peer.counts.failed_reused == 2
    assert peer.counts.connections == 3
    assert peer.counts.requests == 5


def test_nothing_is_resent_once_a_byte_of_the_answer_arrived() -> None:
    with http_peer() as peer:

        async def client() -> BaseException:
            relay_pool = pool()
            try:
                await get(relay_pool, peer)
                peer.reused = Reused.PARTIAL
                with pytest.raises(httpcore.RemoteProtocolError) as caught:
                    await get(relay_pool, peer)
            finally:
                await relay_pool.aclose()
            return caught.value

        run(client)
    assert peer.counts.connections == 1
    assert peer.counts.requests == 2


def test_a_request_is_resent_once_at_most() -> None:
    """A new connection that fails too is a real failure: it is not tried again."""
    with http_peer() as peer:

        async def client() -> None:
            relay_pool = pool()
            try:
                await get(relay_pool, peer)
                peer.reused = Reused.CLOSE_ALL
                with pytest.raises(httpcore.RemoteProtocolError):
                    await get(relay_pool, peer)
            finally:
                await relay_pool.aclose()

        run(client)
    assert peer.counts.connections == 2
    assert peer.counts.requests == 3


def test_a_request_on_a_new_connection_is_never_resent() -> None:
    with http_peer(reused=Reused.CLOSE_ALL) as peer:

        async def client() -> None:
            relay_pool = pool()
            try:
                with pytest.raises(httpcore.RemoteProtocolError):
                    await get(relay_pool, peer)
            finally:
                await relay_pool.aclose()

        run(client)
    assert peer.counts.connections == 1
    assert peer.counts.requests == 1


def test_a_connection_the_server_closed_while_idle_is_replaced_without_a_retry() -> None:
    """The server's end arrived while the connection was idle: the pool sees it (something to
    read on an idle connection) and opens a new one instead of sending on it."""
    with http_peer(keepalive_seconds=0.05) as peer:

        async def client() -> list[bytes]:
            relay_pool = pool()
            try:
                first = await get(relay_pool, peer)
                await until(lambda: peer.counts.closed_by_peer == 1)
                await asyncio.sleep(0.05)  # the end reaches the client's side
                second = await get(relay_pool, peer)
            finally:
                await relay_pool.aclose()
            return [first, second]

        assert run(client) == [b"ok", b"ok"]
    assert peer.counts.connections == 2
    assert peer.counts.failed_reused == 0


# --- idle connections closed on time ----------------------------------------------------------


def test_idle_connections_are_closed_when_their_keep_alive_runs_out() -> None:
    """With no further request to find them: the pool's timer closes them, before the server
    (keep-alive 60 s here) would."""
    with http_peer(keepalive_seconds=_LONG_KEEPALIVE_SECONDS) as peer:

        async def client() -> tuple[int, int]:
            relay_pool = pool(keepalive=0.1)
            try:
                await asyncio.gather(get(relay_pool, peer), get(relay_pool, peer))
                idle_after_answers = relay_pool.idle_connections
                await until(lambda: peer.counts.closed_by_client == 2)
                return idle_after_answers, relay_pool.idle_connections
            finally:
                await relay_pool.aclose()

        assert run(client) == (2, 0)
    assert peer.counts.closed_by_peer == 0


def test_the_newest_idle_connection_is_taken_first() -> None:
    """Requests one after another keep to one connection, so the others age and are closed."""
    with http_peer() as peer:

        async def client() -> int:
            relay_pool = pool()
            try:
                await asyncio.gather(*(get(relay_pool, peer) for _ in range(3)))
                before = peer.counts.requests_per_connection.copy()
                for _ in range(4):
                    await get(relay_pool, peer)
                after = peer.counts.requests_per_connection
                return sum(1 for old, new in zip(before, after, strict=True) if new > old)
            finally:
                await relay_pool.aclose()

        assert run(client) == 1
    assert peer.counts.connections == 3


def test_an_answer_not_read_to_its_end_does_not_return_its_connection() -> None:
    with http_peer() as peer:

        async def client() -> tuple[int, int]:
            relay_pool = pool()
            try:
                request = httpcore.Request(b"GET", peer.url + "/hold", headers=_HOST)
                response = await relay_pool.handle_async_request(request)
                busy = relay_pool.busy_connections
                await response.aclose()
                return busy, relay_pool.idle_connections + relay_pool.busy_connections
            finally:
                await relay_pool.aclose()

        assert run(client) == (1, 0)
