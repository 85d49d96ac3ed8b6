"""The relay's own server under abuse, as Lambda starts it (run.sh): requests that never finish
arriving time out, and connections past MAX_CONNECTIONS are refused quickly, counted, and cost
the log a line every few seconds, never a line per connection."""

from __future__ import annotations

import json
import shlex
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import pytest
from streamer import contract

from jumpstream.local import (
    RELAY_ROOT,
    StackConfig,
    free_port,
    healthy_child,
    relay_command,
    relay_environment,
)
from jumpstream.procs import LineBuffer
from tests.e2e.support import HANG_GUARD_SECONDS
from tests.streamer.support import wait_for

#: The limit the flood tests set: small, so a test can go past it with a few sockets.
LIMIT = 4
#: Short request timeouts for the timeout tests (seconds).
SHORT_TIMEOUT = 0.5
HEALTH = b"GET /health HTTP/1.1\r\nHost: relay\r\n\r\n"


@dataclass
class Relay:
    port: int
    output: LineBuffer

    def connect(self) -> socket.socket:
        connection = socket.create_connection(("127.0.0.1", self.port), HANG_GUARD_SECONDS)
        connection.settimeout(HANG_GUARD_SECONDS)
        return connection

    def log(self) -> list[dict[str, object]]:
        """The relay's JSON log lines so far."""
        documents = []
        for name, line in self.output.lines():
            if name == "relay" and line.startswith("{"):
                documents.append(json.loads(line))
        return documents


@contextmanager
def relay(shell_prefix: str | None = None, **settings: str) -> Iterator[Relay]:
    """The relay run.sh starts, healthy; after `shell_prefix` (a `ulimit`) where given."""
    port = free_port()
    output = LineBuffer(keep=2000)
    command = relay_command()
    if shell_prefix is not None:
        command = ["sh", "-c", f"{shell_prefix} && exec {' '.join(map(shlex.quote, command))}"]
    with healthy_child(
        "relay",
        command,
        cwd=RELAY_ROOT,
        env=relay_environment(
            StackConfig(relay_env=settings), emulator_url="http://127.0.0.1:9", port=port
        ),
        port=port,
        sink=output,
        timeout=HANG_GUARD_SECONDS,
    ):
        yield Relay(port, output)


def read_response(connection: socket.socket) -> tuple[bytes, bytes]:
    """One whole response with a Content-Length: its head and its body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            raise AssertionError(f"the connection ended after {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += connection.recv(65536)
    return head, body


def ended(connection: socket.socket) -> bool:
    """The relay closed the connection (its end, or a reset)."""
    try:
        return connection.recv(1) == b""
    except ConnectionResetError:
        return True


def error_of(head: bytes, body: bytes) -> tuple[int, str]:
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body)["type"]


# --- requests that never finish arriving ------------------------------------------------------


@pytest.fixture(scope="module")
def impatient() -> Iterator[Relay]:
    with relay(
        **{
            contract.REQUEST_HEAD_TIMEOUT_SECONDS.name: str(SHORT_TIMEOUT),
            contract.REQUEST_BODY_TIMEOUT_SECONDS.name: str(SHORT_TIMEOUT),
        }
    ) as running:
        yield running


@pytest.mark.parametrize(
    "sent",
    [b"", b"POST / HTTP/1.1\r\nHost: relay\r\nContent-Type: appl"],
    ids=["nothing", "half a head"],
)
def test_a_head_that_does_not_arrive_in_time_is_a_408(impatient: Relay, sent: bytes) -> None:
    with impatient.connect() as connection:
        connection.sendall(sent)
        head, body = read_response(connection)
        assert error_of(head, body) == (408, "request_timeout")
        assert b"connection: close" in head.lower()
        assert ended(connection)


def test_a_body_that_does_not_arrive_in_time_is_a_408(impatient: Relay) -> None:
    with impatient.connect() as connection:
        connection.sendall(
            b"POST / HTTP/1.1\r\nHost: relay\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"inputs": "slow'
        )
        head, body = read_response(connection)
        assert error_of(head, body) == (408, "request_timeout")
        assert ended(connection)


def test_a_kept_alive_connection_waits_for_its_next_request_as_long_as_before(
    impatient: Relay,
) -> None:
    """The head timeout starts with the next request's first byte, not with the last answer:
    between requests the keep-alive timeout (for the Web Adapter's connections) applies."""
    with impatient.connect() as connection:
        connection.sendall(HEALTH)
        assert read_response(connection)[0].startswith(b"HTTP/1.1 200")
        time.sleep(3 * SHORT_TIMEOUT)
        connection.sendall(HEALTH)
        assert read_response(connection)[0].startswith(b"HTTP/1.1 200")


# --- requests that are not HTTP -----------------------------------------------------------------


def test_garbage_in_a_loop_gets_a_json_400_each_and_one_counted_line(
    impatient: Relay,
) -> None:
    """A client that sends what no HTTP parser reads, over and over: each gets the relay's JSON
    400 and a closed connection; the relay writes no line per request (uvicorn would write its
    warning each time), only its count, the first at once."""
    flood = 40
    before = len(impatient.output.lines())
    answers = []
    for _ in range(flood):
        with impatient.connect() as connection:
            connection.sendall(b"\x16\x03\x01 not http at all\r\n\r\n")
            answers.append(error_of(*read_response(connection)))
            assert ended(connection)
    assert answers == [(400, "invalid_body")] * flood
    deadline = time.monotonic() + HANG_GUARD_SECONDS
    while time.monotonic() < deadline:
        written = [line for _, line in impatient.output.lines()[before:]]
        counted = [line for line in written if "malformed_requests" in line]
        if counted:
            break
        time.sleep(0.02)
    assert [json.loads(line)["malformed_requests"] for line in counted] == [1]
    assert not [line for line in written if "Invalid HTTP" in line or "Traceback" in line]


# --- connections past the limit ---------------------------------------------------------------


@pytest.fixture
def limited() -> Iterator[Relay]:
    with relay(**{contract.MAX_CONNECTIONS.name: str(LIMIT)}) as running:
        yield running


def served(running: Relay, stack: ExitStack, count: int) -> list[socket.socket]:
    """`count` kept-alive connections the relay has answered on (so they count as open), and
    their requests' log lines read: what a test finds in the log after this is its own (the
    relay writes a request's line as its answer leaves, and another thread reads the log)."""
    logged = len(finished_lines(running))
    connections = []
    for _ in range(count):
        connection = stack.enter_context(running.connect())
        connection.sendall(HEALTH)
        assert read_response(connection)[0].startswith(b"HTTP/1.1 200")
        connections.append(connection)
    assert wait_for(lambda: len(finished_lines(running)) >= logged + count)
    return connections


def finished_lines(running: Relay) -> list[dict[str, object]]:
    return [line for line in running.log() if line.get("message") == "request finished"]


def refusal_lines(running: Relay) -> list[dict[str, object]]:
    return [line for line in running.log() if "refused_connections" in line]


def test_a_connection_past_the_limit_is_refused_with_a_503_and_counted(limited: Relay) -> None:
    with ExitStack() as stack:
        served(limited, stack, LIMIT)
        with limited.connect() as extra:
            extra.sendall(HEALTH)
            head, body = read_response(extra)
            assert error_of(head, body) == (503, "overloaded")
            assert b"retry-after: 2" in head.lower()
            assert ended(extra)
    # The first refusal is logged at once, with its metric.
    deadline = time.monotonic() + HANG_GUARD_SECONDS
    while not refusal_lines(limited) and time.monotonic() < deadline:
        time.sleep(0.02)
    (line,) = refusal_lines(limited)
    assert line["refused_connections"] == 1
    (directive,) = line["_aws"]["CloudWatchMetrics"]  # type: ignore[index]
    assert directive["Metrics"] == [{"Name": "RefusedConnections", "Unit": "Count"}]
    assert line["RefusedConnections"] == [1.0]
    # Once connections close, new ones are served again.
    with limited.connect() as again:
        again.sendall(HEALTH)
        assert read_response(again)[0].startswith(b"HTTP/1.1 200")


def test_a_flood_past_the_limit_costs_no_line_per_connection(limited: Relay) -> None:
    flood = 60
    with ExitStack() as stack:
        served(limited, stack, LIMIT)
        before = len(limited.output.lines())
        answers: list[int] = []
        for _ in range(flood):
            with limited.connect() as extra:
                try:
                    extra.sendall(HEALTH)
                    answers.append(error_of(*read_response(extra))[0])
                except (ConnectionResetError, BrokenPipeError, AssertionError):
                    answers.append(0)  # dropped at once: no answer
        assert answers == [503] * flood
        # Everything the relay wrote meanwhile: one refusal line at most (the first; the rest
        # are counted for the next line, due seconds later), no traceback, no warning per
        # connection.
        written = [line for _, line in limited.output.lines()[before:]]
        assert len(written) <= 1, written
        assert all("refused_connections" in line for line in written), written


def test_past_twice_the_limit_a_connection_is_dropped_at_once(limited: Relay) -> None:
    """Connections that send nothing hold their place only until their head timeout: past
    twice the limit, a new one is closed as soon as it is accepted, without an answer."""
    with ExitStack() as stack:
        served(limited, stack, LIMIT)
        silent = [stack.enter_context(limited.connect()) for _ in range(LIMIT)]
        with limited.connect() as dropped:
            assert ended(dropped)
        for connection in silent:
            connection.sendall(HEALTH)
            assert error_of(*read_response(connection)) == (503, "overloaded")


# --- the file-descriptor limit ------------------------------------------------------------------


def started_lines(shell_prefix: str, **settings: str) -> list[str]:
    """The relay's start-up lines when run.sh is started after `shell_prefix` (ulimit)."""
    with relay(shell_prefix, **settings) as running:
        return [line for name, line in running.output.lines() if name == "relay"]


def test_the_soft_file_limit_is_raised_to_the_hard_one() -> None:
    import resource

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY or hard <= 256:
        pytest.skip(f"no finite hard limit above 256 open files here ({hard})")
    lines = started_lines("ulimit -S -n 256")
    most = (hard - 64) // 4
    expected = f"jumpstream-relay: serving at most {most} connections at once ({hard} open files)"
    assert expected in lines


def test_the_limit_stays_below_what_the_open_files_allow() -> None:
    lines = started_lines("ulimit -n 256", **{contract.MAX_CONNECTIONS.name: "100"})
    assert (
        "jumpstream-relay: serving at most 48 connections at once "
        "(256 open files: MAX_CONNECTIONS 100 is more than they allow)"
    ) in lines
