"""`ask`'s SigV4 signing for a function URL, checked against an independent implementation.

botocore verifies nothing offline, so the signature is recomputed here from AWS's published
algorithm (canonical request, string to sign, derived key) using only hashlib and hmac, from the
headers `sign` produced. Any header that is changed after signing, or not signed, shows up.
"""

from __future__ import annotations

import hashlib
import io

import httpx
import pytest
from botocore.credentials import ReadOnlyCredentials

from jumpstream.ask import AskOptions, request_body, run_ask
from jumpstream.client import RelayClient, auth_for
from jumpstream.signing import PreparedRequest, canonical_host, region_from_url, sign
from tests.sigv4_reference import AUTHORIZATION, expected_signature, lower, problem_with, scope_of

CREDENTIALS = ReadOnlyCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", None)
SESSION = ReadOnlyCredentials("ASIAEXAMPLE", "secret/with+chars", "session-token-value")
URL = "https://abcdefghij0123456789abcdefghij01.lambda-url.eu-west-1.on.aws/"


def unsigned(body: bytes = b'{"inputs": "hi"}', url: str = URL) -> PreparedRequest:
    return PreparedRequest(
        method="POST",
        url=url,
        headers={
            "Content-Type": "application/json",
            "Accept": "text/plain",
            "User-Agent": "t",
        },
        body=body,
    )


@pytest.mark.parametrize(
    ("url", "region"),
    [
        (URL, "eu-west-1"),
        ("https://abc.lambda-url.us-gov-west-1.on.aws/", "us-gov-west-1"),
        ("https://ABC.LAMBDA-URL.AP-SOUTHEAST-2.ON.AWS", "ap-southeast-2"),
        ("http://127.0.0.1:8080/", None),
        ("https://example.com/", None),
        ("https://abc.lambda-url.eu-west-1.on.aws.evil.example/", None),
        ("https://lambda-url.eu-west-1.on.aws/", None),
    ],
)
def test_region_comes_from_a_function_url_host_only(url: str, region: str | None) -> None:
    assert region_from_url(url) == region


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://h.example/", "h.example"),
        ("https://h.example:443/", "h.example"),
        ("https://h.example:8443/", "h.example:8443"),
        ("http://127.0.0.1:80/", "127.0.0.1"),
        ("http://127.0.0.1:8080/", "127.0.0.1:8080"),
        ("http://[::1]:8080/", "[::1]:8080"),
    ],
)
def test_canonical_host_drops_only_the_default_port(url: str, host: str) -> None:
    assert canonical_host(url) == host


def test_signature_matches_an_independent_sigv4_computation() -> None:
    signed_request = sign(unsigned(), credentials=CREDENTIALS, region="eu-west-1")
    headers = lower(dict(signed_request.headers))
    match = AUTHORIZATION.fullmatch(headers["authorization"])
    assert match is not None
    assert match["key"] == "AKIDEXAMPLE"
    assert match["region"] == "eu-west-1"
    assert match["service"] == "lambda"
    assert headers["x-amz-date"].startswith(match["date"])
    signed = match["signed"].split(";")
    assert signed == sorted(signed)
    assert match["signature"] == expected_signature(signed_request, CREDENTIALS.secret_key, signed)


def test_body_hash_header_is_sent_and_signed() -> None:
    body = request_body("日本語の質問", max_new_tokens=5)
    signed_request = sign(unsigned(body), credentials=CREDENTIALS, region="eu-west-1")
    headers = lower(dict(signed_request.headers))
    assert headers["x-amz-content-sha256"] == hashlib.sha256(body).hexdigest()
    signed = AUTHORIZATION.fullmatch(headers["authorization"])["signed"].split(";")  # type: ignore[index]
    assert {"host", "x-amz-content-sha256", "x-amz-date", "content-type", "accept"} <= set(signed)
    assert "user-agent" not in signed
    assert signed_request.body == body


def test_a_different_body_gives_a_different_signature() -> None:
    first = sign(unsigned(b'{"inputs": "a"}'), credentials=CREDENTIALS, region="eu-west-1")
    tampered = PreparedRequest(
        method=first.method, url=first.url, headers=first.headers, body=b'{"inputs": "b"}'
    )
    headers = lower(dict(first.headers))
    signed = AUTHORIZATION.fullmatch(headers["authorization"])["signed"].split(";")  # type: ignore[index]
    assert headers["authorization"].endswith(
        expected_signature(first, CREDENTIALS.secret_key, signed)
    )
    assert not headers["authorization"].endswith(
        expected_signature(tampered, CREDENTIALS.secret_key, signed)
    )


def test_session_token_is_sent_and_signed() -> None:
    signed_request = sign(unsigned(), credentials=SESSION, region="us-east-1")
    headers = lower(dict(signed_request.headers))
    assert headers["x-amz-security-token"] == "session-token-value"
    signed = AUTHORIZATION.fullmatch(headers["authorization"])["signed"].split(";")  # type: ignore[index]
    assert "x-amz-security-token" in signed
    assert headers["authorization"].endswith(
        expected_signature(signed_request, SESSION.secret_key, signed)
    )


def test_host_header_sent_is_the_one_signed() -> None:
    url = "http://127.0.0.1:8080/"
    signed_request = sign(unsigned(url=url), credentials=CREDENTIALS, region="us-east-1")
    assert lower(dict(signed_request.headers))["host"] == "127.0.0.1:8080"


def _sent_through_client(url: str, **auth_options: object) -> httpx.Request:
    """What RelayClient puts on the wire for one chat, captured by httpx's mock transport."""
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = b'event: done\ndata: {"finish_reason": "eos_token", "generated_tokens": 1}\n\n'
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})

    auth = auth_for(url, source_loader=lambda: lambda: SESSION, **auth_options)  # type: ignore[arg-type]
    with RelayClient(url, auth=auth, transport=httpx.MockTransport(answer)) as client:
        assert list(client.stream(messages=[{"role": "user", "content": "日本"}])) == []
    (request,) = seen
    return request


def _as_prepared(request: httpx.Request) -> PreparedRequest:
    return PreparedRequest(
        method=request.method,
        url=str(request.url),
        headers=dict(request.headers),
        body=request.content,
    )


def test_a_function_url_is_signed_as_lambda_checks_it() -> None:
    request = _sent_through_client(URL)
    problem = problem_with(
        _as_prepared(request),
        access_key=SESSION.access_key,
        secret=SESSION.secret_key,
        token=SESSION.token,
    )
    assert problem is None
    headers = lower(dict(request.headers))
    assert scope_of(headers["authorization"])[1:] == ("eu-west-1", "lambda")
    assert headers["accept"] == "text/event-stream"


def test_the_region_option_wins_over_the_url() -> None:
    request = _sent_through_client(URL, region="ap-northeast-1")
    assert scope_of(lower(dict(request.headers))["authorization"])[1] == "ap-northeast-1"


@pytest.mark.parametrize(("url", "sign"), [("http://127.0.0.1:1/", None), (URL, False)])
def test_loopback_by_default_and_no_sign_always_send_no_aws_headers(
    url: str, sign: bool | None
) -> None:
    assert auth_for(url, sign=sign, source_loader=_never) is None


def _never() -> None:
    raise AssertionError("credentials must not be looked up when nothing is signed")


@pytest.mark.parametrize(
    ("options", "loader", "message"),
    [
        (
            AskOptions(url="https://example.com/", prompt="hi", sign=True),
            lambda: _source,
            "--region",
        ),
        (AskOptions(url=URL, prompt="hi"), lambda: None, "no AWS credentials"),
    ],
)
def test_ask_explains_why_it_cannot_sign(options: AskOptions, loader: object, message: str) -> None:
    stdout, stderr = io.StringIO(), io.StringIO()
    status = run_ask(options, stdout=stdout, stderr=stderr, source_loader=loader)  # type: ignore[arg-type]
    assert status == 1
    assert stdout.getvalue() == ""
    assert message in stderr.getvalue()
    assert stderr.getvalue().count("\n") == 1


def _source() -> ReadOnlyCredentials:
    return CREDENTIALS
