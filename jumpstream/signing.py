"""SigV4 for a Lambda function URL with ``AuthType: AWS_IAM``.

The URL's service name is ``lambda`` and its region is the function's, which the URL's host
spells out (``<id>.lambda-url.<region>.on.aws``). The body's SHA-256 goes in
``x-amz-content-sha256`` and is signed: CloudFront's origin access control in front of a URL
requires that header, and a signed hash means a proxy cannot swap the prompt.

`python -m jumpstream.signing` only checks that botocore's chain finds credentials (what
`make credentials` runs before bootstrap, deploy and destroy).
"""

from __future__ import annotations

import hashlib
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials

__all__ = [
    "HOW_TO_GET_CREDENTIALS",
    "SERVICE",
    "PreparedRequest",
    "canonical_host",
    "credential_source",
    "region_from_url",
    "sign",
]

SERVICE: Final = "lambda"


@dataclass(frozen=True, slots=True, kw_only=True)
class PreparedRequest:
    """A request exactly as it goes on the wire; signing returns a new one."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes


_FUNCTION_URL_HOST: Final = re.compile(
    r"[a-z0-9]+\.lambda-url\.(?P<region>[a-z]{2,}(?:-[a-z0-9]+)+)\.on\.aws", re.IGNORECASE
)
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


def region_from_url(url: str) -> str | None:
    """The region in a function URL's host, or None for any other host."""
    host = urlsplit(url).hostname or ""
    match = _FUNCTION_URL_HOST.fullmatch(host)
    return match["region"].lower() if match else None


def canonical_host(url: str) -> str:
    """The Host header value SigV4 signs: the port only when it is not the scheme's default."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is None or parts.port == _DEFAULT_PORTS.get(parts.scheme):
        return host
    return f"{host}:{parts.port}"


#: How to give the command line (and CDK) AWS credentials, for every message that found none.
HOW_TO_GET_CREDENTIALS = (
    "configure some: `aws configure sso` then `export AWS_PROFILE=NAME`, or set "
    "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN)"
)


def credential_source() -> Callable[[], ReadOnlyCredentials] | None:
    """A callable giving current credentials, refreshed as botocore refreshes them (SSO, roles).

    A long-running signer (the proxy) calls it per request: temporary credentials expire, and
    botocore renews them only when asked.
    """
    import botocore.session

    credentials = botocore.session.Session().get_credentials()
    return None if credentials is None else credentials.get_frozen_credentials


def sign(
    request: PreparedRequest, *, credentials: ReadOnlyCredentials, region: str
) -> PreparedRequest:
    """``request`` with Host, x-amz-content-sha256, X-Amz-Date, the token, and Authorization."""
    headers = {
        **request.headers,
        "Host": canonical_host(request.url),
        "x-amz-content-sha256": hashlib.sha256(request.body).hexdigest(),
    }
    aws_request = AWSRequest(
        method=request.method, url=request.url, data=request.body, headers=headers
    )
    SigV4Auth(credentials, SERVICE, region).add_auth(aws_request)
    return PreparedRequest(
        method=request.method,
        url=request.url,
        headers=dict(aws_request.headers.items()),
        body=request.body,
    )


def main() -> int:
    """`python -m jumpstream.signing`: exit 0 if botocore's chain finds credentials, else say how
    to give some (what `make deploy` checks before CDK fails to resolve an account)."""
    if credential_source() is not None:
        return 0
    print(f"no AWS credentials found; {HOW_TO_GET_CREDENTIALS}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
