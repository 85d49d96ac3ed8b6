"""The SageMaker call, and the translation of everything botocore can raise into one error type.

The relay logic never sees botocore: it gets an `UpstreamStream` of PayloadPart bytes whose
failures are all `UpstreamError`s carrying the status and error type the caller should get. That
keeps the relay testable with a scripted fake, and keeps the knowledge of what SageMaker's errors
mean in this one file.

Where botocore raises what (botocore 1.44, urllib3 2.x):
- Before the stream, `invoke_endpoint_with_response_stream` raises `ClientError` (service
  errors, `e.response["Error"]["Code"]`), `botocore.exceptions.ConnectTimeoutError` /
  `ReadTimeoutError`, `EndpointConnectionError`, or another `BotoCoreError`.
- While iterating, botocore does not wrap I/O errors: a silent upstream raises
  `urllib3.exceptions.ReadTimeoutError` and a broken connection `urllib3.exceptions.ProtocolError`.
  Other botocore versions wrap them in `botocore.exceptions.ResponseStreamingError` (its
  `error`), as `StreamingBody.read` does; the wrapped error is what decides the status.
  An exception message in the stream raises `botocore.exceptions.EventStreamError` (a
  `ClientError`) whose Code is `ModelStreamError` or `InternalStreamFailure`. botocore's event
  parser keeps only Code and Message, dropping ModelStreamError's ErrorCode, so a timeout is told
  apart from a broken stream by the message when the code is missing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Final, Protocol

import urllib3.exceptions
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
    ResponseStreamingError,
)

from .errors import RETRY_AFTER_BUSY_SECONDS, RETRY_AFTER_NO_CAPACITY_SECONDS, UpstreamError
from .tgi_errors import model_error

if TYPE_CHECKING:
    from .settings import Settings

__all__ = [
    "RETRY_AFTER_BUSY_SECONDS",
    "RETRY_AFTER_NO_CAPACITY_SECONDS",
    "SageMakerUpstream",
    "Upstream",
    "UpstreamError",
    "UpstreamStream",
    "create_client",
    "translate_error",
]

_THROTTLING_CODES: Final = frozenset(
    {"ThrottlingException", "Throttling", "ThrottledException", "TooManyRequestsException"}
)
_TIMEOUT_WORDS: Final = ("modelinvocationtimeexceeded", "timeexceeded", "timedout", "timeout")
# Wrapped errors are unwrapped this deep at most: a cycle of wrappers must not loop forever.
_MAX_UNWRAP: Final = 4


class UpstreamStream(Protocol):
    """The bytes of each PayloadPart in order; failures raise UpstreamError.

    Iteration blocks on the network, so the relay calls `next` in a worker thread. `close` may
    be called from another thread while a `next` is blocked, and must make it return soon.
    """

    def __iter__(self) -> Iterator[bytes]: ...

    def __next__(self) -> bytes: ...

    def close(self) -> None: ...


class Upstream(Protocol):
    """Starts one generation; blocks until SageMaker answers with a stream or an error."""

    def open(self, body: bytes) -> UpstreamStream: ...


def create_client(settings: Settings) -> Any:
    """The sagemaker-runtime client, made once per process.

    No retries: once a stream has begun a retry would repeat text, and before that the caller
    gets a 503 with Retry-After and decides. The endpoint URL is botocore's to resolve, so
    `AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME` points the client at an emulator.
    """
    import boto3  # the Lambda runtime provides boto3; importing it here keeps tests' imports light
    from botocore.config import Config

    config = Config(
        connect_timeout=settings.upstream_connect_timeout_seconds,
        read_timeout=settings.upstream_read_timeout_seconds,
        retries={"total_max_attempts": 1},
        max_pool_connections=50,
        user_agent_appid="jumpstream-relay",
    )
    session = boto3.session.Session()
    return session.client("sagemaker-runtime", region_name=settings.region, config=config)


class SageMakerUpstream:
    """InvokeEndpointWithResponseStream on the configured endpoint (and inference component)."""

    def __init__(self, settings: Settings, *, client: Any | None = None) -> None:
        self._endpoint_name = settings.endpoint_name
        self._inference_component_name = settings.inference_component_name
        self._client = client if client is not None else create_client(settings)

    def open(self, body: bytes) -> UpstreamStream:
        arguments: dict[str, Any] = {
            "EndpointName": self._endpoint_name,
            "Body": body,
            "ContentType": "application/json",
        }
        if self._inference_component_name is not None:
            arguments["InferenceComponentName"] = self._inference_component_name
        try:
            response = self._client.invoke_endpoint_with_response_stream(**arguments)
        except Exception as error:
            raise translate_error(error) from error
        return _PayloadParts(response["Body"])


class _PayloadParts:
    """botocore's EventStream reduced to PayloadPart bytes, with errors translated."""

    def __init__(self, event_stream: Any) -> None:
        self._event_stream = event_stream
        self._events: Iterator[dict[str, Any]] = iter(event_stream)
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        while True:
            try:
                event = next(self._events)
            except StopIteration:
                raise
            except Exception as error:
                if self._closed:
                    raise StopIteration from None
                raise translate_error(error) from error
            part = event.get("PayloadPart")
            if part is not None:
                return bytes(part.get("Bytes", b""))
            # Any other event kind is one this code does not know yet: nothing to relay.

    def close(self) -> None:
        """Stop the stream, even while another thread is blocked reading it.

        Closing a socket does not wake a thread blocked in recv() on it; shutting it down does.
        urllib3 2.3+ offers that as `HTTPResponse.shutdown()`. botocore keeps the response as
        the EventStream's `_raw_stream`; where either is missing, plain close() is all we have,
        and the blocked read ends at the read timeout.
        """
        self._closed = True
        raw = getattr(self._event_stream, "_raw_stream", None)
        shutdown = getattr(raw, "shutdown", None)
        if callable(shutdown):
            with contextlib.suppress(Exception):
                shutdown()
        with contextlib.suppress(Exception):
            self._event_stream.close()


def translate_error(error: BaseException) -> UpstreamError:
    """What the caller gets for anything the SageMaker call or its stream raised."""
    for _ in range(_MAX_UNWRAP):
        inner = error.kwargs.get("error") if isinstance(error, ResponseStreamingError) else None
        if not isinstance(inner, BaseException):
            break
        error = inner
    if isinstance(error, UpstreamError):
        return error
    if isinstance(error, ClientError):
        return _from_client_error(error)
    if isinstance(error, ConnectTimeoutError | urllib3.exceptions.ConnectTimeoutError):
        return UpstreamError(
            kind="upstream_timeout",
            status=504,
            message="The relay could not connect to SageMaker in time.",
            detail=repr(error),
        )
    if isinstance(error, ReadTimeoutError | urllib3.exceptions.ReadTimeoutError | TimeoutError):
        return UpstreamError(
            kind="upstream_timeout",
            status=504,
            message="The model endpoint stopped sending for longer than the relay waits.",
            detail=repr(error),
        )
    if isinstance(
        error,
        EndpointConnectionError
        | ConnectionClosedError
        | urllib3.exceptions.ProtocolError
        | ConnectionError,
    ):
        return UpstreamError.bad_gateway(
            "The connection to SageMaker failed.",
            repr(error),
        )
    if isinstance(error, BotoCoreError):
        return UpstreamError.bad_gateway(
            "The relay could not call SageMaker.",
            repr(error),
        )
    return UpstreamError.bad_gateway(
        "The call to SageMaker failed.",
        repr(error),
    )


def _from_client_error(error: ClientError) -> UpstreamError:
    response: dict[str, Any] = getattr(error, "response", None) or {}
    details = response.get("Error") or {}
    code = str(details.get("Code") or "")
    text = str(details.get("Message") or "")
    detail = f"{code}: {text}"
    if code in _THROTTLING_CODES:
        return UpstreamError(
            kind="throttled",
            status=503,
            retry_after=RETRY_AFTER_BUSY_SECONDS,
            message="SageMaker is throttling calls to the model endpoint; try again shortly.",
            detail=detail,
        )
    if code == "ServiceUnavailable":
        return UpstreamError(
            kind="unavailable",
            status=503,
            retry_after=RETRY_AFTER_BUSY_SECONDS,
            message="SageMaker is temporarily unavailable; try again shortly.",
            detail=detail,
        )
    if code == "ValidationError" and "no capacity" in text.lower():
        return UpstreamError(
            kind="no_capacity",
            status=503,
            retry_after=RETRY_AFTER_NO_CAPACITY_SECONDS,
            message=(
                "The model has no free capacity right now (it may be scaling out); "
                "try again in a minute."
            ),
            detail=detail,
        )
    if code == "ValidationError":
        return UpstreamError.bad_gateway(
            (
                "SageMaker refused the call to the model endpoint (ValidationError); "
                "the relay's endpoint settings may be wrong."
            ),
            detail,
        )
    if code == "ModelError":
        return model_error(
            status=response.get("OriginalStatusCode"),
            original=response.get("OriginalMessage"),
            detail=detail,
        )
    if code == "ModelStreamError":
        error_code = str(response.get("ErrorCode") or "")
        squeezed = "".join(f"{error_code} {text}".lower().split())
        if any(word in squeezed for word in _TIMEOUT_WORDS):
            return UpstreamError(
                kind="upstream_timeout",
                status=504,
                message="The model took longer than SageMaker allows to finish the answer.",
                detail=detail,
            )
        return UpstreamError.bad_gateway(
            "The stream between SageMaker and the model broke before the answer ended.",
            detail,
        )
    if code == "InternalStreamFailure":
        return UpstreamError.bad_gateway(
            "SageMaker's stream from the model failed before the answer ended.",
            detail,
        )
    if code == "InternalFailure":
        return UpstreamError.bad_gateway(
            "SageMaker failed internally while calling the model.",
            detail,
        )
    return UpstreamError.bad_gateway(
        f"SageMaker refused the call ({_safe_code(code)}).",
        detail,
    )


def _safe_code(code: str) -> str:
    """An error code is an identifier; anything else is not echoed."""
    return code if code.isidentifier() and len(code) <= 64 else "unknown error"
