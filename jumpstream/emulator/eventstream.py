"""Encode AWS event-stream messages, the binary framing of InvokeEndpointWithResponseStream.

Why hand-rolled: botocore only *decodes* this framing, and the emulator must produce the exact
bytes SageMaker sends so that the real boto3 (which checks both CRCs) parses them unchanged. It is
the project's one encoder of the framing: tests that script a SageMaker stream frame with it too.

A message is::

    total_length u32 BE | headers_length u32 BE | prelude_crc u32 BE (CRC32 of the 8 bytes before)
    headers | payload | message_crc u32 BE (CRC32 of everything before it)

and a string header is ``name_len u8 | name | 7 u8 | value_len u16 BE | value``.
"""

from __future__ import annotations

import json
import struct
from binascii import crc32
from collections.abc import Mapping
from typing import Any

_STRING_HEADER_TYPE = 7
_PRELUDE = struct.Struct("!II")
_CRC = struct.Struct("!I")
#: Fixed bytes around headers and payload: prelude (8), prelude CRC (4), message CRC (4).
_FRAMING_LENGTH = _PRELUDE.size + 2 * _CRC.size

OCTET_STREAM = "application/octet-stream"
JSON = "application/json"

#: The ErrorCode values SageMaker documents for ModelStreamError.
STREAM_BROKEN = "StreamBroken"
MODEL_INVOCATION_TIME_EXCEEDED = "ModelInvocationTimeExceeded"


def encode_headers(headers: Mapping[str, str]) -> bytes:
    """Encode string headers (type 7) in the order given; SageMaker only sends strings."""
    out = bytearray()
    for name, value in headers.items():
        raw_name = name.encode("utf-8")
        raw_value = value.encode("utf-8")
        if len(raw_name) > 0xFF:
            raise ValueError(f"header name too long: {name!r}")
        if len(raw_value) > 0xFFFF:
            raise ValueError(f"header value too long for {name!r}")
        out += struct.pack("!B", len(raw_name)) + raw_name
        out += struct.pack("!BH", _STRING_HEADER_TYPE, len(raw_value)) + raw_value
    return bytes(out)


def encode_message(headers: Mapping[str, str], payload: bytes) -> bytes:
    """Frame one event-stream message with both CRCs."""
    raw_headers = encode_headers(headers)
    total_length = _FRAMING_LENGTH + len(raw_headers) + len(payload)
    prelude = _PRELUDE.pack(total_length, len(raw_headers))
    body = prelude + _CRC.pack(crc32(prelude)) + raw_headers + payload
    return body + _CRC.pack(crc32(body))


def payload_part(data: bytes) -> bytes:
    """A ``PayloadPart`` event: the container's bytes, carried untouched as the payload."""
    return encode_message(
        {
            ":event-type": "PayloadPart",
            ":content-type": OCTET_STREAM,
            ":message-type": "event",
        },
        data,
    )


def stream_exception(exception_type: str, members: Mapping[str, Any]) -> bytes:
    """A modelled exception in the stream: a JSON document of the shape's members (rest-json)."""
    return encode_message(
        {
            ":exception-type": exception_type,
            ":content-type": JSON,
            ":message-type": "exception",
        },
        json.dumps(members, separators=(",", ":")).encode("utf-8"),
    )


def model_stream_error(message: str, error_code: str) -> bytes:
    """The modelled ``ModelStreamError`` exception (``StreamBroken`` or a timeout)."""
    return stream_exception("ModelStreamError", {"Message": message, "ErrorCode": error_code})


def internal_stream_failure(message: str) -> bytes:
    """The modelled ``InternalStreamFailure`` exception."""
    return stream_exception("InternalStreamFailure", {"Message": message})
