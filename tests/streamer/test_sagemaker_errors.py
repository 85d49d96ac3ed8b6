"""SageMaker's error vocabulary: what the caller gets for everything the call can raise."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    NoCredentialsError,
)
from streamer import http_types
from streamer.engines import TGI
from streamer.errors import UpstreamError
from streamer.sagemaker_errors import translate_error as translate_with


def translate_error(error: BaseException) -> UpstreamError:
    """SageMaker's errors, a ModelError read as TGI's (each engine's: test_engine_errors.py)."""
    return translate_with(error, model_error=TGI.model_error)


def _client_error(code: str, message: str = "m", **extra: Any) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}, **extra}, "Op")


@pytest.mark.parametrize(
    ("error", "kind", "status"),
    [
        (_client_error("ThrottlingException"), "throttled", 503),
        (_client_error("Throttling"), "throttled", 503),
        (_client_error("ServiceUnavailable"), "unavailable", 503),
        (
            _client_error("ValidationError", "Inference Component has no capacity"),
            "no_capacity",
            503,
        ),
        (_client_error("ValidationError", "Endpoint not found"), "upstream_error", 502),
        (_client_error("ModelError"), "model_error", 502),
        (_client_error("InternalFailure"), "upstream_error", 502),
        (_client_error("AccessDeniedException"), "upstream_error", 502),
        (
            _client_error("ModelStreamError", "Model invocation time exceeded"),
            "upstream_timeout",
            504,
        ),
        (
            _client_error("ModelStreamError", "m", ErrorCode="ModelInvocationTimeExceeded"),
            "upstream_timeout",
            504,
        ),
        (_client_error("ModelStreamError", "connection reset"), "upstream_error", 502),
        (_client_error("InternalStreamFailure"), "upstream_error", 502),
        (http_types.ReadTimeout("Read timed out."), "upstream_timeout", 504),
        (http_types.ConnectTimeout("Connect timed out."), "upstream_timeout", 504),
        (http_types.WriteTimeout("Write timed out."), "upstream_timeout", 504),
        (http_types.RemoteProtocolError("Connection broken"), "upstream_error", 502),
        (http_types.ReadError("Connection reset by peer"), "upstream_error", 502),
        (http_types.ConnectError("Connection refused"), "upstream_error", 502),
        (ConnectionResetError(), "upstream_error", 502),
        (
            _client_error("ModelError", "m", OriginalStatusCode=422, OriginalMessage="bad body"),
            "validation",
            422,
        ),
        (
            _client_error(
                "ModelError",
                "m",
                OriginalStatusCode=424,
                OriginalMessage=json.dumps({"error": "busy", "error_type": "overloaded"}),
            ),
            "overloaded",
            503,
        ),
        (NoCredentialsError(), "upstream_error", 502),
        (ValueError("anything else"), "upstream_error", 502),
    ],
)
def test_translation(error: Exception, kind: str, status: int) -> None:
    translated = translate_error(error)
    assert (translated.kind, translated.status) == (kind, status)
    assert translated.message.endswith(".")
    assert (translated.retry_after is not None) == (status == 503)


def test_an_odd_error_code_is_not_echoed() -> None:
    translated = translate_error(_client_error("Weird <script>", "x"))
    assert "<script>" not in translated.message


def test_a_timeout_keeps_its_cause_for_the_log() -> None:
    translated = translate_error(http_types.ReadTimeout("Read timed out."))
    assert "Read timed out" in (translated.detail or "")


def test_an_upstream_error_translates_to_itself() -> None:
    error = UpstreamError(kind="overloaded", message="m.")
    assert translate_error(error) is error
