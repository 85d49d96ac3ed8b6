"""The SageMaker call through the relay's HTTP client, signed by botocore; failures as one type.

pump.py and streaming.py never see the HTTP client: they get an `UpstreamStream` of PayloadPart
bytes whose failures are all `UpstreamError`s carrying the error type the caller should get. That
keeps them testable with a scripted fake. What SageMaker's errors mean is sagemaker_errors.py's (and
what the model's engine's own errors mean, its row's in engines.py); this module only carries them.

Why not boto3's `invoke_endpoint_with_response_stream`: its stream blocks, so every part cost a
round trip from the event loop to a worker thread and back (~0.3 ms of CPU per token, most of the
relay's cost), and each call ran botocore's whole request pipeline (~5 ms). Here the event loop
reads the response itself, through the pool's connections (connection_pool.py, http_client.py:
httpx's layers, and then httpcore's, cost CPU per request and imports at cold start for nothing
the relay uses), and botocore does only what it is for:
- credentials, the endpoint (`AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME` honoured), connections (the
  pool is connection_pool.py's) and SigV4 signing are aws.py's, shared with the function's
  other calls to AWS;
- the event stream is read a message at a time by `_EventStreamBuffer.next_message` (botocore's
  buffer, prelude and message CRC checks, limits and exceptions; botocore's own iteration where
  another botocore keeps its state otherwise), each distinct header block parsed once per
  process by botocore's header parser (`_parsed_headers`): every PayloadPart's headers are the
  same bytes, and parsing them (three headers, a dozen Python calls each) was a tenth of the
  relay's CPU per token;
- botocore's rest-json parser reads an error reply exactly as boto3 would, modelled fields
  (ModelError's OriginalStatusCode and OriginalMessage) included.
Retries: none: once a stream has begun a retry would repeat text, and before that the
caller gets a 503 with Retry-After and decides. (The pool sends a request once more only when
its kept-alive connection turns out closed before any byte of the answer: connection_pool.py.)

Unlike botocore's own event stream, an exception message in the stream keeps its ErrorCode
(ModelStreamError's `ModelInvocationTimeExceeded` or `StreamBroken`).
"""

from __future__ import annotations

import functools
import json
import struct
import zlib
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, Final, Protocol

import anyio
from botocore.awsrequest import HTTPHeaders
from botocore.eventstream import (
    ChecksumMismatch,
    EventStreamBuffer,
    EventStreamHeaderParser,
    ParserError,
)
from botocore.exceptions import ClientError
from botocore.parsers import create_parser

from .aws import AwsAccess
from .contract import SERVICE_NAME
from .engines import engine_named
from .errors import UpstreamError
from .http_types import MustAwait, Response, host_header
from .model_errors import ModelErrorMapping
from .sagemaker_errors import translate_error

if TYPE_CHECKING:
    from .settings import Settings

__all__ = [
    "SageMakerUpstream",
    "Upstream",
    "UpstreamStream",
]

_OPERATION: Final = "InvokeEndpointWithResponseStream"
# An error reply is a small JSON document; more than this is not read.
_MAX_ERROR_BODY_BYTES: Final = 64 * 1024
# The event stream's framing: a prelude (total length, headers length, the prelude's CRC) and,
# after the payload, the message's CRC, each a big-endian uint32.
_PRELUDE_BYTES: Final = 12
_MESSAGE_CRC_BYTES: Final = 4
_MESSAGE_CRC: Final = struct.Struct("!I")
_PRELUDE: Final = struct.Struct("!III")
_PRELUDE_CRC_BYTES: Final = 4


class UpstreamStream(Protocol):
    """The bytes of the PayloadParts in order; failures raise UpstreamError.

    Each item holds the PayloadParts of one HTTP chunk of the response, joined (SageMaker
    sends a chunk per part; parts that share one are decoded and sent together). A relay that
    fell behind finds the next chunks already received: reading them costs no wait. `aclose`
    stops the stream; a stream read to its end first lets its connection serve the next
    request.

    A stream may also tell when an item is at hand and hand it over without an await (pump.py's
    push): `listen` (False where it cannot) and `next_nowait` (http_types.ResponseBody's).
    """

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    async def __anext__(self) -> bytes: ...

    async def aclose(self) -> None: ...


class Upstream(Protocol):
    """Starts one generation; returns once SageMaker answers with a stream, or raises."""

    async def open(self, body: bytes) -> UpstreamStream: ...

    async def after_restore(self) -> None:
        """Lambda restored the process from a SnapStart snapshot: forget what must not outlive
        it (credentials, open connections)."""


class SageMakerUpstream:
    """InvokeEndpointWithResponseStream on the configured endpoint (and inference component)."""

    def __init__(self, settings: Settings, access: AwsAccess | None = None) -> None:
        self._access = access if access is not None else AwsAccess(settings.region)
        endpoint = self._access.endpoint("sagemaker-runtime")
        self._url = f"{endpoint.url}/endpoints/{settings.endpoint_name}/invocations-response-stream"
        # Host is signed as it is sent; SigV4 leaves User-Agent unsigned.
        self._headers = {
            "Host": host_header(self._url),
            "Content-Type": "application/json",
            "User-Agent": SERVICE_NAME,
        }
        if settings.inference_component_name is not None:
            self._headers["X-Amzn-SageMaker-Inference-Component"] = (
                settings.inference_component_name
            )
        self._service_model = endpoint.model
        self._model_error = engine_named(settings.serving_engine).model_error
        self._timeouts: dict[str, float | None] = {
            "connect": settings.upstream_connect_timeout_seconds,
            "read": settings.upstream_read_timeout_seconds,
            "write": settings.upstream_read_timeout_seconds,
            "pool": settings.upstream_connect_timeout_seconds,
        }

    async def open(self, body: bytes) -> UpstreamStream:
        try:
            response = await self._access.post(
                service="sagemaker",
                url=self._url,
                body=body,
                headers=self._headers,
                timeouts=self._timeouts,
            )
        except Exception as error:
            raise translate_error(error, model_error=self._model_error) from error
        if response.status == 200:
            return _PayloadParts(response, self._model_error)
        try:
            raise self._refusal(response.status, response.headers, await _head(response))
        finally:
            with anyio.CancelScope(shield=True):
                await response.aclose()

    async def after_restore(self) -> None:
        """Forget the credentials and connections the snapshot may hold (aws.py)."""
        await self._access.after_restore()

    def _refusal(
        self, status: int, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> UpstreamError:
        """An error reply, parsed as boto3 would parse it, then translated."""
        response_dict = {
            "status_code": status,
            "headers": HTTPHeaders.from_pairs(
                [(name.decode("latin-1"), value.decode("latin-1")) for name, value in headers]
            ),
            "body": body,
        }
        try:
            parser = create_parser(self._service_model.metadata["protocol"])
            operation = self._service_model.operation_model(_OPERATION)
            parsed = parser.parse(response_dict, operation.output_shape)
            code = parsed.get("Error", {}).get("Code")
            shape = None if code is None else self._service_model.shape_for_error_code(code)
            if shape is not None:
                parsed.update(parser.parse(response_dict, shape))
        except Exception as error:  # a reply no parser understands is still a failed call
            return UpstreamError.bad_gateway(
                f"SageMaker answered HTTP {status}.", f"unparsable error reply: {error!r}"
            )
        return translate_error(ClientError(parsed, _OPERATION), model_error=self._model_error)


async def _head(response: Response) -> bytes:
    """At most _MAX_ERROR_BODY_BYTES of an error reply."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.stream:
        chunks.append(chunk)
        size += len(chunk)
        if size >= _MAX_ERROR_BODY_BYTES:
            break
    return b"".join(chunks)[:_MAX_ERROR_BODY_BYTES]


#: Distinct header blocks whose parse is kept: every PayloadPart of every answer has the same
#: one, an error message its own.
_HEADER_BLOCKS_KEPT: Final = 32


@functools.lru_cache(maxsize=_HEADER_BLOCKS_KEPT)
def _parsed_headers(block: bytes) -> dict[str, Any]:
    """A message's headers, parsed by botocore once per distinct block for the process (about
    forty Python calls a parse). The dict is shared: its readers only read it."""
    return EventStreamHeaderParser().parse(block)


def _botocore_parses_as_expected() -> bool:
    """botocore's buffer still keeps its unread bytes and the pending prelude where
    `_EventStreamBuffer` reads and writes them, and still names the limits and errors its prelude
    check uses. The Lambda runtime ships its own botocore, which the asset does not pin: where it
    differs, botocore's own iteration runs (slower, the same messages)."""
    probe = EventStreamBuffer()
    return _PRELUDE_LIMITS_KNOWN and {"_data", "_prelude"} <= vars(probe).keys()


try:  # what botocore's `_parse_prelude` checks a prelude against, where it has them
    from botocore.eventstream import (
        _MAX_HEADERS_LENGTH,
        _MAX_PAYLOAD_LENGTH,
        InvalidHeadersLength,
        InvalidPayloadLength,
    )
except ImportError:  # pragma: no cover - another botocore: its own `next` runs
    _PRELUDE_LIMITS_KNOWN = False
else:
    _PRELUDE_LIMITS_KNOWN = True

_BOTOCORE_PARSES_AS_EXPECTED: Final = _botocore_parses_as_expected()


class _EventStreamBuffer(EventStreamBuffer):
    """botocore's event-stream buffer, read a message's headers and payload at a time
    (`next_message`).

    botocore's `next` takes a dozen calls of its own per message (a method per field, a property
    per offset, a prelude and a message object) and copies the message's bytes once more to check
    its CRC: a tenth of the relay's Python calls per token. `next_message` does the same checks,
    in the same order, with botocore's limits, header parser (`_parsed_headers`) and exceptions,
    where botocore keeps its state as expected (`_botocore_parses_as_expected`); the pending
    prelude is then this class's own (total length, headers length, CRC), which botocore's own
    methods never see.
    """

    def _next_message_in_one(self) -> tuple[dict[str, Any], bytes] | None:
        """The next whole message's headers and payload; None until the data holds one. Raises
        what botocore's `next` raises for the same bytes (ParserError's kinds)."""
        data = self._data
        if len(data) < _PRELUDE_BYTES:
            return None
        prelude = self._prelude
        if prelude is None:
            prelude = _PRELUDE.unpack_from(data)
            total, headers_length, prelude_crc = prelude
            checked = memoryview(data)[: _PRELUDE_BYTES - _PRELUDE_CRC_BYTES]
            computed = zlib.crc32(checked, 0) & 0xFFFFFFFF
            if computed != prelude_crc:
                raise ChecksumMismatch(prelude_crc, computed)
            if headers_length > _MAX_HEADERS_LENGTH:
                raise InvalidHeadersLength(headers_length)
            payload_length = total - headers_length - _PRELUDE_BYTES - _MESSAGE_CRC_BYTES
            if payload_length > _MAX_PAYLOAD_LENGTH:
                raise InvalidPayloadLength(payload_length)
            self._prelude = prelude
        else:
            total, headers_length, prelude_crc = prelude
        if len(data) < total:
            return None
        payload_end = total - _MESSAGE_CRC_BYTES
        headers_end = _PRELUDE_BYTES + headers_length
        (crc,) = _MESSAGE_CRC.unpack_from(data, payload_end)
        # The message's CRC runs from the prelude's CRC (its seed) to the payload's end.
        checked = memoryview(data)[_PRELUDE_BYTES - _MESSAGE_CRC_BYTES : payload_end]
        computed = zlib.crc32(checked, prelude_crc) & 0xFFFFFFFF
        if computed != crc:
            raise ChecksumMismatch(crc, computed)
        headers = _parsed_headers(data[_PRELUDE_BYTES:headers_end])
        payload = data[headers_end:payload_end]
        self._data = data[total:]
        self._prelude = None
        return headers, payload

    def _next_message_by_botocore(self) -> tuple[dict[str, Any], bytes] | None:
        """`next_message` through botocore's own `next`."""
        try:
            message = self.next()
        except StopIteration:
            return None
        return message.headers, message.payload

    next_message = (
        _next_message_in_one if _BOTOCORE_PARSES_AS_EXPECTED else _next_message_by_botocore
    )


class _PayloadParts:
    """The response's event stream reduced to PayloadPart bytes, with errors translated."""

    def __init__(self, response: Response, model_error: ModelErrorMapping) -> None:
        self._response = response
        self._model_error = model_error
        self._reads = response.stream
        self._messages = _EventStreamBuffer()
        self._failure: UpstreamError | None = None

    def __aiter__(self) -> _PayloadParts:
        return self

    async def __anext__(self) -> bytes:
        while True:
            if self._failure is not None:
                failure, self._failure = self._failure, None
                raise failure
            try:
                data = await self._reads.__anext__()
            except StopAsyncIteration:
                raise
            except Exception as error:
                raise translate_error(error, model_error=self._model_error) from error
            payloads = self._parse(data)
            if payloads:
                return b"".join(payloads)

    def next_nowait(self) -> bytes | None:
        """What `__anext__` would return, if it need not wait; None while it would. Raises
        MustAwait where the next step is the stream's end, and UpstreamError as `__anext__`."""
        while True:
            if self._failure is not None:
                failure, self._failure = self._failure, None
                raise failure
            try:
                data = self._reads.next_nowait()
            except MustAwait:
                raise
            except Exception as error:
                raise translate_error(error, model_error=self._model_error) from error
            if data is None:
                return None
            payloads = self._parse(data)
            if payloads:
                return b"".join(payloads)

    def listen(self, listener: Callable[[], None] | None) -> bool:
        """Call `listener` when `next_nowait` may have something (the connection's `listen`);
        False where the connection cannot tell."""
        return self._reads.listen(listener)

    def _parse(self, data: bytes) -> list[bytes]:
        """The PayloadParts `data` completes; a failure after them is raised by the next read."""
        self._messages.add_data(data)
        payloads: list[bytes] = []
        next_message = self._messages.next_message
        try:
            while (message := next_message()) is not None:
                headers, payload = message
                kind = headers.get(":message-type")
                if kind == "event":
                    if headers.get(":event-type") == "PayloadPart":
                        payloads.append(payload)
                    # Any other event kind is one this code does not know yet: nothing to relay.
                    continue
                self._failure = translate_error(
                    ClientError(_stream_exception(headers, payload), _OPERATION),
                    model_error=self._model_error,
                )
                break
        except ParserError as error:
            self._failure = UpstreamError.bad_gateway(
                "The event stream from SageMaker could not be read.", repr(error)
            )
        if self._failure is not None and not payloads:
            failure, self._failure = self._failure, None
            raise failure
        return payloads

    async def aclose(self) -> None:
        """Close the response: read to its end, its connection goes back to the pool; else
        the connection is closed, which is what tells SageMaker to stop the model."""
        await self._response.aclose()


def _stream_exception(headers: dict[str, Any], payload: bytes) -> dict[str, Any]:
    """An `exception` or `error` message as botocore shapes a ClientError's response, but
    keeping the modelled fields (ModelStreamError's ErrorCode) that botocore drops."""
    if headers.get(":message-type") == "exception":
        code = str(headers.get(":exception-type") or "")
        fields: dict[str, Any] = {}
        try:
            document = json.loads(payload)
            if isinstance(document, dict):
                fields = document
        except (ValueError, RecursionError):
            pass
        text = fields.get("Message") or fields.get("message") or ""
        extra = {"ErrorCode": fields["ErrorCode"]} if "ErrorCode" in fields else {}
        return {"Error": {"Code": code, "Message": str(text)}, **extra}
    return {
        "Error": {
            "Code": str(headers.get(":error-code") or ""),
            "Message": str(headers.get(":error-message") or ""),
        }
    }
