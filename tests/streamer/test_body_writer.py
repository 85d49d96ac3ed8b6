"""The body writer's callbacks on their own; over a real socket they are test_streaming.py's and
test_streaming_backpressure.py's."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from streamer.body_writer import ChunkedBodyWriter


class _Transport:
    def __init__(self) -> None:
        self.written: list[bytes] = []

    def write_now(self, data: bytes) -> None:
        self.written.append(data)


class _Cycle(SimpleNamespace):
    """What the writer reads of uvicorn's request-response cycle (weakly referenced)."""


def _cycle(**state: Any) -> _Cycle:
    values = {
        "response_started": True,
        "response_complete": False,
        "chunked_encoding": True,
        "flow": SimpleNamespace(write_paused=False),
        "disconnected": False,
    }
    values.update(state)
    return _Cycle(**values)


def test_a_lost_connection_is_told_once_to_who_listens() -> None:
    cycle, told = _cycle(), []
    writer = ChunkedBodyWriter(cycle, _Transport())
    writer.on_disconnect(lambda: told.append("gone"))
    assert told == []
    writer.connection_lost()
    writer.connection_lost()
    assert told == ["gone"]


def test_a_listener_after_the_loss_is_told_at_once() -> None:
    cycle, told = _cycle(disconnected=True), []
    writer = ChunkedBodyWriter(cycle, _Transport())
    writer.on_disconnect(lambda: told.append("gone"))
    assert told == ["gone"]


def test_no_listener_no_call() -> None:
    cycle, told = _cycle(), []
    writer = ChunkedBodyWriter(cycle, _Transport())
    writer.on_disconnect(lambda: told.append("gone"))
    writer.on_disconnect(None)
    writer.connection_lost()
    assert told == []


def test_writes_a_chunk_only_where_send_would_write_at_once() -> None:
    transport = _Transport()
    cycle = _cycle()
    writer = ChunkedBodyWriter(cycle, transport)
    assert writer(b"hello") is True
    cycle.flow.write_paused = True
    assert writer(b"held") is False
    cycle.flow.write_paused = False
    cycle.disconnected = True
    assert writer(b"gone") is False
    assert transport.written == [b"5\r\nhello\r\n"]
