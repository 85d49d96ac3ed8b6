"""The event-stream encoder, checked by botocore's own decoder and parser (no sockets)."""

from __future__ import annotations

import json
import struct
from typing import Any

import botocore.session
import pytest
from botocore.eventstream import ChecksumMismatch, EventStream, EventStreamBuffer
from botocore.exceptions import EventStreamError
from botocore.parsers import EventStreamJSONParser
from hypothesis import given, settings
from hypothesis import strategies as st

from jumpstream.emulator import eventstream

PAYLOAD_HEADERS = {
    ":event-type": "PayloadPart",
    ":content-type": "application/octet-stream",
    ":message-type": "event",
}


def decode_all(data: bytes, *, chunk: int | None = None) -> list[Any]:
    buffer = EventStreamBuffer()
    messages = []
    step = chunk or max(len(data), 1)
    for start in range(0, len(data), step):
        buffer.add_data(data[start : start + step])
        messages.extend(buffer)
    return messages


class FakeRawStream:
    """What botocore's EventStream reads from: an object with ``stream()``."""

    def __init__(self, data: bytes, chunk: int) -> None:
        self._chunks = [data[i : i + chunk] for i in range(0, len(data), chunk)]

    def stream(self) -> list[bytes]:
        return self._chunks

    def close(self) -> None:
        pass


def boto_event_stream(data: bytes, chunk: int = 7) -> EventStream:
    """botocore's real EventStream over our bytes, with the real sagemaker-runtime model."""
    model = botocore.session.get_session().get_service_model("sagemaker-runtime")
    operation = model.operation_model("InvokeEndpointWithResponseStream")
    body_shape = operation.output_shape.members["Body"]
    return EventStream(
        FakeRawStream(data, chunk), body_shape, EventStreamJSONParser(), operation.name
    )


@settings(max_examples=200)
@given(st.binary(max_size=2048))
def test_payload_part_round_trips_through_botocore_with_crcs_checked(payload: bytes) -> None:
    (message,) = decode_all(eventstream.payload_part(payload))
    assert message.payload == payload
    assert message.headers == PAYLOAD_HEADERS


@settings(max_examples=50)
@given(st.lists(st.binary(max_size=64), min_size=1, max_size=8), st.integers(1, 17))
def test_messages_decode_the_same_fed_whole_or_in_pieces(payloads: list[bytes], chunk: int) -> None:
    data = b"".join(eventstream.payload_part(payload) for payload in payloads)
    whole = [message.payload for message in decode_all(data)]
    pieces = [message.payload for message in decode_all(data, chunk=chunk)]
    assert whole == pieces == payloads


def test_byte_at_a_time_decoding_yields_the_same_message() -> None:
    data = eventstream.payload_part("日本語のテキスト".encode())
    (message,) = decode_all(data, chunk=1)
    assert message.payload.decode("utf-8") == "日本語のテキスト"


def test_prelude_lengths_are_big_endian_and_exact() -> None:
    payload = b"data: {}\n\n"
    data = eventstream.payload_part(payload)
    total_length, headers_length = struct.unpack("!II", data[:8])
    assert total_length == len(data)
    assert headers_length == len(eventstream.encode_headers(PAYLOAD_HEADERS))
    assert data[total_length - 4 - len(payload) : total_length - 4] == payload


def test_string_headers_are_type_7_with_u16_length() -> None:
    raw = eventstream.encode_headers({"ab": "xyz"})
    assert raw == b"\x02ab\x07\x00\x03xyz"


def test_header_limits_are_enforced() -> None:
    with pytest.raises(ValueError, match="name too long"):
        eventstream.encode_headers({"n" * 256: "v"})
    with pytest.raises(ValueError, match="value too long"):
        eventstream.encode_headers({"n": "v" * 65536})


@pytest.mark.parametrize("offset", [2, 9, -2])
def test_a_corrupted_byte_fails_botocores_crc_check(offset: int) -> None:
    data = bytearray(eventstream.payload_part(b"data: hello\n\n"))
    data[offset] ^= 0x01
    with pytest.raises(ChecksumMismatch):
        decode_all(bytes(data))


def test_model_stream_error_carries_code_and_message_as_json() -> None:
    data = eventstream.model_stream_error("broken", eventstream.STREAM_BROKEN)
    (message,) = decode_all(data)
    assert message.headers == {
        ":exception-type": "ModelStreamError",
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    assert json.loads(message.payload) == {"Message": "broken", "ErrorCode": "StreamBroken"}


def test_internal_stream_failure_carries_its_message() -> None:
    (message,) = decode_all(eventstream.internal_stream_failure("oops"))
    assert message.headers[":exception-type"] == "InternalStreamFailure"
    assert message.headers[":message-type"] == "exception"
    assert json.loads(message.payload) == {"Message": "oops"}


def test_botocore_event_stream_yields_payload_parts() -> None:
    data = eventstream.payload_part(b"one") + eventstream.payload_part(b"two")
    events = list(boto_event_stream(data))
    assert events == [{"PayloadPart": {"Bytes": b"one"}}, {"PayloadPart": {"Bytes": b"two"}}]


@pytest.mark.parametrize(
    ("message", "code", "text"),
    [
        (
            eventstream.model_stream_error("timed out", eventstream.MODEL_INVOCATION_TIME_EXCEEDED),
            "ModelStreamError",
            "timed out",
        ),
        (eventstream.internal_stream_failure("internal"), "InternalStreamFailure", "internal"),
    ],
)
def test_botocore_raises_event_stream_error_mid_iteration(
    message: bytes, code: str, text: str
) -> None:
    stream = iter(boto_event_stream(eventstream.payload_part(b"first") + message))
    assert next(stream) == {"PayloadPart": {"Bytes": b"first"}}
    with pytest.raises(EventStreamError) as raised:
        next(stream)
    assert raised.value.response["Error"] == {"Code": code, "Message": text}
