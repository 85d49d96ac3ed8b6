"""The floor under a paced token (``pipe_cpu_us_per_paced_token``): a raw asyncio byte pipe.

``relay_cpu_us_per_paced_token`` is what the relay costs per token when every token is a wake-up
of its own. Part of that is no relay's to save: the event loop waking, one read from SageMaker's
connection and one write to the caller's, both over loopback. This pipe does that part alone: a
process on the same event loop (asyncio, as uvicorn runs the relay) that, for each connection,
waits for the caller's request, sends SageMaker's request (signed as boto3 signs it, made by the
bench) and copies every byte of the answer to the caller as it arrives, unparsed, one `write` per
read, closing when the emulator does. paced.py runs it side by side with the relay.

A relay can cost less than this only by leaving Python's event loop or by reading several tokens
per wake-up (which the model's pace decides, not the relay).

Run as ``python -m jumpstream.bench.pipe_floor REQUEST_FILE UPSTREAM_HOST UPSTREAM_PORT PORT``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from jumpstream.bench.plan import REQUEST_TIMEOUT_SECONDS, BenchFailed
from jumpstream.local import DUMMY_CREDENTIAL, ENDPOINT_NAME, LOOPBACK, LocalStack, free_port
from jumpstream.procs import Child, LineSink

__all__ = ["BytePipe", "byte_pipe"]

_READ_BYTES: Final = 64 * 1024
_START_GUARD_SECONDS: Final = 30.0
#: What the caller sends the pipe: its content does not matter, only that a request came.
_CALLER_REQUEST: Final = b"POST / HTTP/1.1\r\nHost: pipe\r\nContent-Length: 0\r\n\r\n"
#: Each PayloadPart of the answer names its event type once in its headers.
_PAYLOAD_PART: Final = b"PayloadPart"


# --- the pipe (its own process) -----------------------------------------------------------------


class _Upstream(asyncio.Protocol):
    def __init__(self, request: bytes, caller: asyncio.Transport) -> None:
        self._request = request
        self._caller = caller

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.write(self._request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        self._caller.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._caller.close()


class _Caller(asyncio.Protocol):
    def __init__(self, request: bytes, host: str, port: int) -> None:
        self._request = request
        self._host = host
        self._port = port
        self._received = b""
        self._started = False
        self._connecting: asyncio.Task[object] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        if self._started:
            return
        self._received += data
        if b"\r\n\r\n" in self._received:  # the caller sends no body
            self._started = True
            loop = asyncio.get_running_loop()
            self._connecting = loop.create_task(
                loop.create_connection(
                    lambda: _Upstream(self._request, self._transport),  # type: ignore[arg-type]
                    self._host,
                    self._port,
                )
            )


async def _serve(request: bytes, host: str, port: int, listen: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Caller(request, host, port), LOOPBACK, listen)
    print(f"pipe listening on {listen}", flush=True)
    await server.serve_forever()


def main(argv: Sequence[str]) -> int:
    request_file, host, port, listen = argv
    asyncio.run(_serve(Path(request_file).read_bytes(), host, int(port), int(listen)))
    return 0


# --- starting and driving the pipe (the bench's process) ------------------------------------------


def _signed_request(emulator_url: str, body: bytes) -> bytes:
    """SageMaker's request as boto3 signs it, asking the emulator to close after the answer."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    parts = urlsplit(emulator_url)
    path = f"/endpoints/{ENDPOINT_NAME}/invocations-response-stream"
    request = AWSRequest(
        method="POST",
        url=f"{emulator_url}{path}",
        data=body,
        headers={"Host": parts.netloc, "Content-Type": "application/json"},
    )
    credentials = Credentials(DUMMY_CREDENTIAL, DUMMY_CREDENTIAL)
    SigV4Auth(credentials, "sagemaker", "us-east-1").add_auth(request)
    head = [f"POST {path} HTTP/1.1"]
    head += [f"{name}: {value}" for name, value in request.headers.items()]
    head += [f"Content-Length: {len(body)}", "Connection: close", "", ""]
    return "\r\n".join(head).encode("latin-1") + body


async def _stream(port: int) -> bytes:
    reader, writer = await asyncio.open_connection(LOOPBACK, port)
    writer.write(_CALLER_REQUEST)
    chunks: list[bytes] = []
    try:
        while data := await reader.read(_READ_BYTES):
            chunks.append(data)
    finally:
        writer.close()
    return b"".join(chunks)


async def _streams(port: int, count: int) -> list[bytes]:
    async with asyncio.timeout(REQUEST_TIMEOUT_SECONDS):
        return await asyncio.gather(*(_stream(port) for _ in range(count)))


def _wait_until_listening(port: int, pipe: Child) -> None:
    deadline = time.monotonic() + _START_GUARD_SECONDS
    while time.monotonic() < deadline:
        if pipe.poll() is not None:
            raise BenchFailed("the byte pipe exited before it listened")
        try:
            socket.create_connection((LOOPBACK, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise BenchFailed("the byte pipe did not listen in time")


class BytePipe:
    """The pipe, listening, in its own process: `run` sends it a round of streams."""

    def __init__(self, child: Child, port: int, tokens_each: int) -> None:
        self._child = child
        self._port = port
        self._tokens_each = tokens_each

    @property
    def pid(self) -> int:
        return self._child.pid

    def run(self, streams: int) -> None:
        """`streams` answers at once, each of which must come whole (as many PayloadParts as
        the answer has tokens)."""
        for answer in asyncio.run(_streams(self._port, streams)):
            whole = answer.count(_PAYLOAD_PART) >= self._tokens_each
            if not answer.startswith(b"HTTP/1.1 200") or not whole:
                raise BenchFailed("an answer through the byte pipe was not whole")


@contextlib.contextmanager
def byte_pipe(
    stack: LocalStack, *, upstream_request_body: bytes, tokens_each: int, sink: LineSink
) -> Iterator[BytePipe]:
    """The pipe started on ``stack``'s emulator, sending it ``upstream_request_body`` for
    every stream; each answer has ``tokens_each`` tokens."""
    port = free_port()
    upstream = urlsplit(stack.emulator_url)
    with tempfile.TemporaryDirectory() as scratch:
        request_file = Path(scratch) / "request"
        request_file.write_bytes(_signed_request(stack.emulator_url, upstream_request_body))
        argv = [
            sys.executable,
            "-m",
            "jumpstream.bench.pipe_floor",
            str(request_file),
            upstream.hostname or LOOPBACK,
            str(upstream.port),
            str(port),
        ]
        pipe = Child("pipe", argv, cwd=Path(scratch), env=os.environ, sink=sink)
        try:
            _wait_until_listening(port, pipe)
            yield BytePipe(pipe, port, tokens_each)
        finally:
            pipe.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
