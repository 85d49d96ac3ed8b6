"""The relay's SigV4 against botocore's own signing of the same request.

aws.py signs a lighter request than botocore's AWSRequest, overriding two methods of SigV4Auth
(the headers to sign, and the signature with the day's key kept): whatever botocore's signer reads
of a request, both must give the same headers. Where they would not (another botocore), aws.py
signs botocore's own way, and that must too. (What SageMaker
would check, the signature recomputed from what arrived, is test_upstream.py's.)
"""

from __future__ import annotations

import asyncio
import datetime
import threading
import time

import anyio
import botocore.session
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from streamer import aws

URL = "https://runtime.sagemaker.eu-west-1.amazonaws.com/endpoints/my-endpoint/invocations-response-stream"
BODY = '{"inputs": "署名", "parameters": {"max_new_tokens": 8}}'.encode()
NOW = datetime.datetime(2026, 12, 7, 6, 30, 15)


@pytest.mark.parametrize("lightly", [True, False], ids=["lightly", "by-botocore"])
@pytest.mark.parametrize("token", [None, "session-token"])
@pytest.mark.parametrize(
    "headers",
    [
        {
            "Host": "runtime.sagemaker.eu-west-1.amazonaws.com",
            "Content-Type": "application/json",
            "Accept": "application/vnd.amazon.eventstream",
            "X-Amzn-SageMaker-Inference-Component": "ic-1",
            "User-Agent": "jumpstream",
        },
        {
            "host": "runtime.sagemaker.eu-west-1.amazonaws.com",
            "content-type": "application/x-amz-json-1.0",
            "X-Amz-Target": "DynamoDB_20120810.GetItem",
            "X-Custom": "  spaced   out  value ",
        },
    ],
    ids=["sagemaker", "mixed-case-and-spaces"],
)
def test_the_signature_is_botocores(
    monkeypatch: pytest.MonkeyPatch, headers: dict[str, str], token: str | None, lightly: bool
) -> None:
    monkeypatch.setattr(aws, "_SIGNS_AS_BOTOCORE", lightly)
    signed, expected = _signed_both_ways(
        monkeypatch, Credentials("AKIDTEST", "test-secret", token), headers, NOW
    )
    assert signed == expected
    assert any(name == b"authorization" for name, _ in signed)


def test_a_kept_signing_key_signs_for_its_day_secret_and_region_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The signing key is derived once and kept (aws._signing_key): the same request on the next
    day, with another secret or for another region, still signs as botocore signs it."""
    aws._signing_key.cache_clear()
    headers = {"Host": "runtime.sagemaker.eu-west-1.amazonaws.com"}
    tomorrow = NOW + datetime.timedelta(days=1)
    signatures = set()
    for secret, moment, region in [
        ("test-secret", NOW, "eu-west-1"),
        ("test-secret", NOW, "eu-west-1"),
        ("test-secret", tomorrow, "eu-west-1"),
        ("rotated-secret", tomorrow, "eu-west-1"),
        ("rotated-secret", tomorrow, "us-east-1"),
    ]:
        credentials = Credentials("AKIDTEST", secret)
        signed, expected = _signed_both_ways(monkeypatch, credentials, headers, moment, region)
        assert signed == expected
        signatures.add(dict(signed)[b"authorization"])
    assert len(signatures) == 4  # the repeat signs alike; each change, differently
    assert aws._signing_key.cache_info().hits >= 1  # the repeat's key was the kept one


def test_the_lighter_signer_is_used_only_where_it_signs_as_botocore(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The installed botocore: the probe agrees. A botocore whose signer reads the request
    otherwise (here: headers_to_sign returning what it no longer reads): the probe says no, so
    every request is signed botocore's own way."""
    assert aws._SIGNS_AS_BOTOCORE is True
    assert aws._signs_as_botocore() is True

    def moved_internals(self: object, request: object) -> object:
        raise AttributeError("'_SigningRequest' object has no attribute 'stream_output'")

    monkeypatch.setattr(aws._SigV4, "headers_to_sign", moved_internals)
    assert aws._signs_as_botocore() is False
    monkeypatch.setattr(aws._SigV4, "headers_to_sign", lambda self, request: aws._HeadersToSign())
    assert aws._signs_as_botocore() is False  # signs, but not as botocore does


def _signed_both_ways(
    monkeypatch: pytest.MonkeyPatch,
    credentials: Credentials,
    headers: dict[str, str],
    moment: datetime.datetime,
    region: str = "eu-west-1",
) -> tuple[list[tuple[bytes, bytes]], list[tuple[bytes, bytes]]]:
    """The headers the relay signs `headers` with at `moment`, and botocore's, both sorted and
    as the relay sends them (lower-case names)."""
    monkeypatch.setattr("botocore.auth.get_current_datetime", lambda: moment)
    expected = AWSRequest(method="POST", url=URL, data=BODY, headers=headers)
    SigV4Auth(credentials.get_frozen_credentials(), "sagemaker", region).add_auth(expected)

    access = aws.AwsAccess(region)
    access._credentials = credentials

    async def sign() -> list[tuple[bytes, bytes]]:
        return await access.signed_headers(service="sagemaker", url=URL, body=BODY, headers=headers)

    signed = anyio.run(sign)
    return sorted(signed), sorted(
        (name.lower().encode(), value.encode()) for name, value in expected.headers.items()
    )


def test_a_burst_of_first_calls_finds_the_credentials_and_builds_the_tls_context_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Requests arriving at a cold start, before, during and after the lookups end: one
    credentials lookup and one TLS context, each in one thread, not a worker thread per request
    doing the same work, nor a second lookup for a request that comes as the first one ends
    (before its waiters have taken its result)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    looked: list[str] = []
    built: list[str] = []
    real_lookup = botocore.session.Session.get_credentials
    real_context = aws.tls_context

    def slow_lookup(self: botocore.session.Session) -> object:
        looked.append(threading.current_thread().name)
        time.sleep(0.2)
        return real_lookup(self)

    def slow_context(ca_bundle: str | None) -> object:
        built.append(threading.current_thread().name)
        time.sleep(0.2)
        return real_context(ca_bundle)

    monkeypatch.setattr(botocore.session.Session, "get_credentials", slow_lookup)
    monkeypatch.setattr(aws, "tls_context", slow_context)
    access = aws.AwsAccess("eu-west-1")
    headers = {"Host": "runtime.sagemaker.eu-west-1.amazonaws.com"}

    async def first_call() -> bytes:
        await access.pool(URL)
        signed = await access.signed_headers(
            service="sagemaker", url=URL, body=BODY, headers=headers
        )
        return dict(signed)[b"authorization"]

    async def burst() -> list[bytes]:
        calls = []
        for _ in range(500):  # one a turn, over both lookups and after them
            calls.append(asyncio.ensure_future(first_call()))
            # A busy loop, as with many streams: a lookup ends in the middle of a turn, and the
            # request started in that turn runs before the lookup's waiters resume.
            time.sleep(0.001)
            await asyncio.sleep(0)
        return list(await asyncio.gather(*calls))

    authorizations = anyio.run(burst)
    assert all(
        value.startswith(b"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/") for value in authorizations
    )
    assert len(authorizations) == 500
    # Once each, in a thread of its own (anyio's worker threads have another name).
    assert built == ["tls-context"]
    assert looked == ["credentials"]
