"""http_types.py: a URL's origin, request target and Host header, as the relay sends them."""

from __future__ import annotations

import pytest
from streamer.http_types import Origin, UnsupportedProtocol, host_header, split_url


@pytest.mark.parametrize(
    ("url", "origin", "target", "host"),
    [
        (
            "https://runtime.sagemaker.us-east-1.amazonaws.com/endpoints/e/invocations",
            Origin(b"https", b"runtime.sagemaker.us-east-1.amazonaws.com", 443),
            b"/endpoints/e/invocations",
            "runtime.sagemaker.us-east-1.amazonaws.com",
        ),
        # The default port written out is still the default: Host leaves it out.
        ("https://h.example:443/", Origin(b"https", b"h.example", 443), b"/", "h.example"),
        ("http://127.0.0.1:8080", Origin(b"http", b"127.0.0.1", 8080), b"/", "127.0.0.1:8080"),
        ("http://[::1]:9/a?b=c#d", Origin(b"http", b"::1", 9), b"/a?b=c", "[::1]:9"),
        # Scheme and host in lower case, as urllib (and httpcore) read them.
        (
            "HTTPS://Dynamodb.Example/",
            Origin(b"https", b"dynamodb.example", 443),
            b"/",
            "dynamodb.example",
        ),
    ],
)
def test_a_url_splits_into_origin_target_and_host(
    url: str, origin: Origin, target: bytes, host: str
) -> None:
    assert split_url(url) == (origin, target)
    assert host_header(url) == host


def test_only_http_and_https_are_spoken() -> None:
    with pytest.raises(UnsupportedProtocol):
        split_url("ftp://example.com/")
