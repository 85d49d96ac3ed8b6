"""Reading one answer, timed, the two ways the bench compares: through the relay over HTTP as the
Web Adapter sends invocations, and directly from the emulator with boto3.

Both ways get the same prompt and must read the same text: the emulator's answer is fixed by the
prompt, so a text that differs is a bug (`BenchFailed`), never noise.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import h11

from jumpstream.ask import request_body
from jumpstream.bench.plan import REQUEST_TIMEOUT_SECONDS, BenchFailed
from jumpstream.bench.relay_code import STREAM_ERROR_PREFIX, TokenTexts, relay_upstream_body
from jumpstream.local import DUMMY_CREDENTIAL, ENDPOINT_NAME, LOOPBACK, LocalStack

__all__ = [
    "AdapterLikeClient",
    "Reading",
    "boto3_client",
    "check_same_texts",
    "max_new_tokens_for",
    "paired_reads",
    "prompt",
    "read_direct",
    "upstream_body",
]

_READ_BYTES: Final = 64 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class Reading:
    """One answer read whole: when its first text came, when it ended, what it said.

    ``tokens`` is what the decoder counted; 0 through the relay, which sends text only (the same
    prompt read directly gives the count).
    """

    first_text_ms: float
    total_ms: float
    text: str
    tokens: int


def prompt(tokens: int, tag: str) -> str:
    """A prompt whose answer is exactly ``tokens`` tokens before the EOS token."""
    return f"Benchmark the relay ({tag}), please. [[length:{tokens}]]"


def max_new_tokens_for(tokens: int) -> int:
    """Room for the answer of ``prompt(tokens, ...)`` and its EOS token, so it ends naturally."""
    return tokens + 2


def upstream_body(text: str, max_new_tokens: int) -> bytes:
    """The body the relay sends SageMaker for ``request_body(text, ...)``, made by the relay's
    own code: the direct calls send the same, so both sides get the same answer."""
    return relay_upstream_body(request_body(text, max_new_tokens=max_new_tokens))


def boto3_client(emulator_url: str) -> Any:
    """The sagemaker-runtime client a user would make, pointed at the emulator."""
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "sagemaker-runtime",
        endpoint_url=emulator_url,
        region_name="us-east-1",
        aws_access_key_id=DUMMY_CREDENTIAL,
        aws_secret_access_key=DUMMY_CREDENTIAL,
        config=Config(read_timeout=REQUEST_TIMEOUT_SECONDS, retries={"total_max_attempts": 1}),
    )


def read_direct(client: Any, text: str, max_new_tokens: int) -> Reading:
    """InvokeEndpointWithResponseStream with boto3, decoded (by the relay's decoder) as it
    arrives: what reading the stream costs without the relay."""
    decoded = TokenTexts()
    first: float | None = None
    started = time.perf_counter()
    response = client.invoke_endpoint_with_response_stream(
        EndpointName=ENDPOINT_NAME,
        Body=upstream_body(text, max_new_tokens),
        ContentType="application/json",
    )
    for event in response["Body"]:
        if decoded.feed(event["PayloadPart"]["Bytes"]) and first is None:
            first = time.perf_counter()
    decoded.close()
    ended = time.perf_counter()
    if first is None:
        raise BenchFailed("a direct call to the emulator returned no text")
    return Reading(
        first_text_ms=(first - started) * 1000,
        total_ms=(ended - started) * 1000,
        text="".join(decoded.texts),
        tokens=decoded.tokens,
    )


class AdapterLikeClient:
    """HTTP/1.1 on one kept-alive socket, written and read as the Web Adapter does: each request
    in one write, the answer read as it arrives. (h11 speaks the protocol; the socket is ours.)

    Why not an HTTP client library here: httpx writes a request's body separately from its head
    and http.client reads through a buffered file; either changes when the relay's side gets its
    ACKs, and with them whether Nagle's delay shows. It showed for the adapter.
    """

    def __init__(self, url: str) -> None:
        where = urlsplit(url)
        self._host = f"{where.hostname}:{where.port}"
        self._socket = socket.create_connection(
            (where.hostname or LOOPBACK, where.port or 80), timeout=REQUEST_TIMEOUT_SECONDS
        )
        self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._connection = h11.Connection(our_role=h11.CLIENT)

    def __enter__(self) -> AdapterLikeClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def read(self, text: str, max_new_tokens: int) -> Reading:
        """One request through the relay as plain text."""
        body = request_body(text, max_new_tokens=max_new_tokens)
        headers = [
            ("Host", self._host),
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
        ]
        request = h11.Request(method="POST", target="/", headers=headers)
        chunks: list[bytes] = []
        first: float | None = None
        started = time.perf_counter()
        self._socket.sendall(
            self._connection.send(request)
            + self._connection.send(h11.Data(data=body))
            + self._connection.send(h11.EndOfMessage())
        )
        status = 0
        while True:
            event = self._connection.next_event()
            if event is h11.NEED_DATA:
                self._connection.receive_data(self._socket.recv(_READ_BYTES))
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
                if first is None:
                    first = time.perf_counter()
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                break
        ended = time.perf_counter()
        self._connection.start_next_cycle()
        answer = b"".join(chunks).decode("utf-8")
        if status != 200 or first is None or STREAM_ERROR_PREFIX in answer:
            raise BenchFailed(f"the relay answered {status}: {answer[-200:]!r}")
        return Reading(
            first_text_ms=(first - started) * 1000,
            total_ms=(ended - started) * 1000,
            text=answer,
            tokens=0,
        )

    def close(self) -> None:
        self._socket.close()


def check_same_texts(direct: Sequence[Reading], relay: Sequence[Reading]) -> None:
    """Each prompt's answer read directly and through the relay: the texts must be equal."""
    if len(direct) != len(relay):
        raise BenchFailed(f"{len(direct)} direct answers but {len(relay)} through the relay")
    for a, b in zip(direct, relay, strict=True):
        if a.text != b.text:
            raise BenchFailed(f"texts differ: direct {a.text!r}, relay {b.text!r}")


def paired_reads(
    stack: LocalStack, *, tokens: int, count: int, tag: str
) -> list[tuple[Reading, Reading]]:
    """``count`` answers of ``tokens`` tokens, sent back to back through the relay on one
    kept-alive connection, then the same prompts back to back to the emulator directly with
    boto3; paired by prompt, the texts must be the same. Not interleaved: a connection that idles
    between requests acknowledges at once, which hides what back-to-back traffic pays. A first
    request each way, not returned, warms connections, imports and caches up."""
    prompts = [prompt(tokens, f"{tag} {index}") for index in range(count + 1)]
    limit = max_new_tokens_for(tokens)
    with AdapterLikeClient(stack.relay_url) as relay_client:
        relay = [relay_client.read(text, limit) for text in prompts]
    direct_client = boto3_client(stack.emulator_url)
    direct = [read_direct(direct_client, text, limit) for text in prompts]
    check_same_texts(direct, relay)
    return list(zip(direct, relay, strict=True))[1:]
