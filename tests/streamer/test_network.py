"""network.py: the network backend (httpcore's interface) against loopback peers, for each thing
the relay relies on: reads and their end, read and write timeouts, flow control both ways, a
cancelled read, an immediate close, TLS verified against a CA and a host name, and a pool that
replaces a connection the far side closed while it was idle."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import ssl
import threading
import time
from typing import Any

import anyio
import pytest
import trustme
from streamer import http_types
from streamer.network import HIGH_WATER_BYTES, AsyncioBackend, NetworkStream

from tests.streamer.loopback import Script, peer, run
from tests.streamer.support import HANG_GUARD_SECONDS


async def connect(port: int, **options: Any) -> NetworkStream:
    return await AsyncioBackend().connect_tcp(
        "127.0.0.1", port, timeout=HANG_GUARD_SECONDS, **options
    )


async def read_to_end(stream: NetworkStream) -> bytes:
    chunks = []
    while chunk := await stream.read(65536, timeout=HANG_GUARD_SECONDS):
        chunks.append(chunk)
    return b"".join(chunks)


def test_reads_return_what_arrived_then_the_end() -> None:
    def script(connection: socket.socket) -> None:
        connection.sendall(b"first ")
        connection.sendall(b"second")
        connection.shutdown(socket.SHUT_WR)
        connection.recv(1)

    async def client(port: int) -> bytes:
        stream = await connect(port)
        try:
            return await read_to_end(stream)
        finally:
            await stream.aclose()

    with peer(script) as port:
        assert run(lambda: client(port)) == b"first second"


@pytest.mark.parametrize("waiting", ["awaited", "listened"])
def test_a_read_that_waits_past_its_timeout_raises_read_timeout(waiting: str) -> None:
    """Awaited, the read raises it; listened for (the push path), the listener is called and
    `read_nowait` raises it. Either way the connection is still there to read."""
    gate = threading.Event()

    def script(connection: socket.socket) -> None:
        gate.wait(HANG_GUARD_SECONDS)
        connection.sendall(b"late")
        connection.recv(1)

    async def client(port: int) -> bytes:
        stream = await connect(port)
        try:
            if waiting == "awaited":
                with pytest.raises(http_types.ReadTimeout):
                    await stream.read(1024, timeout=0.1)
            else:
                assert await listened(stream, 0.1) == [http_types.ReadTimeout]
            gate.set()
            return await stream.read(1024, timeout=HANG_GUARD_SECONDS)
        finally:
            await stream.aclose()

    with peer(script) as port:
        try:
            assert run(lambda: client(port)) == b"late"
        finally:
            gate.set()


def test_each_read_waits_its_own_timeout_from_its_start() -> None:
    """One timer per connection serves every read: it moves on with each read, so a read
    never times out on an earlier read's clock, nor before its own timeout has passed, and a
    shorter timeout than an earlier read's still holds."""
    gate = threading.Event()

    def script(connection: socket.socket) -> None:
        # 1 s of bytes, each 0.5 s sooner than the reads' timeout (a margin for a busy machine):
        # a timer left on the first short read's clock would fire 0.3 s before the last byte.
        for _ in range(10):
            time.sleep(0.1)
            connection.sendall(b"x")
        gate.wait(HANG_GUARD_SECONDS)
        connection.sendall(b"late")
        connection.recv(1)

    async def client(port: int) -> tuple[bytes, float]:
        stream = await connect(port)
        try:
            received = await stream.read(1024, timeout=HANG_GUARD_SECONDS)
            while len(received) < 10:
                received += await stream.read(1024, timeout=0.6)
            started = time.monotonic()
            with pytest.raises(http_types.ReadTimeout):
                await stream.read(1024, timeout=0.4)
            waited = time.monotonic() - started
            gate.set()
            return received + await stream.read(1024, timeout=HANG_GUARD_SECONDS), waited
        finally:
            await stream.aclose()

    with peer(script) as port:
        try:
            received, waited = run(lambda: client(port))
        finally:
            gate.set()
    assert received == b"xxxxxxxxxxlate"
    assert 0.4 <= waited < HANG_GUARD_SECONDS / 2


def test_a_cancelled_read_consumes_nothing() -> None:
    """The relay cancels a waiting read when its caller leaves or its deadline comes; what
    arrives afterwards is still there for whoever reads next."""
    gate = threading.Event()

    def script(connection: socket.socket) -> None:
        gate.wait(HANG_GUARD_SECONDS)
        connection.sendall(b"after the cancel")
        connection.recv(1)

    async def client(port: int) -> tuple[bool, bytes]:
        stream = await connect(port)
        try:
            with anyio.move_on_after(0.1) as waited:
                await stream.read(1024, timeout=HANG_GUARD_SECONDS)
            gate.set()
            return waited.cancelled_caught, await stream.read(1024, timeout=HANG_GUARD_SECONDS)
        finally:
            await stream.aclose()

    with peer(script) as port:
        try:
            assert run(lambda: client(port)) == (True, b"after the cancel")
        finally:
            gate.set()


def test_a_reader_that_stops_reading_stops_the_sender() -> None:
    """Flow control: unread bytes pile up only to the high-water mark, then the socket is not
    read, the kernel's buffers fill and the sender blocks (SageMaker waits for a slow caller).
    Reading again resumes it, and every byte arrives in order."""
    total = 16 * 1024 * 1024
    block = bytes(range(256)) * 256  # 64 KiB
    sent = 0
    sender_blocked = threading.Event()
    sender_done = threading.Event()
    gate = threading.Event()

    def script(connection: socket.socket) -> None:
        nonlocal sent
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
        connection.settimeout(0.5)
        while sent < total:
            try:
                # From where the last send stopped: a send may take part of what it is given.
                offset = sent % len(block)
                sent += connection.send(block[offset : min(len(block), offset + total - sent)])
            except TimeoutError:
                sender_blocked.set()  # the client's side is full: wait for it to read
                gate.wait(HANG_GUARD_SECONDS)
                connection.settimeout(HANG_GUARD_SECONDS)
        sender_done.set()
        connection.shutdown(socket.SHUT_WR)
        connection.recv(1)

    async def client(port: int) -> tuple[int, str]:
        small_window = [(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)]
        stream = await connect(port, socket_options=small_window)
        try:
            while not sender_blocked.is_set() and not sender_done.is_set():
                await anyio.sleep(0.05)
            blocked_at = sent
            gate.set()
            received = await read_to_end(stream)
            return blocked_at, hashlib.sha256(received).hexdigest()
        finally:
            await stream.aclose()

    with peer(script) as port:
        try:
            blocked_at, digest = run(lambda: client(port))
        finally:
            gate.set()
    expected = (block * (total // len(block)))[:total]
    assert digest == hashlib.sha256(expected).hexdigest()
    # What got through before the sender blocked: the kernel's buffers and the high-water mark
    # (plus one socket read), nowhere near the whole answer.
    assert blocked_at < 4 * 1024 * 1024 + HIGH_WATER_BYTES, blocked_at


def test_writes_reach_the_peer_in_order_with_no_read_after_them() -> None:
    """Writes of one step leave together when the event loop next runs, read or no read."""
    received = bytearray()
    arrived = threading.Event()

    def script(connection: socket.socket) -> None:
        connection.settimeout(HANG_GUARD_SECONDS)
        while len(received) < len(b"head, body"):
            received.extend(connection.recv(1024))
        arrived.set()
        connection.recv(1)

    async def client(port: int) -> None:
        stream = await connect(port)
        try:
            await stream.write(b"head, ")
            await stream.write(b"body")
            while not arrived.is_set():
                await anyio.sleep(0.01)
        finally:
            await stream.aclose()

    with peer(script) as port:
        run(lambda: client(port))
    assert bytes(received) == b"head, body"


def test_a_write_the_peer_does_not_take_times_out() -> None:
    gate = threading.Event()

    def script(connection: socket.socket) -> None:
        gate.wait(HANG_GUARD_SECONDS)  # never reads

    async def client(port: int) -> None:
        stream = await connect(port)
        try:
            with pytest.raises(http_types.WriteTimeout):
                await stream.write(b"x" * (64 * 1024 * 1024), timeout=0.2)
        finally:
            await stream.aclose()

    with peer(script) as port:
        try:
            run(lambda: client(port))
        finally:
            gate.set()


def test_closing_drops_the_connection_at_once() -> None:
    """What tells SageMaker to stop the model: the peer sees the connection end right away,
    with bytes it sent still unread."""
    ended = threading.Event()

    def script(connection: socket.socket) -> None:
        connection.sendall(b"unread")
        try:
            connection.settimeout(HANG_GUARD_SECONDS)
            if connection.recv(1) == b"":
                ended.set()
        except ConnectionResetError:
            ended.set()

    async def client(port: int) -> None:
        stream = await connect(port)
        await anyio.sleep(0.05)  # the bytes arrive, unread
        await stream.aclose()

    with peer(script) as port:
        run(lambda: client(port))
        assert ended.wait(HANG_GUARD_SECONDS)


def test_nothing_listening_is_a_connect_error() -> None:
    with socket.create_server(("127.0.0.1", 0)) as unused:
        port = unused.getsockname()[1]
    with pytest.raises(http_types.ConnectError):
        run(lambda: connect(port))


# --- TLS ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


def tls_script(authority: trustme.CA, reply: bytes) -> Script:
    """Serve TLS with a certificate for localhost from `authority`, send `reply`."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("localhost").configure_cert(context)

    def script(connection: socket.socket) -> None:
        connection.settimeout(HANG_GUARD_SECONDS)
        try:
            tls = context.wrap_socket(connection, server_side=True)
        except ssl.SSLError:
            return  # the client refused the certificate
        with tls:
            tls.sendall(reply)
            tls.recv(1)

    return script


def client_context(authority: trustme.CA) -> ssl.SSLContext:
    """As the relay builds it: the default context, trusting one CA bundle."""
    context = ssl.create_default_context()
    authority.configure_trust(context)
    return context


async def tls_read(port: int, context: ssl.SSLContext, hostname: str) -> tuple[bytes, bool]:
    stream = await connect(port)
    tls = await stream.start_tls(context, server_hostname=hostname, timeout=HANG_GUARD_SECONDS)
    try:
        return await tls.read(1024, timeout=HANG_GUARD_SECONDS), (
            tls.get_extra_info("ssl_object") is not None
        )
    finally:
        await tls.aclose()


def test_tls_to_a_certificate_the_bundle_trusts(authority: trustme.CA) -> None:
    with peer(tls_script(authority, b"verified")) as port:
        data, encrypted = run(lambda: tls_read(port, client_context(authority), "localhost"))
    assert (data, encrypted) == (b"verified", True)


def test_tls_refuses_a_certificate_from_another_authority(authority: trustme.CA) -> None:
    stranger = client_context(trustme.CA())
    refused = pytest.raises(http_types.ConnectError, match="CERTIFICATE_VERIFY_FAILED")
    with peer(tls_script(authority, b"never read")) as port, refused:
        run(lambda: tls_read(port, stranger, "localhost"))


def test_tls_refuses_a_certificate_for_another_host(authority: trustme.CA) -> None:
    refused = pytest.raises(http_types.ConnectError, match="CERTIFICATE_VERIFY_FAILED")
    with peer(tls_script(authority, b"never read")) as port, refused:
        run(lambda: tls_read(port, client_context(authority), "runtime.sagemaker.example"))


def test_a_tls_handshake_with_no_answer_times_out(authority: trustme.CA) -> None:
    gate = threading.Event()

    def silent(connection: socket.socket) -> None:
        gate.wait(HANG_GUARD_SECONDS)

    async def client(port: int) -> None:
        stream = await connect(port)
        await stream.start_tls(client_context(authority), server_hostname="localhost", timeout=0.2)

    with peer(silent) as port:
        try:
            with pytest.raises(http_types.ConnectTimeout):
                run(lambda: client(port))
        finally:
            gate.set()


# --- a listener instead of a waiting read -----------------------------------------------------


async def listened(stream: NetworkStream, timeout: float | None) -> list[Any]:
    """What a listener sees until the connection's end (or a timeout): each call's
    `read_nowait`, in order; bytes, None, or the exception raised."""
    seen: list[Any] = []
    ended = asyncio.get_running_loop().create_future()

    def listener() -> None:
        while not ended.done():
            try:
                data = stream.read_nowait(65536)
            except (http_types.MustAwait, http_types.ReadTimeout) as error:
                seen.append(type(error))
                ended.set_result(None)
                return
            seen.append(data)
            if data is None:
                return

    stream.listen(listener, timeout)
    try:
        await ended
    finally:
        stream.listen(None, None)
    return seen


def test_a_listener_is_told_of_each_arrival_and_of_the_end() -> None:
    """Each arrival calls the listener, which takes it without awaiting; at the end,
    `read_nowait` says MustAwait, and the awaited read then says how it ended."""

    def script(connection: socket.socket) -> None:
        connection.sendall(b"first ")
        time.sleep(0.1)
        connection.sendall(b"second")
        connection.shutdown(socket.SHUT_WR)
        connection.recv(1)

    async def client(port: int) -> tuple[list[Any], bytes]:
        stream = await connect(port)
        try:
            seen = await listened(stream, HANG_GUARD_SECONDS)
            return seen, await stream.read(1024, timeout=HANG_GUARD_SECONDS)
        finally:
            await stream.aclose()

    with peer(script) as port:
        seen, after = run(lambda: client(port))
    received = b"".join(item for item in seen if isinstance(item, bytes))
    assert received == b"first second"
    assert seen[-1] is http_types.MustAwait
    assert after == b""  # the end, as an awaited read tells it
