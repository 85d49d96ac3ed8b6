"""`proxy`: what it signs with, how it refuses to start, and finding a deployed URL.

Requests through a running proxy to a SigV4-checking stand-in are tested in
tests/e2e/test_e2e_proxy.py.
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
from botocore.session import Session
from botocore.stub import Stubber

from jumpstream.deployed import DeployedError, relay_url
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


def _cloudformation(responses: list[dict[str, object] | str]) -> tuple[object, Stubber]:
    client = Session().create_client(
        "cloudformation",
        region_name="us-east-1",
        aws_access_key_id="AKID",
        aws_secret_access_key=CREDENTIALS.secret_key,
    )
    stubber = Stubber(client)
    for response in responses:
        if isinstance(response, str):
            stubber.add_client_error(
                "describe_stacks", service_error_code="ValidationError", service_message=response
            )
        else:
            stubber.add_response("describe_stacks", response, {"StackName": "jumpstream-dev-relay"})
    stubber.activate()
    return client, stubber


def _stack(outputs: list[dict[str, str]]) -> dict[str, object]:
    return {
        "Stacks": [
            {
                "StackName": "jumpstream-dev-relay",
                "CreationTime": "2026-12-01T00:00:00Z",
                "StackStatus": "CREATE_COMPLETE",
                "Outputs": outputs,
            }
        ]
    }


def test_env_finds_the_url_in_the_relay_stacks_output() -> None:
    outputs = [
        {"OutputKey": "FunctionName", "OutputValue": "fn"},
        {"OutputKey": "Url", "OutputValue": FUNCTION_URL},
    ]
    client, stubber = _cloudformation([_stack(outputs)])
    assert relay_url("dev", cloudformation=client) == (FUNCTION_URL, "us-east-1")
    stubber.assert_no_pending_responses()


@pytest.mark.parametrize(
    ("response", "says"),
    [
        (
            "Stack with id jumpstream-dev-relay does not exist",
            "stack jumpstream-dev-relay does not exist in us-east-1: deploy it first "
            "(make deploy ENV=dev)",
        ),
        ("Rate exceeded", "cannot read stack jumpstream-dev-relay in us-east-1: Rate exceeded"),
        (_stack([]), "has no Url output (status CREATE_COMPLETE)"),
    ],
)
def test_env_says_why_it_has_no_url(response: dict[str, object] | str, says: str) -> None:
    client, _ = _cloudformation([response])
    with pytest.raises(DeployedError) as caught:
        relay_url("dev", cloudformation=client)
    assert says in str(caught.value)


def test_an_unknown_env_names_the_choices() -> None:
    with pytest.raises(DeployedError, match="unknown environment 'nope'; choose one of: dev, prod"):
        relay_url("nope", cloudformation=object())


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
