"""SageMaker's error vocabulary: what the caller gets for anything the call or its stream raised.

SageMaker refuses a call with an error code (botocore's ClientError shape, from an HTTP error
reply or an exception message inside the event stream), and the connection itself can fail or
time out. Each becomes one `UpstreamError` whose kind says what the caller can do: try again
shortly (throttled, unavailable), later (no_capacity: a copy of the model is starting), nothing
(upstream_error, a 502 whose detail stays in the log), or ask for less (upstream_timeout). A
ModelError carries the container's own answer, which only the model's engine can read: the
caller passes the engine's reading (engines.py: tgi_errors, lmi_errors or vllm_errors).
"""

from __future__ import annotations

from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from .contract import ERROR_KINDS
from .errors import UpstreamError
from .http_types import ConnectTimeout, TimeoutException, TransportError
from .model_errors import ModelErrorMapping

__all__ = ["translate_error"]

_THROTTLING_CODES: Final = frozenset(
    {"ThrottlingException", "Throttling", "ThrottledException", "TooManyRequestsException"}
)
_TIMEOUT_WORDS: Final = ("modelinvocationtimeexceeded", "timeexceeded", "timedout", "timeout")
# The HTTP client's failures other than its timeouts (http_types.py), and the system's.
_CONNECTION_FAILURES: Final = (TransportError, ConnectionError)


def translate_error(error: BaseException, *, model_error: ModelErrorMapping) -> UpstreamError:
    """What the caller gets for anything the SageMaker call or its stream raised; a ModelError
    means what the engine's `model_error` says."""
    if isinstance(error, UpstreamError):
        return error
    if isinstance(error, ClientError):
        return _from_client_error(error, model_error)
    if isinstance(error, ConnectTimeout):
        return UpstreamError(
            kind="upstream_timeout",
            message="The relay could not connect to SageMaker in time.",
            detail=repr(error),
        )
    if isinstance(error, TimeoutException | TimeoutError):
        return UpstreamError(
            kind="upstream_timeout",
            message="The model endpoint stopped sending for longer than the relay waits.",
            detail=repr(error),
        )
    if isinstance(error, _CONNECTION_FAILURES):
        return UpstreamError.bad_gateway("The connection to SageMaker failed.", repr(error))
    if isinstance(error, BotoCoreError):
        return UpstreamError.bad_gateway("The relay could not call SageMaker.", repr(error))
    return UpstreamError.bad_gateway("The call to SageMaker failed.", repr(error))


def _from_client_error(error: ClientError, model_error: ModelErrorMapping) -> UpstreamError:
    response: dict[str, Any] = getattr(error, "response", None) or {}
    details = response.get("Error") or {}
    code = str(details.get("Code") or "")
    text = str(details.get("Message") or "")
    detail = f"{code}: {text}"
    if code in _THROTTLING_CODES:
        return UpstreamError(
            kind="throttled",
            message="SageMaker is throttling calls to the model endpoint; try again shortly.",
            detail=detail,
        )
    if code == "ServiceUnavailable":
        return UpstreamError(
            kind="unavailable",
            message="SageMaker is temporarily unavailable; try again shortly.",
            detail=detail,
        )
    if code == "ValidationError" and "no capacity" in text.lower():
        return UpstreamError(
            kind="no_capacity",
            # Scaled to zero, or every copy busy while more start: either way it is coming.
            message=(
                "The model is starting (no copy of it can take this request yet); "
                f"try again in about {ERROR_KINDS['no_capacity'].retry_after} s."
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
        if error_code:
            detail = f"{code} ({error_code}): {text}"
        squeezed = "".join(f"{error_code} {text}".lower().split())
        if any(word in squeezed for word in _TIMEOUT_WORDS):
            return UpstreamError(
                kind="upstream_timeout",
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
