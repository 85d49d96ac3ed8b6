"""`jumpstream.client`: text pieces as they come, and an error typed by where the answer failed.

Bodies here are what the relay's own SSE writer produces; the real relay is behind the client in
tests/e2e/test_e2e_proxy.py and tests/jumpstream/test_ask.py.
"""

from __future__ import annotations

import httpx
import pytest
from streamer.formats import SseWriter

from jumpstream.client import (
    ConnectionFailed,
    Done,
    RefusedError,
    RelayClient,
    StreamError,
    Text,
    request_document,
)
from jumpstream.local import free_port

WRITER = SseWriter()


def _client(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> RelayClient:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            status, content=body, headers=headers or {"content-type": WRITER.content_type}
        )

    return RelayClient("http://relay/", auth=None, transport=httpx.MockTransport(answer))


def test_text_then_done() -> None:
    body = (
        WRITER.text("Hel")
        + WRITER.text("lo")
        + WRITER.done(finish_reason="length", generated_tokens=2)
    )
    with _client(body) as client:
        assert list(client.events(inputs="x")) == [Text("Hel"), Text("lo"), Done("length", 2)]


def test_an_error_after_text_is_a_stream_error_with_the_relays_kind() -> None:
    body = WRITER.text("Hel") + WRITER.error(message="The model failed.", kind="model_error")
    with _client(body) as client:
        pieces: list[str] = []
        with pytest.raises(StreamError) as caught:
            pieces.extend(client.stream(inputs="x"))
    assert pieces == ["Hel"]
    assert (caught.value.kind, caught.value.status) == ("model_error", 200)
    assert str(caught.value) == "The model failed. (model_error)"


def test_an_answer_without_its_end_is_not_taken_as_complete() -> None:
    with _client(WRITER.text("Hel")) as client, pytest.raises(StreamError) as caught:
        list(client.stream(inputs="x"))
    assert caught.value.kind == "incomplete_stream"


def test_a_refusal_carries_status_kind_and_retry_after() -> None:
    body = b'{"error": "Try later.", "type": "throttled"}'
    headers = {"Retry-After": "2", "X-Request-Id": "r1", "content-type": "application/json"}
    with _client(body, 503, headers) as client, pytest.raises(RefusedError) as caught:
        list(client.stream(messages=[{"role": "user", "content": "hi"}]))
    error = caught.value
    assert (error.status, error.kind, error.retry_after, error.request_id) == (
        503,
        "throttled",
        2.0,
        "r1",
    )
    assert str(error) == "Try later. (throttled, HTTP 503, retry after 2 s, request id r1)"


def test_an_unreachable_relay_is_a_connection_failure() -> None:
    with (
        RelayClient(f"http://127.0.0.1:{free_port()}/", auth=None) as client,
        pytest.raises(ConnectionFailed) as caught,
    ):
        list(client.stream(inputs="x"))
    assert caught.value.status is None


def test_a_body_that_is_not_the_relays_event_stream_is_a_protocol_error() -> None:
    with (
        _client(b"hello", headers={"content-type": "text/plain"}) as client,
        pytest.raises(StreamError) as caught,
    ):
        list(client.stream(inputs="x"))
    assert caught.value.kind == "protocol"


def test_a_request_is_a_prompt_or_a_chat() -> None:
    assert request_document(inputs="x", parameters={"max_new_tokens": 3}) == {
        "inputs": "x",
        "parameters": {"max_new_tokens": 3},
    }
    with pytest.raises(ValueError, match="either inputs"):
        request_document(inputs="x", messages=[])
