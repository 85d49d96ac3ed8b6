"""http_client.py against scripted loopback peers: the request as it leaves, answers framed each
way HTTP/1.1 frames them, the connection kept or closed as the answer says, each way an answer
can go wrong as the http_types.py error the pool and upstream.py expect, and TLS."""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from typing import Any

import anyio
import pytest
import trustme
from streamer import http_types
from streamer.http_client import Http11Connection
from streamer.http_types import Origin, Request, split_url
from streamer.network import AsyncioBackend

from tests.streamer.loopback import Script, peer, run
from tests.streamer.support import HANG_GUARD_SECONDS

_CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"


def connection(port: int, *, scheme: bytes = b"http", context: Any = None) -> Http11Connection:
    return Http11Connection(
        Origin(scheme, b"localhost" if scheme == b"https" else b"127.0.0.1", port),
        network_backend=AsyncioBackend(),
        ssl_context=context,
        keepalive_expiry=60.0,
    )


def request(
    port: int,
    *,
    body: bytes = b"",
    scheme: str = "http",
    headers: list[tuple[bytes, bytes]] | None = None,
    read_timeout: float = HANG_GUARD_SECONDS,
) -> Request:
    host = "localhost" if scheme == "https" else "127.0.0.1"
    origin, target = split_url(f"{scheme}://{host}:{port}/endpoints/e/invocations?x=1")
    return Request(
        b"POST",
        origin,
        target,
        headers=headers or [(b"Host", b"peer"), (b"Content-Length", b"%d" % len(body))],
        content=body,
        timeouts={"read": read_timeout},
    )


def read_request(connection: socket.socket) -> bytes:
    """One request's head and its body (by Content-Length) as the peer received them."""
    connection.settimeout(HANG_GUARD_SECONDS)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        body += connection.recv(65536)
    return head + b"\r\n\r\n" + body


def answering(*replies: bytes, seen: list[bytes] | None = None) -> Script:
    """Reads a request, sends the next reply; after the last one, waits for the client's end."""

    def script(connection: socket.socket) -> None:
        for reply in replies:
            received = read_request(connection)
            if seen is not None:
                seen.append(received)
            connection.sendall(reply)
        connection.settimeout(HANG_GUARD_SECONDS)
        connection.recv(1)

    return script


async def exchange(conn: Http11Connection, req: Request) -> tuple[int, list[bytes]]:
    response = await conn.handle_async_request(req)
    try:
        return response.status, [part async for part in response.stream]
    finally:
        await response.aclose()


def test_the_request_leaves_as_given_in_one_piece() -> None:
    seen: list[bytes] = []
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    with peer(answering(reply, seen=seen)) as port:

        async def client() -> Any:
            conn = connection(port)
            try:
                return await exchange(conn, request(port, body=b'{"inputs": "x"}'))
            finally:
                await conn.aclose()

        assert run(client) == (200, [b"ok"])
    assert seen == [
        b"POST /endpoints/e/invocations?x=1 HTTP/1.1\r\nHost: peer\r\nContent-Length: 15\r\n\r\n"
        b'{"inputs": "x"}'
    ]


def hello_world_then_again(gate: threading.Event) -> Script:
    """Answers a request with "hello", then (once `gate` is set) " world" and the end, in two
    chunks; then answers a next request on the same connection with "again"."""

    def script(connection: socket.socket) -> None:
        read_request(connection)
        connection.sendall(_CHUNKED_HEAD + b"5\r\nhello\r\n")
        gate.wait(HANG_GUARD_SECONDS)
        connection.sendall(b"6\r\n world\r\n0\r\n\r\n")
        read_request(connection)
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nagain")
        connection.recv(1)

    return script


async def read_awaited(body: Any, gate: threading.Event) -> list[bytes]:
    """Each step awaited, as the relay reads before its answer has started."""
    parts = [await anext(body)]
    gate.set()
    return parts + [part async for part in body]


async def read_listened(body: Any, gate: threading.Event) -> list[bytes]:
    """The push path (streaming.py): told of each arrival, the reader takes each chunk's body
    with `next_nowait`; at the answer's end it gets MustAwait, and the awaited step that follows
    ends the body."""
    taken: list[bytes] = []
    ended = asyncio.get_running_loop().create_future()

    def listener() -> None:
        try:
            while (part := body.next_nowait()) is not None:
                taken.append(part)
                gate.set()
        except http_types.MustAwait:
            ended.set_result(None)

    assert body.listen(listener)
    listener()  # what arrived with the head
    await ended
    body.listen(None)
    with pytest.raises(StopAsyncIteration):
        await anext(body)
    return taken


@pytest.mark.parametrize("read", [read_awaited, read_listened])
def test_chunks_come_as_sent_and_the_connection_serves_the_next_request(read: Any) -> None:
    """Each HTTP chunk is a step of the body (the relay's unit of work per token), awaited or
    taken when told of it; read to its end, the answer leaves the connection idle for the next
    request on the same socket."""
    gate = threading.Event()

    with peer(hello_world_then_again(gate)) as port:

        async def client() -> Any:
            conn = connection(port)
            try:
                response = await conn.handle_async_request(request(port))
                parts = await read(response.stream, gate)
                await response.aclose()
                idle = conn.is_idle()
                second = await exchange(conn, request(port))
                return parts, idle, second, conn.is_idle()
            finally:
                await conn.aclose()

        assert run(client) == ([b"hello", b" world"], True, (200, [b"again"]), True)


@pytest.mark.parametrize(
    ("reply", "body", "server_ends"),
    [
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\nbye", b"bye", False),
        # Neither a length nor chunks: the body runs to the end of the connection.
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end", b"until the end", True),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nold", b"old", False),
        # h11 reuses no HTTP/1.0 connection, whatever it says.
        (
            b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\nold",
            b"old",
            False,
        ),
        # Bytes past the answer's end are neither its body nor a next answer.
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n\r\nEVIL",
            b"ok",
            False,
        ),
    ],
)
def test_an_answer_that_ends_its_connection_is_read_whole_and_the_connection_closed(
    reply: bytes, body: bytes, server_ends: bool
) -> None:
    """Read to its end, such an answer closes the connection from the client's side, at once:
    the peer sees the end without closing first (unless the answer runs until it does)."""
    closed_by_client = threading.Event()

    def script(connection: socket.socket) -> None:
        read_request(connection)
        connection.sendall(reply)
        if server_ends:
            connection.shutdown(socket.SHUT_WR)
        connection.settimeout(HANG_GUARD_SECONDS)
        try:
            if connection.recv(1) == b"":
                closed_by_client.set()
        except ConnectionResetError:
            closed_by_client.set()

    with peer(script) as port:

        async def client() -> Any:
            conn = connection(port)
            status, parts = await exchange(conn, request(port))
            with anyio.fail_after(5):  # the client closes it, not the end of the test
                while not closed_by_client.is_set():
                    await anyio.sleep(0.01)
            return status, b"".join(parts), conn.is_idle(), conn.is_closed()

        assert run(client) == (200, body, False, True)


def test_an_answer_not_read_to_its_end_closes_its_connection() -> None:
    """What was not read is not vouched for, even if it arrived: closing early closes the
    connection, which is what tells SageMaker to stop the model."""
    ended = threading.Event()

    def script(connection: socket.socket) -> None:
        read_request(connection)
        connection.sendall(_CHUNKED_HEAD + b"3\r\none\r\n3\r\ntwo\r\n0\r\n\r\n")
        connection.settimeout(HANG_GUARD_SECONDS)
        if connection.recv(1) == b"":
            ended.set()

    with peer(script) as port:

        async def client() -> bool:
            conn = connection(port)
            response = await conn.handle_async_request(request(port))
            await anext(aiter(response.stream))  # type: ignore[arg-type]
            await response.aclose()
            return conn.is_closed()

        assert run(client) is True
    assert ended.is_set()


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (b"", "Server disconnected without sending a response"),
        (b"HTTP/1.1 200 OK\r\nContent-Len", "Server disconnected without sending a response"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "without sending complete"),
        (_CHUNKED_HEAD + b"5\r\nhel", "without sending complete"),
        (b"SMTP ready\r\n\r\n", "malformed answer"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", "malformed answer"),
        (_CHUNKED_HEAD + b"zz\r\n", "malformed answer"),
    ],
)
def test_an_answer_cut_short_or_malformed_is_a_remote_protocol_error(
    reply: bytes, message: str
) -> None:
    def script(connection: socket.socket) -> None:
        read_request(connection)
        connection.sendall(reply)

    with peer(script) as port:

        async def client() -> bool:
            conn = connection(port)
            with pytest.raises(http_types.RemoteProtocolError, match=message):
                await exchange(conn, request(port))
            await conn.aclose()
            return conn.is_closed()

        assert run(client) is True


def test_a_body_that_stops_coming_times_out() -> None:
    gate = threading.Event()

    def script(connection: socket.socket) -> None:
        read_request(connection)
        connection.sendall(_CHUNKED_HEAD + b"2\r\nok\r\n")
        gate.wait(HANG_GUARD_SECONDS)

    with peer(script) as port:

        async def client() -> list[bytes]:
            conn = connection(port)
            parts: list[bytes] = []
            try:
                response = await conn.handle_async_request(request(port, read_timeout=0.2))
                body = aiter(response.stream)  # type: ignore[arg-type]
                parts.append(await anext(body))
                with pytest.raises(http_types.ReadTimeout):
                    await anext(body)
                await response.aclose()
            finally:
                gate.set()
                await conn.aclose()
            return parts

        assert run(client) == [b"ok"]


_HOST = (b"Host", b"peer")


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ([_HOST, (b"X-Note", b"one\r\nInjected: yes")], b""),
        ([_HOST, (b"X-Note", b"line\nfeed")], b""),
        ([_HOST, (b"X-Bad\r\nName", b"v")], b""),
        ([_HOST, (b"X-Note", b"nul\0")], b""),
        ([_HOST, (b"Bad Name", b"v")], b""),
        ([_HOST, (b"", b"v")], b""),
        # HTTP/1.1 has no request without a Host (h11 refuses it too).
        ([(b"X-Note", b"v")], b""),
        # A body the server would frame otherwise: its tail read as a next request.
        ([_HOST, (b"X-Note", b"v")], b"GET /smuggled HTTP/1.1\r\n\r\n"),
        ([_HOST, (b"Content-Length", b"3")], b"longer than three"),
    ],
)
def test_a_request_that_would_break_the_framing_is_refused_before_sending(
    headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    seen: list[bytes] = []

    def script(connection: socket.socket) -> None:
        connection.settimeout(HANG_GUARD_SECONDS)
        try:
            seen.append(connection.recv(65536))
        except ConnectionResetError:  # the client drops a connection at once (network.py)
            seen.append(b"")

    with peer(script) as port:

        async def client() -> None:
            conn = connection(port)
            with pytest.raises(http_types.LocalProtocolError):
                await conn.handle_async_request(request(port, body=body, headers=headers))
            await conn.aclose()
            while not seen:  # the peer's thread may not have accepted the connection yet
                await anyio.sleep(0.01)

        run(client)
    assert seen == [b""]  # connected, then closed without a byte


def test_a_connection_takes_one_request_at_a_time() -> None:
    def script(connection: socket.socket) -> None:
        read_request(connection)
        connection.sendall(_CHUNKED_HEAD)
        connection.recv(1)

    with peer(script) as port:

        async def client() -> None:
            conn = connection(port)
            response = await conn.handle_async_request(request(port))
            with pytest.raises(http_types.ConnectionNotAvailable):
                await conn.handle_async_request(request(port))
            await response.aclose()

        run(client)


def test_https_verifies_the_host_and_speaks_through_tls() -> None:
    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("localhost").configure_cert(server_context)
    client_context = ssl.create_default_context()
    authority.configure_trust(client_context)
    seen: list[bytes] = []

    def script(connection: socket.socket) -> None:
        # Closed here, not when collected: a socket closed late closes whatever a later test
        # opened under the same descriptor number.
        with server_context.wrap_socket(connection, server_side=True) as tls:
            seen.append(read_request(tls))
            tls.sendall(_CHUNKED_HEAD + b"6\r\nsecret\r\n0\r\n\r\n")
            tls.recv(1)

    with peer(script) as port:

        async def client() -> Any:
            conn = connection(port, scheme=b"https", context=client_context)
            try:
                return await exchange(conn, request(port, scheme="https"))
            finally:
                await conn.aclose()

        assert run(client) == (200, [b"secret"])
    assert seen[0].startswith(b"POST /endpoints/e/invocations?x=1 HTTP/1.1\r\nHost: peer\r\n")
