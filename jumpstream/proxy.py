"""``python -m jumpstream proxy``: a deployed function URL on 127.0.0.1, signed for every caller.

A function URL with ``AuthType: AWS_IAM`` takes only SigV4-signed requests, and the tools people
build with (the ``openai`` package, LangChain, chat UIs, editor plugins) cannot sign. The proxy
listens on loopback only, signs each request with the user's own AWS credentials (botocore's
chain, refreshed as it refreshes them; service ``lambda``; the body's SHA-256 and the session
token signed), and passes the answer back piece by piece as it arrives, so
``OPENAI_BASE_URL=http://127.0.0.1:PORT/v1`` is all a tool needs.

httpx carries the upstream request, so ``HTTPS_PROXY``, TLS and timeouts behave as users expect.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Final, TextIO
from urllib.parse import urlsplit

import anyio
import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from jumpstream.client import (
    MAX_PAUSE_SECONDS,
    CredentialSource,
    SigV4,
    parse_refusal,
    pause_before_retry,
)
from jumpstream.signing import HOW_TO_GET_CREDENTIALS, credential_source, region_from_url

__all__ = ["ProxyError", "ProxyOptions", "create_proxy_app", "run_proxy", "stream_body"]

LOOPBACK: Final = "127.0.0.1"
DEFAULT_PORT: Final = 8787
#: A function URL takes request bodies of at most 6 MB.
MAX_BODY_BYTES: Final = 6 * 1024 * 1024
# What a caller's request may carry upstream. Its Authorization (the openai package always sends
# a bearer key) must not: SigV4 puts its own there.
_FORWARDED_REQUEST_HEADERS: Final = ("content-type", "accept", "user-agent")
# Hop-by-hop headers, and the length of a body that is passed on in pieces.
_DROPPED_RESPONSE_HEADERS: Final = frozenset(
    {
        "connection",
        "keep-alive",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "content-length",
        "proxy-authenticate",
    }
)
_METHODS: Final = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]


class ProxyError(Exception):
    """A reason the proxy cannot start, said in one line."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ProxyOptions:
    """Where to forward, whether and how to sign, and where to listen."""

    url: str
    port: int = DEFAULT_PORT
    region: str | None = None
    sign: bool = True
    #: Seconds to connect, and the longest silence tolerated between two pieces of an answer.
    timeout: float = 900.0
    #: Seconds to keep retrying a "not now" refusal (a model starting from zero, throttling)
    #: before answering the caller with it.
    wait: float = 0.0


def resolve_signing(
    options: ProxyOptions,
    *,
    source_loader: Callable[[], CredentialSource | None] = credential_source,
) -> tuple[CredentialSource, str] | None:
    """The credentials and region to sign with, or None for ``--no-sign``; ProxyError if unable."""
    if not options.sign:
        return None
    region = options.region or region_from_url(options.url)
    if region is None:
        raise ProxyError(
            "cannot tell the function's region from the URL; pass --region "
            "(or --no-sign for a URL without IAM auth)"
        )
    source = source_loader()
    if source is None:
        raise ProxyError(
            f"no AWS credentials found; {HOW_TO_GET_CREDENTIALS}, "
            "or pass --no-sign for a URL without IAM auth"
        )
    return source, region


def create_proxy_app(
    options: ProxyOptions,
    *,
    signing: tuple[CredentialSource, str] | None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Starlette:
    """The proxy's ASGI app: every path and method forwarded to ``options.url``."""
    base = _base_url(options.url)
    timeout = httpx.Timeout(options.timeout, connect=min(options.timeout, 10.0))
    # botocore refreshes temporary credentials inside the signer, rarely (about hourly), and
    # briefly blocks the loop when it does: a fair price for one signing path for every client.
    auth = None if signing is None else SigV4(region=signing[1], credentials=signing[0])
    client = httpx.AsyncClient(
        auth=auth, timeout=timeout, transport=transport, follow_redirects=False
    )

    async def forward(request: Request) -> Response:
        body = await _read_body(request)
        if body is None:
            return _error(request, 413, "body_too_large", "The request body is over 6 MB.")
        url = base + request.url.path.lstrip("/")
        if request.url.query:
            url += "?" + request.url.query
        headers = {
            name: request.headers[name]
            for name in _FORWARDED_REQUEST_HEADERS
            if name in request.headers
        }
        deadline = time.monotonic() + options.wait
        pause = 1.0
        while True:
            # Built anew each time: the signature's date must be fresh.
            upstream_request = client.build_request(
                request.method, url, headers=headers, content=body
            )
            try:
                upstream = await client.send(upstream_request, stream=True)
            except httpx.TimeoutException:
                return _error(request, 504, "upstream_timeout", f"{base} did not answer in time.")
            except httpx.HTTPError as error:
                return _error(request, 502, "upstream_error", f"cannot reach {base}: {error}")
            if options.wait <= 0 or upstream.status_code not in (429, 503):
                break
            content = await upstream.aread()
            await upstream.aclose()
            refused = parse_refusal(
                upstream.status_code, upstream.reason_phrase, content, upstream.headers
            )
            this_pause = pause_before_retry(refused, pause, deadline - time.monotonic())
            if this_pause is None:
                return Response(
                    content,
                    status_code=upstream.status_code,
                    headers=_passed_on(upstream.headers),
                )
            await anyio.sleep(this_pause)
            pause = min(pause * 2, MAX_PAUSE_SECONDS)
        return StreamingResponse(
            stream_body(upstream),
            status_code=upstream.status_code,
            headers=_passed_on(upstream.headers),
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with client:
            yield

    return Starlette(routes=[Route("/{path:path}", forward, methods=_METHODS)], lifespan=lifespan)


def _passed_on(headers: httpx.Headers) -> dict[str, str]:
    return {
        name: value
        for name, value in headers.items()
        if name.lower() not in _DROPPED_RESPONSE_HEADERS
    }


async def stream_body(upstream: httpx.Response) -> AsyncIterator[bytes]:
    """The upstream body as it arrives; the upstream is closed however the caller's side ends."""
    try:
        async for piece in upstream.aiter_raw():
            yield piece
    finally:
        with anyio.CancelScope(shield=True):
            await upstream.aclose()


async def _read_body(request: Request) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _error(request: Request, status: int, kind: str, message: str) -> Response:
    """The proxy's own refusals, in the shape the caller's path speaks: OpenAI's under /v1."""
    if request.url.path.startswith("/v1/"):
        error_type = "invalid_request_error" if status < 500 else "server_error"
        body: dict[str, object] = {
            "error": {"message": message, "type": error_type, "param": None, "code": kind}
        }
    else:
        body = {"error": message, "type": kind}
    return JSONResponse(body, status_code=status)


def _base_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ProxyError(f"the URL must start with https:// or http:// (got {url!r})")
    if parts.query or parts.fragment:
        raise ProxyError(f"the URL must not have a query or fragment (got {url!r})")
    path = parts.path if parts.path.endswith("/") else parts.path + "/"
    return f"{parts.scheme}://{parts.netloc}{path}"


def listen_socket(port: int) -> socket.socket:
    """The loopback socket, bound here so a taken port is one line, not a server's traceback.

    Created with IPPROTO_TCP so asyncio sets TCP_NODELAY on every accepted connection: without
    it a piece of an answer can wait for the client's delayed ACK.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((LOOPBACK, port))
    except OSError as error:
        sock.close()
        raise ProxyError(f"cannot listen on {LOOPBACK} port {port}: {error.strerror}") from None
    sock.listen(128)
    return sock


def run_proxy(
    options: ProxyOptions,
    *,
    stdout: TextIO,
    stderr: TextIO,
    source_loader: Callable[[], CredentialSource | None] = credential_source,
) -> int:
    """Serve until interrupted; exit status 2 with one line when the proxy cannot start."""
    import uvicorn

    try:
        signing = resolve_signing(options, source_loader=source_loader)
        app = create_proxy_app(options, signing=signing)
        sock = listen_socket(options.port)
    except ProxyError as error:
        stderr.write(f"jumpstream proxy: {error}\n")
        return 2
    listen = f"http://{LOOPBACK}:{sock.getsockname()[1]}"
    how = "unsigned" if signing is None else f"signed for lambda in {signing[1]}"
    stdout.write(
        f"jumpstream proxy: {listen} -> {_base_url(options.url)} ({how})\n"
        f"  OpenAI tools: OPENAI_BASE_URL={listen}/v1 OPENAI_API_KEY=unused\n"
    )
    stdout.flush()
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    uvicorn.Server(config).run(sockets=[sock])
    return 0
