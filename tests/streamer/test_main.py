"""The relay's entry point: its listening socket, and the garbage collector it serves with.

The listening socket: every accepted connection has TCP_NODELAY set. The Web Adapter sends
invocation after invocation over one kept-alive connection. Without TCP_NODELAY the relay's
response head and first token are two small writes and the second waits for the adapter's
delayed ACK (Nagle's algorithm): ~40 ms on every warm request. uvicorn serves the socket through
asyncio's `create_server`, which sets the option only where the socket's protocol says TCP, so
this checks exactly that path on a real accepted connection.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys

import pytest
from streamer.__main__ import _listen

from jumpstream.emulator.__main__ import bind as emulator_bind
from jumpstream.local import LOOPBACK, RELAY_ROOT, StackConfig, free_port, relay_environment


async def _nodelay_of_accepted(listener: socket.socket) -> int:
    accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    class Probe(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            sock = transport.get_extra_info("socket")
            accepted.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    server = await asyncio.get_running_loop().create_server(Probe, sock=listener)
    try:
        host, port = listener.getsockname()[:2]
        _, writer = await asyncio.open_connection(host, port)
        try:
            return await asyncio.wait_for(accepted, 10)
        finally:
            writer.close()
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(
    "make_listener",
    [lambda: _listen("127.0.0.1", 0), lambda: emulator_bind("127.0.0.1", 0)],
    ids=["relay", "emulator"],
)
def test_accepted_connections_have_tcp_nodelay(make_listener: object) -> None:
    listener = make_listener()  # type: ignore[operator]
    try:
        assert asyncio.run(_nodelay_of_accepted(listener)) != 0
    finally:
        listener.close()


def test_a_plain_socket_would_not_have_it() -> None:
    """Why the listener spells out IPPROTO_TCP: asyncio skips sockets made with protocol 0."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    try:
        assert asyncio.run(_nodelay_of_accepted(listener)) == 0
    finally:
        listener.close()


def test_the_relay_serves_with_the_collector_on_and_its_start_frozen() -> None:
    """The start runs with the cyclic garbage collector off (its passes over everything made so
    far were a tenth of the start's CPU): when the server starts, the collector is on again and
    what the start made is frozen out of its passes. (The server's `run` is replaced by one that
    reports both and returns.)"""
    probe = (
        "import gc, sys, uvicorn\n"
        "def run(self, sockets=None):\n"
        "    print(gc.isenabled(), gc.get_freeze_count() > 10000, flush=True)\n"
        "uvicorn.Server.run = run\n"
        "from streamer.__main__ import main\n"
        "main()\n"
    )
    env = {
        **os.environ,
        **relay_environment(
            StackConfig(relay_port=0), emulator_url=f"http://{LOOPBACK}:9", port=free_port()
        ),
        "PYTHONPATH": str(RELAY_ROOT),
    }
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.stdout.split() == ["True", "True"], done.stderr
