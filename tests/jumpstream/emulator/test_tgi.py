"""``--tgi-url``: the emulator in front of a (fake) TGI server, bytes relayed untouched."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from jumpstream.emulator.errors import SageMakerError
from jumpstream.emulator.sse import SseStyle, data_event, keepalive, stream_response
from jumpstream.emulator.streams import StreamRecord
from jumpstream.emulator.tgi import TgiRelay, wants_stream
from tests.jumpstream.emulator.emulator_harness import (
    ENDPOINT,
    invoke,
    parts_until_error,
    payload_parts,
    request_id,
    running_emulator,
    sagemaker_client,
    stream_record,
)

#: Hang guard for the fake server's waits; never reached when things work.
GUARD_SECONDS = 10.0


#: TGI <= 2.0 wrote `data:` without the space: bytes a relay must pass on exactly as they came.
OLD_TGI = SseStyle(space=False)


def token_event(index: int, text: str, *, final: bool = False) -> bytes:
    token = {"id": index, "text": text, "logprob": -0.5, "special": final}
    generated_text = "こんにちは" if final else None
    return data_event(stream_response(token, index=index, generated_text=generated_text), OLD_TGI)


STREAM = (
    token_event(1, "こん")
    + keepalive(OLD_TGI)
    + token_event(2, "にちは")
    + token_event(3, "</s>", final=True)
)
# Odd chunk boundaries on purpose: inside the first event and inside a UTF-8 character.
_INSIDE_AN_EVENT = len(b'data:{"ind')
_INSIDE_A_CHARACTER = STREAM.index("に".encode()) + 1
CHUNKS = [
    STREAM[:_INSIDE_AN_EVENT],
    STREAM[_INSIDE_AN_EVENT:_INSIDE_A_CHARACTER],
    STREAM[_INSIDE_A_CHARACTER:],
]


class FakeTgi:
    """Records what it was sent; streams ``CHUNKS`` (or misbehaves, depending on ``inputs``)."""

    def __init__(self) -> None:
        self.received: list[tuple[str, bytes, str]] = []
        self.first_chunk_sent = threading.Event()
        self.send_the_rest = threading.Event()
        self.app = Starlette(
            routes=[
                Route("/generate_stream", self.generate_stream, methods=["POST"]),
                Route("/generate", self.generate, methods=["POST"]),
            ]
        )

    async def generate_stream(self, request: Request) -> Response:
        body = await request.body()
        self.received.append(("/generate_stream", body, request.headers["content-type"]))
        inputs = json.loads(body)["inputs"]
        if inputs == "invalid":
            return JSONResponse({"error": "bad", "error_type": "validation"}, status_code=422)
        return StreamingResponse(self.chunks(inputs), media_type="text/event-stream")

    async def chunks(self, inputs: str) -> AsyncIterator[bytes]:
        yield CHUNKS[0]
        if inputs == "drop":
            raise RuntimeError("the container died mid-stream")
        if inputs == "gated":
            self.first_chunk_sent.set()
            deadline = time.monotonic() + GUARD_SECONDS
            while not self.send_the_rest.is_set() and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
        for chunk in CHUNKS[1:]:
            await asyncio.sleep(0)
            yield chunk

    async def generate(self, request: Request) -> Response:
        body = await request.body()
        self.received.append(("/generate", body, request.headers["content-type"]))
        return JSONResponse([{"generated_text": "hello"}])


@contextlib.contextmanager
def serve_in_thread(app: Any) -> Iterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="critical", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + GUARD_SECONDS
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(GUARD_SECONDS)
        sock.close()


@pytest.fixture(scope="module")
def fake_tgi() -> Iterator[tuple[FakeTgi, str]]:
    fake = FakeTgi()
    with serve_in_thread(fake.app) as tgi_url:
        yield fake, tgi_url


@pytest.fixture(scope="module")
def url(fake_tgi: tuple[FakeTgi, str]) -> Iterator[str]:
    with running_emulator("--tgi-url", fake_tgi[1]) as base_url:
        yield base_url


@pytest.fixture(scope="module")
def client(url: str) -> Any:
    return sagemaker_client(url)


def raw_body(inputs: str, *, stream: bool) -> bytes:
    # Unusual spacing and key order: forwarding must not re-serialise the body.
    stream_member = ', "stream": true' if stream else ""
    text = '{ "parameters" : {"max_new_tokens": 3}, "inputs" : "' + inputs + '"' + stream_member
    return (text + " }").encode()


def call(client: Any, body: bytes) -> Any:
    return client.invoke_endpoint_with_response_stream(
        EndpointName=ENDPOINT, Body=body, ContentType="application/json"
    )


def test_streams_tgis_bytes_unmodified(
    fake_tgi: tuple[FakeTgi, str], url: str, client: Any
) -> None:
    fake, _ = fake_tgi
    body = raw_body("hello", stream=True)
    response = call(client, body)
    # TGI's own content type is passed on as SageMaker passes the container's.
    assert response["ContentType"].startswith("text/event-stream")
    assert b"".join(payload_parts(response)) == STREAM
    assert fake.received[-1] == ("/generate_stream", body, "application/json")
    record = stream_record(url, request_id(response))
    assert record["state"] == "completed"
    assert record["tokens_sent"] == 3


def test_parts_are_relayed_as_they_arrive(fake_tgi: tuple[FakeTgi, str], client: Any) -> None:
    fake, _ = fake_tgi
    response = call(client, raw_body("gated", stream=True))
    events = iter(response["Body"])
    first = next(events)["PayloadPart"]["Bytes"]
    # TGI has not sent its second chunk yet, and the first is already here.
    assert fake.first_chunk_sent.is_set()
    assert first == CHUNKS[0]
    fake.send_the_rest.set()
    rest = b"".join(event["PayloadPart"]["Bytes"] for event in events)
    assert first + rest == STREAM


def test_a_non_streaming_body_goes_to_generate(fake_tgi: tuple[FakeTgi, str], client: Any) -> None:
    fake, _ = fake_tgi
    body = raw_body("hello", stream=False)
    response = call(client, body)
    assert response["ContentType"].startswith("application/json")
    assert json.loads(b"".join(payload_parts(response))) == [{"generated_text": "hello"}]
    assert fake.received[-1][:2] == ("/generate", body)


def test_a_tgi_http_error_becomes_a_model_error(client: Any) -> None:
    with pytest.raises(client.exceptions.ModelError) as raised:
        call(client, raw_body("invalid", stream=True))
    error = raised.value.response
    assert error["OriginalStatusCode"] == 422
    assert json.loads(error["OriginalMessage"]) == {"error": "bad", "error_type": "validation"}


def test_a_connection_lost_mid_stream_becomes_stream_broken(client: Any) -> None:
    received, error = parts_until_error(call(client, raw_body("drop", stream=True)))
    assert b"".join(received) == CHUNKS[0]
    assert error.response["Error"]["Code"] == "ModelStreamError"


def test_the_endpoint_name_is_still_checked(client: Any) -> None:
    with pytest.raises(client.exceptions.ValidationError):
        client.invoke_endpoint_with_response_stream(
            EndpointName="elsewhere", Body=raw_body("hello", stream=True)
        )


def test_an_unreachable_tgi_is_a_model_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]

    async def scenario() -> Any:
        async with httpx.AsyncClient() as http:
            relay = TgiRelay(f"http://127.0.0.1:{closed_port}", http)
            return await relay.invoke(
                b'{"inputs": "hi", "stream": true}',
                content_type="application/json",
                endpoint_name=ENDPOINT,
                record=StreamRecord(id="s"),
            )

    reply = asyncio.run(asyncio.wait_for(scenario(), GUARD_SECONDS))
    assert isinstance(reply, SageMakerError)
    assert reply.code == "ModelError"
    assert reply.members["OriginalStatusCode"] == 502


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"inputs": "x", "stream": true}', True),
        (b'{"inputs": "x", "stream": false}', False),
        (b'{"inputs": "x", "parameters": {"stream": true}}', False),
        (b'{"inputs": "x", "stream": "true"}', False),
        (b"not json", False),
        (b"[1]", False),
    ],
)
def test_only_a_top_level_stream_true_streams(body: bytes, expected: bool) -> None:
    assert wants_stream(body) is expected


def test_invoke_helper_bodies_stream_through_tgi(
    fake_tgi: tuple[FakeTgi, str], client: Any
) -> None:
    fake, _ = fake_tgi
    response = invoke(client, "hello", max_new_tokens=3)
    assert b"".join(payload_parts(response)) == STREAM
    assert json.loads(fake.received[-1][1])["parameters"] == {"max_new_tokens": 3}
