"""The relay's error kinds in OpenAI's statuses and error object."""

from __future__ import annotations

import pytest
from streamer.errors import ApiError
from streamer.openai.errors import openai_error_body, openai_status


@pytest.mark.parametrize(
    ("kind", "status", "error_type"),
    [
        ("invalid_request", 400, "invalid_request_error"),
        ("validation", 400, "invalid_request_error"),
        ("throttled", 429, "rate_limit_exceeded"),
        ("overloaded", 503, "server_error"),
        ("no_capacity", 503, "server_error"),
        ("model_error", 502, "server_error"),
        ("upstream_timeout", 504, "server_error"),
        ("internal_error", 500, "server_error"),
    ],
)
def test_relay_errors_take_openais_statuses_and_shape(
    kind: str, status: int, error_type: str
) -> None:
    error = ApiError(kind=kind, message="m")
    assert openai_status(error) == status
    assert openai_error_body(message="m", kind=kind) == {
        "error": {"message": "m", "type": error_type, "param": None, "code": kind}
    }
