"""`proxy`: what it signs with and how it refuses to start.

Requests through a running proxy to a SigV4-checking stand-in are tested in
tests/e2e/test_e2e_proxy.py; finding a deployed URL with --env in test_deployed.py.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from botocore.credentials import ReadOnlyCredentials

from jumpstream.proxy import (
    ProxyError,
    ProxyOptions,
    create_proxy_app,
    resolve_signing,
    run_proxy,
)

FUNCTION_URL = "https://abcdefghij0123456789abcdefghij01.lambda-url.eu-west-1.on.aws/"
CREDENTIALS = ReadOnlyCredentials("AKID", "secret", None)
REPO = Path(__file__).resolve().parents[2]


def _source() -> ReadOnlyCredentials:
    return CREDENTIALS


def test_signing_uses_the_region_in_a_function_urls_host() -> None:
    signing = resolve_signing(ProxyOptions(url=FUNCTION_URL), source_loader=lambda: _source)
    assert signing is not None
    source, region = signing
    assert (source(), region) == (CREDENTIALS, "eu-west-1")


def test_the_region_option_wins_and_no_sign_needs_nothing() -> None:
    options = ProxyOptions(url="https://relay.example.com/", region="ap-northeast-1")
    assert resolve_signing(options, source_loader=lambda: _source)[1] == "ap-northeast-1"  # type: ignore[index]
    unsigned = ProxyOptions(url="https://relay.example.com/", sign=False)
    assert resolve_signing(unsigned, source_loader=lambda: None) is None


@pytest.mark.parametrize(
    ("options", "says"),
    [
        (ProxyOptions(url="https://relay.example.com/"), "pass --region"),
        (ProxyOptions(url=FUNCTION_URL), "no AWS credentials found"),
    ],
)
def test_it_says_why_it_cannot_sign(options: ProxyOptions, says: str) -> None:
    with pytest.raises(ProxyError, match=says):
        resolve_signing(options, source_loader=lambda: None)


@pytest.mark.parametrize("url", ["ftp://example.com/", "https://example.com/?a=1", "http:///x"])
def test_a_url_it_cannot_forward_to_is_refused(url: str) -> None:
    with pytest.raises(ProxyError, match="the URL must"):
        create_proxy_app(ProxyOptions(url=url, sign=False), signing=None)


def test_a_taken_port_is_one_line_and_exit_2() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        stdout, stderr = io.StringIO(), io.StringIO()
        options = ProxyOptions(url=FUNCTION_URL, port=port, sign=False)
        assert run_proxy(options, stdout=stdout, stderr=stderr) == 2
    assert stderr.getvalue() == (
        f"jumpstream proxy: cannot listen on 127.0.0.1 port {port}: Address already in use\n"
    )
    assert stdout.getvalue() == ""


def test_the_command_starts_on_loopback_and_answers() -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "jumpstream", "proxy", "--no-sign", "--port", "0"]
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        nowhere = f"http://127.0.0.1:{closed.getsockname()[1]}/"
    child = subprocess.Popen(
        [*command, "--url", nowhere], cwd=REPO, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        first = child.stdout.readline()
        assert first.startswith("jumpstream proxy: http://127.0.0.1:")
        assert f"-> {nowhere} (unsigned)" in first
        listen = first.split()[2]
        response = httpx.post(listen + "/v1/completions", json={}, timeout=30)
        assert response.status_code == 502
        assert response.json()["error"]["code"] == "upstream_error"
    finally:
        child.terminate()
        child.wait(30)
