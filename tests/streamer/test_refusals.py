"""Starlette's own 404 and 405 on the relay's routes, in the relay's JSON shape (OpenAI's under
/v1: tests/streamer/openai/test_app.py).
"""

from __future__ import annotations

import pytest

from tests.streamer.support import (
    PROMPT,
    ScriptedUpstream,
    call,
    error_body,
    make_app,
)


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [("GET", "/", "POST"), ("PUT", "/", "POST"), ("DELETE", "/health", "GET, HEAD")],
)
def test_other_methods_are_405_with_allow(method: str, path: str, allow: str) -> None:
    response = call(make_app(ScriptedUpstream()), method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allow
    body = error_body(response)
    assert body["type"] == "method_not_allowed"
    assert method in body["error"]
    assert response.headers["x-request-id"]


@pytest.mark.parametrize("path", ["/nope", "/health/", "/v2/chat/completions", "/" + "a" * 5000])
def test_other_paths_are_404(path: str) -> None:
    response = call(make_app(ScriptedUpstream()), "POST", path, json_body=PROMPT)
    assert response.status_code == 404
    body = error_body(response)
    assert body["type"] == "not_found"
    assert len(body["error"]) < 300
