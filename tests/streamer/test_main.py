"""The relay's listening socket: every accepted connection has TCP_NODELAY set.

The Web Adapter sends invocation after invocation over one kept-alive connection. Without
TCP_NODELAY the relay's response head and first token are two small writes and the second waits
for the adapter's delayed ACK (Nagle's algorithm): ~40 ms on every warm request. uvicorn serves
the socket through asyncio's `create_server`, which sets the option only where the socket's
protocol says TCP, so this checks exactly that path on a real accepted connection.
"""

from __future__ import annotations

import asyncio
import socket

import pytest
from streamer.__main__ import _listen

from jumpstream.emulator.__main__ import bind as emulator_bind


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
