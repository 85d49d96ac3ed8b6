"""Helpers for the emulator's end-to-end tests: run it for real, talk to it with real boto3.

The emulator runs as ``python -m jumpstream.emulator --port 0`` in a subprocess, exactly as a
developer or another test suite would start it; the URL comes from the line it prints.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import selectors
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
from botocore.config import Config
from botocore.exceptions import EventStreamError

from jumpstream.emulator import options
from jumpstream.emulator.model import StandInModel, Token
from jumpstream.emulator.request import GenerateRequest
from jumpstream.emulator.server import DEFAULT_ENDPOINT_NAME

REPO_ROOT = Path(__file__).resolve().parents[3]
ENDPOINT = DEFAULT_ENDPOINT_NAME
STARTUP_TIMEOUT_SECONDS = 30.0
#: Hang guard for polling the control API; not a performance bound.
POLL_TIMEOUT_SECONDS = 10.0
#: Dummy credentials: the emulator never checks signatures, but botocore insists on signing.
DUMMY_CREDENTIAL = "local"
#: The prompt and the chat the engine tests send.
PROMPT = "What is streaming?"
QUESTION = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": PROMPT}]
_MODEL = StandInModel()
_LISTENING = re.compile(r"^emulator listening on (http://\S+)$")


@contextlib.contextmanager
def running_emulator(*extra_args: str) -> Iterator[str]:
    """Start the emulator (fast pace unless overridden) and yield its base URL."""
    with emulator_process(*extra_args) as (_, url):
        yield url


@contextlib.contextmanager
def emulator_process(*extra_args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Start the emulator and yield the process and its base URL; stop it after, if it runs."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    with tempfile.TemporaryFile(mode="w+") as stderr:
        process = subprocess.Popen(
            emulator_command(*extra_args),
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        try:
            yield process, wait_for_url(process, stderr)
        finally:
            process.terminate()  # a no-op once the process has been waited for
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
            assert process.stdout is not None
            process.stdout.close()


def emulator_command(*extra_args: str) -> list[str]:
    """``python -m jumpstream.emulator`` on a free loopback port, fast unless overridden."""
    return [
        sys.executable,
        "-m",
        "jumpstream.emulator",
        *options.HOST.argv("127.0.0.1"),
        *options.PORT.argv(0),
        *options.TOKENS_PER_SECOND.argv(0),
        *options.FIRST_TOKEN_DELAY.argv(0),
        *extra_args,
    ]


def wait_for_url(process: subprocess.Popen[str], stderr: Any) -> str:
    """Read the emulator's ``listening on`` line (hang-guarded) and return its URL."""
    assert process.stdout is not None
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if selector.select(timeout=0.2):
                line = process.stdout.readline()
                match = _LISTENING.match(line.strip())
                if match:
                    return match.group(1)
                if not line and process.poll() is not None:
                    break
    stderr.seek(0)
    raise RuntimeError(f"emulator did not start: {stderr.read()}")


def sagemaker_client(url: str, *, read_timeout: float = 30.0) -> Any:
    """The real boto3 client, with dummy credentials and no retries (faults must show once)."""
    session = boto3.session.Session(
        aws_access_key_id=DUMMY_CREDENTIAL,
        aws_secret_access_key=DUMMY_CREDENTIAL,
        region_name="us-east-1",
    )
    return session.client(
        "sagemaker-runtime",
        endpoint_url=url,
        config=Config(
            retries={"total_max_attempts": 1},
            read_timeout=read_timeout,
            connect_timeout=5,
        ),
    )


def tgi_body(inputs: str, *, stream: bool = True, **parameters: Any) -> bytes:
    body: dict[str, Any] = {"inputs": inputs, "parameters": parameters}
    if stream:
        body["stream"] = True
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


def invoke(client: Any, inputs: str, *, stream: bool = True, **parameters: Any) -> Any:
    return client.invoke_endpoint_with_response_stream(
        EndpointName=ENDPOINT,
        Body=tgi_body(inputs, stream=stream, **parameters),
        ContentType="application/json",
    )


def payload_parts(response: Any) -> list[bytes]:
    """Every PayloadPart's bytes, in order (raises what botocore raises mid-stream)."""
    return [event["PayloadPart"]["Bytes"] for event in response["Body"]]


def parts_until_error(response: Any) -> tuple[list[bytes], EventStreamError]:
    """The PayloadParts received before botocore raised mid-stream, and what it raised."""
    received: list[bytes] = []
    try:
        for event in response["Body"]:
            received.append(event["PayloadPart"]["Bytes"])
    except EventStreamError as error:
        return received, error
    raise AssertionError(f"the stream ended without an error after {len(received)} parts")


def parse_sse(data: bytes) -> list[Any]:
    """A strict little SSE decoder for assertions: JSON of each ``data:`` event, in order.

    Decodes only the concatenated bytes (never a part alone), accepts ``data:`` with or without
    the space and ``\\r\\n`` endings, ignores ``:`` comments, and insists every event is closed.
    """
    text = data.decode("utf-8")
    assert text.endswith(("\n\n", "\r\n\r\n")), "the stream must end with a complete event"
    events: list[Any] = []
    pending: list[str] = []
    for line in re.split(r"\r\n|\n", text)[:-1]:
        if line == "":
            if pending:
                events.append(json.loads("\n".join(pending)))
                pending = []
        elif line.startswith(":"):
            continue
        else:
            assert line.startswith("data:"), f"unexpected SSE line {line!r}"
            value = line[len("data:") :]
            pending.append(value[1:] if value.startswith(" ") else value)
    assert not pending
    return events


def control(url: str, method: str, path: str) -> Any:
    response = httpx.request(method, url + path, timeout=10)
    response.raise_for_status()
    return response.json()


def stream_record(url: str, stream_id: str) -> dict[str, Any]:
    records = [record for record in control(url, "GET", "/_emulator/streams")]
    matching = [record for record in records if record["id"] == stream_id]
    assert len(matching) == 1, records
    return matching[0]


def wait_for_record(
    url: str, stream_id: str, predicate: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """Poll the control API until the stream's record satisfies ``predicate`` (hang-guarded)."""
    deadline = time.monotonic() + POLL_TIMEOUT_SECONDS
    while True:
        record = stream_record(url, stream_id)
        if predicate(record) or time.monotonic() > deadline:
            return record
        time.sleep(0.02)


def request_id(response: Any) -> str:
    return response["ResponseMetadata"]["RequestId"]


def invoke_json(client: Any, body: Any) -> Any:
    """InvokeEndpointWithResponseStream with ``body`` as JSON, whatever its shape."""
    return client.invoke_endpoint_with_response_stream(
        EndpointName=ENDPOINT,
        Body=json.dumps(body, ensure_ascii=False).encode("utf-8"),
        ContentType="application/json",
    )


def invoke_whole(client: Any, body: Any) -> Any:
    """InvokeEndpoint with ``body`` as JSON: the container's whole reply at once."""
    return client.invoke_endpoint(
        EndpointName=ENDPOINT,
        Body=json.dumps(body, ensure_ascii=False).encode("utf-8"),
        ContentType="application/json",
    )


def parse_json_lines(data: bytes) -> list[Any]:
    """A strict JSON-lines decoder for assertions (LMI's streams): every line is one JSON
    document and ends with ``\\n`` (or ``\\r\\n``); blank lines (keep-alives) are skipped."""
    text = data.decode("utf-8")
    assert text.endswith("\n"), "the stream must end with a complete line"
    return [json.loads(line) for line in re.split(r"\r\n|\n", text)[:-1] if line]


def parse_openai_sse(data: bytes) -> list[Any]:
    """Like :func:`parse_sse`, for OpenAI's streams (vLLM's): ``[DONE]`` comes as that string,
    and every event is one ``data:`` line closed by a blank line."""
    text = data.decode("utf-8")
    assert text.endswith(("\n\n", "\r\n\r\n")), "the stream must end with a complete event"
    events: list[Any] = []
    pending: str | None = None
    for line in re.split(r"\r\n|\n", text)[:-1]:
        if line == "":
            if pending is not None:
                events.append(pending if pending == "[DONE]" else json.loads(pending))
                pending = None
        elif not line.startswith(":"):
            assert line.startswith("data:"), f"unexpected SSE line {line!r}"
            assert pending is None, "one data line per event"
            pending = line[len("data:") :].removeprefix(" ")
    assert pending is None
    return events


def tokens(prompt: str, max_new_tokens: int, *, chat: bool = False, **more: Any) -> list[Token]:
    """The stand-in model's tokens for this request, as any engine generates them."""
    request = GenerateRequest(inputs=prompt, max_new_tokens=max_new_tokens, **more)
    return list(_MODEL.generate(request, chat_turn=chat).tokens)


def shown(token: Token) -> str:
    """A token's text as an answer shows it: none for a special token."""
    return "" if token.special else token.text
