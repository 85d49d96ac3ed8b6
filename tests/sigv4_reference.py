"""SigV4 recomputed from AWS's published algorithm, to check what jumpstream signs.

botocore verifies nothing offline, so the signature is recomputed here from the General
Reference's steps (canonical request, string to sign, derived key) using only hashlib and hmac,
from the headers a request carries. Any header changed after signing, or not signed, shows up.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from urllib.parse import urlsplit

from jumpstream.signing import PreparedRequest

AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[a-z0-9-]+)/"
    r"(?P<service>[a-z]+)/aws4_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), "
    r"Signature=(?P<signature>[0-9a-f]{64})"
)


def lower(headers: dict[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def expected_signature(request: PreparedRequest, secret: str, signed: list[str]) -> str:
    """SigV4 from the AWS General Reference, written out step by step."""
    headers = lower(dict(request.headers))
    amz_date = headers["x-amz-date"]
    date, region, service = scope_of(headers["authorization"])
    parts = urlsplit(request.url)
    canonical_headers = "".join(f"{name}:{' '.join(headers[name].split())}\n" for name in signed)
    canonical_request = "\n".join(
        [
            request.method,
            parts.path or "/",
            parts.query,
            canonical_headers,
            ";".join(signed),
            hashlib.sha256(request.body).hexdigest(),
        ]
    )
    scope = f"{date}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            amz_date,
            scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def scope_of(authorization: str) -> tuple[str, str, str]:
    match = AUTHORIZATION.fullmatch(authorization)
    assert match is not None, authorization
    return match["date"], match["region"], match["service"]


def problem_with(
    request: PreparedRequest, *, access_key: str, secret: str, token: str | None
) -> str | None:
    """Why a function URL with AWS_IAM would refuse `request`, or None when it is well signed."""
    headers = lower(dict(request.headers))
    match = AUTHORIZATION.fullmatch(headers.get("authorization", ""))
    if match is None:
        return "no SigV4 Authorization header"
    if match["key"] != access_key or match["service"] != "lambda":
        return f"signed by {match['key']} for {match['service']}"
    if headers.get("x-amz-content-sha256") != hashlib.sha256(request.body).hexdigest():
        return "the body's SHA-256 is missing or wrong"
    if token is not None and headers.get("x-amz-security-token") != token:
        return "the session token is missing"
    signed = match["signed"].split(";")
    for required in ("host", "x-amz-content-sha256", "x-amz-date"):
        if required not in signed:
            return f"{required} is not signed"
    if token is not None and "x-amz-security-token" not in signed:
        return "the session token is not signed"
    if not hmac.compare_digest(match["signature"], expected_signature(request, secret, signed)):
        return "the signature does not match"
    return None
