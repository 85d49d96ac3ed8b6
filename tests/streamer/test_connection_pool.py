"""connection_pool.py against a real loopback server (jumpstream.bench.http_peer): the work per
request, the stale-connection retry and the pruning of idle connections; httpcore's connections
through a proxy and without httptools, and a start that does not import httpcore."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from streamer import connection_pool, http_types
from streamer.connection_pool import ConnectionPool
from streamer.http_types import Request, split_url
from streamer.network import AsyncioBackend

from jumpstream.bench.http_peer import HttpPeer, Reused, http_peer
from jumpstream.bench.pool import pool_work, relay_pool, scanning_pool
from jumpstream.local import RELAY_ROOT, StackConfig, free_port, relay_environment
from tests.streamer.loopback import peer as loopback_peer
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


def get_request(url: str) -> Request:
    origin, target = split_url(url)
    return Request(b"GET", origin, target, headers=_HOST)


async def get(pool: ConnectionPool, peer: HttpPeer) -> bytes:
    response = await pool.handle_async_request(get_request(peer.url + "/"))
    try:
        return b"".join([part async for part in response.stream])
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
                with pytest.raises(http_types.RemoteProtocolError) as caught:
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
                with pytest.raises(http_types.RemoteProtocolError):
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
                with pytest.raises(http_types.RemoteProtocolError):
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
                request = get_request(peer.url + "/hold")
                response = await relay_pool.handle_async_request(request)
                busy = relay_pool.busy_connections
                await response.aclose()
                return busy, relay_pool.idle_connections + relay_pool.busy_connections
            finally:
                await relay_pool.aclose()

        assert run(client) == (1, 0)


# --- httpcore's connections: through a proxy, and without httptools ---------------------------


def _answering(seen: list[bytes], reply: bytes, *, then_close: bool = False) -> Any:
    """A server's (or a proxy's) side of one connection: reads a request, notes its request
    line, answers `reply`, then waits for the client's end (or ends the connection itself)."""

    def script(connection: Any) -> None:
        connection.settimeout(HANG_GUARD_SECONDS)
        data = b""
        while b"\r\n\r\n" not in data:
            data += connection.recv(65536)
        seen.append(data.partition(b"\r\n")[0])
        connection.sendall(reply)
        if not then_close:
            connection.recv(1)

    return script


def test_through_a_proxy_httpcores_connection_serves_the_pools_request() -> None:
    """A proxy (environment_proxy's, as aws.py makes pools) gets httpcore's forwarding
    connection: the request goes to the proxy in absolute form, and its answer comes back as
    the pool's own Response."""
    import httpcore

    seen: list[bytes] = []
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    with loopback_peer(_answering(seen, reply)) as port:

        async def client() -> tuple[int, bytes]:
            proxied = ConnectionPool(
                keepalive_expiry=_LONG_KEEPALIVE_SECONDS,
                network_backend=AsyncioBackend(),
                proxy=httpcore.Proxy(f"http://127.0.0.1:{port}"),
            )
            try:
                request = get_request("http://sagemaker.invalid/endpoints/e")
                response = await proxied.handle_async_request(request)
                try:
                    return response.status, b"".join([part async for part in response.stream])
                finally:
                    await response.aclose()
            finally:
                await proxied.aclose()

        assert run(client) == (200, b"ok")
    assert seen == [b"GET http://sagemaker.invalid:80/endpoints/e HTTP/1.1"]


def test_without_httptools_httpcores_connection_fails_in_the_pools_terms(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Where httptools cannot be loaded, the pool makes httpcore's own HTTP/1.1 connections;
    an answer cut short is still http_types.py's RemoteProtocolError, as upstream.py expects."""
    monkeypatch.setattr(connection_pool, "Http11Connection", None)
    cut_short = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nok"
    with loopback_peer(_answering([], cut_short, then_close=True)) as port:

        async def client() -> None:
            fallback = pool()
            try:
                request = get_request(f"http://127.0.0.1:{port}/")
                response = await fallback.handle_async_request(request)
                try:
                    with pytest.raises(http_types.RemoteProtocolError):
                        async for _ in response.stream:
                            pass
                finally:
                    await response.aclose()
            finally:
                await fallback.aclose()

        run(client)


def test_httpcores_connections_see_the_networks_failures_as_httpcores() -> None:
    """httpcore acts on its own exception types (its HTTP/1.1 connection reads a server's early
    answer after its own WriteError): network.py's failures reach it as those, and httpcore's
    reach the pool as http_types.py's again."""
    import httpcore

    class Failing:
        async def write(self, buffer: bytes, timeout: float | None = None) -> None:
            raise http_types.WriteError("the connection is closed")

        async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
            raise http_types.ReadTimeout("timed out")

    stream = connection_pool._HttpcoreStream(Failing())  # type: ignore[arg-type]

    async def both() -> list[type[BaseException]]:
        seen: list[type[BaseException]] = []
        for call in (stream.write(b"x"), stream.read(1)):
            try:
                await call
            except Exception as error:
                seen.append(type(error))
        return seen

    assert run(both) == [httpcore.WriteError, httpcore.ReadTimeout]
    back = connection_pool._translated(httpcore.WriteError("closed"))
    assert type(back) is http_types.WriteError


def test_the_relay_starts_without_importing_httpcore_or_h11() -> None:
    """httpcore (and h11 beneath it and uvicorn's h11 protocol) cost ~13 ms of every cold start;
    the relay's direct connections do not need them, so the start does not load them."""
    script = (
        "import os, sys\n"
        "import streamer.__main__, streamer.http_server\n"
        "from streamer.app import create_app\n"
        "from streamer.settings import load_settings\n"
        "create_app(load_settings(os.environ))\n"
        "print(sorted({name.split('.')[0] for name in sys.modules} & {'httpcore', 'h11'}))\n"
    )
    env = relay_environment(
        StackConfig(relay_port=0), emulator_url="http://127.0.0.1:9", port=free_port()
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        cwd=RELAY_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert result.stdout.split("\n")[-2] == "[]", result.stdout
