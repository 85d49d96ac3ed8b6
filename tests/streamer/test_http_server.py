"""http_server.py and gathered_writes.py: what one event-loop step writes leaves in one send,
and nothing waits for it.

Over a real socket with uvicorn as __main__ runs it, and the transport on its own against a
transport that records its writes.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from streamer import http_server
from streamer.gathered_writes import FLUSH_AT_BYTES, GatheringTransport
from streamer.http_server import (
    RESERVED_FILE_DESCRIPTORS,
    SERVER_OPTIONS,
    ConnectionGate,
    GatheringH11Protocol,
    GatheringProtocol,
    connection_limit,
)

from tests.serving import serving
from tests.streamer.support import HANG_GUARD_SECONDS

PARTS = [b"one ", b"two ", b"three"]


async def burst(scope: Any, receive: Any, send: Any) -> None:
    """A head and three body messages written in one step (no await that waits between them)."""
    await send({"type": "http.response.start", "status": 200, "headers": []})
    for part in PARTS:
        await send({"type": "http.response.body", "body": part, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


def test_a_steps_writes_leave_in_one_send() -> None:
    with serving(burst) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=HANG_GUARD_SECONDS) as client:
            client.sendall(b"GET / HTTP/1.1\r\nHost: relay\r\n\r\n")
            # One recv, made before the server wrote anything: it returns what the first send
            # carried, and that is the whole response, head, every part and the body's end.
            received = client.recv(1 << 16)
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert body == b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in PARTS) + b"0\r\n\r\n"


async def step_ends() -> None:
    """End this step and let the loop run the next turn's callbacks (this task resumes in the
    turn after the one it yielded in: the flush is due in that one)."""
    await asyncio.sleep(0)
    await asyncio.sleep(0)


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def get_write_buffer_size(self) -> int:
        return sum(map(len, self.writes))


def test_writes_are_joined_until_the_step_ends() -> None:
    asyncio.run(_test_writes_are_joined_until_the_step_ends())


async def _test_writes_are_joined_until_the_step_ends() -> None:
    recorder = RecordingTransport()
    transport = GatheringTransport(recorder)
    transport.write(b"a")
    transport.write(b"")
    transport.write(bytearray(b"b"))
    assert recorder.writes == []
    assert transport.get_write_buffer_size() == 2
    await step_ends()
    assert recorder.writes == [b"ab"]
    transport.write(b"c")
    await step_ends()
    assert recorder.writes == [b"ab", b"c"]


def test_a_large_write_goes_at_once() -> None:
    asyncio.run(_test_a_large_write_goes_at_once())


async def _test_a_large_write_goes_at_once() -> None:
    recorder = RecordingTransport()
    transport = GatheringTransport(recorder)
    transport.write(b"a")
    transport.write(b"x" * FLUSH_AT_BYTES)
    assert recorder.writes == [b"a" + b"x" * FLUSH_AT_BYTES]


def test_close_sends_what_was_gathered_and_abort_drops_it() -> None:
    asyncio.run(_test_close_sends_what_was_gathered_and_abort_drops_it())


async def _test_close_sends_what_was_gathered_and_abort_drops_it() -> None:
    recorder = RecordingTransport()
    transport = GatheringTransport(recorder)
    transport.write(b"last words")
    transport.close()
    assert recorder.writes == [b"last words"]
    assert recorder.closed

    recorder = RecordingTransport()
    transport = GatheringTransport(recorder)
    transport.write(b"never sent")
    transport.abort()
    await step_ends()
    assert recorder.writes == []
    assert recorder.aborted


def test_nothing_is_written_to_a_transport_that_is_closing() -> None:
    asyncio.run(_test_nothing_is_written_to_a_transport_that_is_closing())


async def _test_nothing_is_written_to_a_transport_that_is_closing() -> None:
    recorder = RecordingTransport()
    transport = GatheringTransport(recorder)
    transport.write(b"too late")
    recorder.closed = True  # the connection was lost before the step ended
    await step_ends()
    assert recorder.writes == []


# --- the gate: limits and the count of refusals -----------------------------------------------


def test_the_connection_limit_leaves_four_file_descriptors_per_connection() -> None:
    assert connection_limit(1024, None) == (1024 - RESERVED_FILE_DESCRIPTORS) // 4 == 240
    assert connection_limit(1024, 100) == 100
    assert connection_limit(1024, 10_000) == 240
    assert connection_limit(10, None) == 1


@pytest.mark.parametrize("counted", ["refused", "malformed"])
def test_each_count_is_reported_at_once_then_at_most_once_per_interval(
    counted: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Connections refused past the limit and requests that were not HTTP: each its own count
    and its own lines, the first at once, then one line per interval for what came meanwhile."""
    interval = 0.05
    monkeypatch.setattr(http_server, "REFUSALS_REPORT_SECONDS", interval)
    reports: dict[str, list[int]] = {"refused": [], "malformed": []}

    async def run() -> None:
        gate = ConnectionGate(
            limit=1,
            head_timeout=1,
            body_timeout=1,
            on_refused=reports["refused"].append,
            on_malformed=reports["malformed"].append,
        )
        count = gate.refuse if counted == "refused" else gate.count_malformed
        for _ in range(5):
            count()
        assert reports[counted] == [1]  # the first at once, the others counted for the next line
        await asyncio.sleep(5 * interval)
        assert reports[counted] == [1, 4]  # one line for them; then a quiet interval ends the timer
        count()
        assert reports[counted] == [1, 4, 1]  # after a quiet interval, at once again
        other = "malformed" if counted == "refused" else "refused"
        assert (getattr(gate, counted), getattr(gate, other), reports[other]) == (6, 0, [])

    asyncio.run(run())


def test_uvicorns_line_per_unparsable_request_is_filtered_and_nothing_else() -> None:
    line_filter = http_server.MalformedRequestLines()

    def record(message: str) -> logging.LogRecord:
        return logging.LogRecord("uvicorn.error", logging.WARNING, __file__, 1, message, (), None)

    assert not line_filter.filter(record(http_server.UVICORN_MALFORMED_REQUEST_LINE))
    assert line_filter.filter(record("Unsupported upgrade request."))
    assert line_filter.filter(record("Started server process [%d]"))


# --- the gate, on either protocol -------------------------------------------------------------

#: The gated servers' head and body timeouts (seconds).
SHORT_TIMEOUT = 0.3


async def echo(scope: Any, receive: Any, send: Any) -> None:
    """Reads the whole body, then answers it."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    length = (b"content-length", b"%d" % len(body))
    await send({"type": "http.response.start", "status": 200, "headers": [length]})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(
    params=[GatheringProtocol, GatheringH11Protocol],
    ids=lambda protocol: protocol.__name__,
)
def gated_port(request: pytest.FixtureRequest) -> Iterator[int]:
    """A server gated as __main__ gates it, on httptools' protocol (where it loads) and on h11's
    (where it does not)."""
    gate = ConnectionGate(limit=8, head_timeout=SHORT_TIMEOUT, body_timeout=SHORT_TIMEOUT)
    options = {**SERVER_OPTIONS, "http": functools.partial(request.param, gate=gate)}
    with serving(echo, options) as url:
        yield int(url.rsplit(":", 1)[1])


def exchange(connection: socket.socket, request: bytes) -> bytes:
    """Send `request`; the response's head and body, as far as the server sent them."""
    connection.sendall(request)
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = connection.recv(1 << 16)
        if not chunk:
            break
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if b"content-length" in line.lower()
        ),
        0,
    )
    while len(body) < length:
        body += connection.recv(1 << 16)
    return head + b"\r\n\r\n" + body


def connect(port: int) -> socket.socket:
    connection = socket.create_connection(("127.0.0.1", port), timeout=HANG_GUARD_SECONDS)
    connection.settimeout(HANG_GUARD_SECONDS)
    return connection


@pytest.mark.parametrize(
    ("sent", "status", "kind"),
    [
        (b"POST / HTTP/1.1\r\nHost: relay\r\nContent-Le", 408, "request_timeout"),
        (
            b"POST / HTTP/1.1\r\nHost: relay\r\nContent-Length: 10\r\n\r\nhalf",
            408,
            "request_timeout",
        ),
        (b"NOT HTTP AT ALL\r\n\r\n", 400, "invalid_body"),
        (b"GET / HTTP/1.1\r\nHost relay\r\n\r\n", 400, "invalid_body"),
        (b"\x16\x03\x01\x02\x00", 400, "invalid_body"),
    ],
    ids=["half a head", "half a body", "not http", "a header without a colon", "a TLS hello"],
)
def test_a_request_not_whole_in_time_or_not_http_gets_a_json_error_then_a_close(
    gated_port: int, sent: bytes, status: int, kind: str
) -> None:
    """408 for what did not arrive in time; 400 for what no HTTP/1.1 parser reads (uvicorn's
    own answer to that is plain text)."""
    with connect(gated_port) as connection:
        response = exchange(connection, sent)
        head, _, body = response.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 %d " % status)
        assert b"content-type: application/json" in head.lower()
        assert json.loads(body)["type"] == kind
        assert connection.recv(1) == b""


def test_a_whole_request_is_answered_and_its_connection_waits_for_the_next(
    gated_port: int,
) -> None:
    """Neither timeout runs between requests: a kept-alive connection idle for longer than
    both still serves its next request."""
    request = b"POST / HTTP/1.1\r\nHost: relay\r\nContent-Length: 5\r\n\r\nhello"
    with connect(gated_port) as connection:
        assert exchange(connection, request).endswith(b"\r\n\r\nhello")
        time.sleep(3 * SHORT_TIMEOUT)
        connection.sendall(request[:20])  # the next head, in two parts
        time.sleep(SHORT_TIMEOUT / 3)
        assert exchange(connection, request[20:]).endswith(b"\r\n\r\nhello")
