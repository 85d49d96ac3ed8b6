"""A stand-in for a function URL with AuthType AWS_IAM, in front of the real local relay.

It refuses (403, as Lambda does) every request whose SigV4 signature does not verify against the
known test credentials, by the independent algorithm in sigv4_reference.py, and forwards the rest
to the relay, passing the answer back piece by piece. So a client tested against it has signed
exactly what a deployed URL checks, and streams exactly what the relay streams.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx
from botocore.credentials import ReadOnlyCredentials
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from jumpstream.proxy import stream_body
from jumpstream.signing import PreparedRequest
from tests.serving import serving
from tests.sigv4_reference import problem_with

CREDENTIALS = ReadOnlyCredentials("ASIAEXAMPLESTANDIN", "stand/in+secret", "stand-in-session")
_HOP_BY_HOP = frozenset({"connection", "transfer-encoding", "content-length", "keep-alive"})


@dataclass
class StandInLog:
    """What the stand-in saw: the requests it let through and why it refused others."""

    accepted: list[PreparedRequest] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


def standin_app(target: str, log: StandInLog) -> Starlette:
    client = httpx.AsyncClient(timeout=30.0)

    async def handle(request: Request) -> Response:
        body = await request.body()
        url = f"http://{request.headers['host']}{request.url.path}"
        if request.url.query:
            url += "?" + request.url.query
        received = PreparedRequest(
            method=request.method, url=url, headers=dict(request.headers), body=body
        )
        problem = problem_with(
            received,
            access_key=CREDENTIALS.access_key,
            secret=CREDENTIALS.secret_key,
            token=CREDENTIALS.token,
        )
        if problem is not None:
            log.refused.append(problem)
            return JSONResponse({"Message": "Forbidden"}, status_code=403)
        log.accepted.append(received)
        forwarded = {
            name: value
            for name, value in request.headers.items()
            if name in ("content-type", "accept")
        }
        upstream = await client.send(
            client.build_request(
                request.method,
                target.rstrip("/") + request.url.path,
                headers=forwarded,
                content=body,
            ),
            stream=True,
        )
        headers = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP}
        return StreamingResponse(
            stream_body(upstream), status_code=upstream.status_code, headers=headers
        )

    return Starlette(routes=[Route("/{path:path}", handle, methods=["GET", "POST"])])


@contextmanager
def function_url_standin(target: str) -> Iterator[tuple[str, StandInLog]]:
    """The stand-in on a free loopback port: its base URL and its log."""
    log = StandInLog()
    with serving(standin_app(target, log)) as url:
        yield url + "/", log
