"""Reading the body within the limit: a declared length, a chunked body and a lying one."""

from __future__ import annotations

import json
from typing import Any

import anyio
import httpx
import pytest

from tests.streamer.support import (
    HANG_GUARD_SECONDS,
    ScriptedUpstream,
    answer_events,
    call,
    error_body,
    make_app,
)


def test_a_declared_length_over_the_limit_is_413_before_reading() -> None:
    response = call(make_app(ScriptedUpstream(), max_body_bytes=100), content=b"x" * 101)
    assert response.status_code == 413
    body = error_body(response)
    assert body["type"] == "body_too_large"
    assert "100 bytes" in body["error"]


def test_a_body_at_the_limit_is_read() -> None:
    body = json.dumps({"inputs": "x" * 50}).encode()
    app = make_app(ScriptedUpstream(answer_events(["ok"])), max_body_bytes=len(body))
    assert call(app, content=body).status_code == 200


def test_a_chunked_body_over_the_limit_is_413() -> None:
    def chunks() -> Any:
        yield b'{"inputs": "'
        yield b"x" * 200
        yield b'"}'

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=make_app(ScriptedUpstream(), max_body_bytes=100))
        async with httpx.AsyncClient(transport=transport, base_url="http://relay") as client:
            return await client.post("/", content=_async(chunks()))

    response = anyio.run(send)
    assert response.status_code == 413
    assert error_body(response)["type"] == "body_too_large"


async def _async(items: Any) -> Any:
    for item in items:
        yield item


def raw_request(
    app: Any,
    *,
    headers: list[tuple[bytes, bytes]],
    chunks: list[bytes],
    method: str = "POST",
    path: str = "/",
) -> tuple[int, dict[bytes, bytes], bytes]:
    """Drive the ASGI app by hand, to send what HTTP clients won't (a lying Content-Length)."""
    messages = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ]
    sent: list[dict[str, Any]] = []
    done = anyio.Event()

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            done.set()

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 8080),
    }

    async def run() -> None:
        with anyio.fail_after(HANG_GUARD_SECONDS):
            await app(scope, receive, send)

    anyio.run(run)
    start = sent[0]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], dict(start["headers"]), body


def test_a_lying_content_length_cannot_get_past_the_limit() -> None:
    app = make_app(ScriptedUpstream(answer_events(["ok"])), max_body_bytes=100)
    status, headers, body = raw_request(
        app, headers=[(b"content-length", b"10")], chunks=[b"x" * 60, b"x" * 60]
    )
    assert status == 413
    assert json.loads(body)["type"] == "body_too_large"
    assert headers[b"x-request-id"]


@pytest.mark.parametrize("value", [b"ten", b"-1", b"1e3", b"\xd9\xa3"])
def test_a_malformed_content_length_is_400(value: bytes) -> None:
    status, _, body = raw_request(
        make_app(ScriptedUpstream()), headers=[(b"content-length", value)], chunks=[b"{}"]
    )
    assert status == 400
    assert json.loads(body)["type"] == "invalid_body"
