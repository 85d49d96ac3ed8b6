"""What every call the function makes to AWS shares: credentials, connections, signing.

The function calls SageMaker (upstream.py) and, with API keys, DynamoDB (dynamodb.py), both from
the event loop through the relay's HTTP client (connection_pool.py), with botocore doing what it
is for: `botocore.session` finds the credentials (the usual chain) and each service's endpoint
URL (which honours `AWS_ENDPOINT_URL_<SERVICE>`, `AWS_ENDPOINT_URL` and the config file) and
service model, and `SigV4Auth` signs each request. One `AwsAccess` per process holds them, so
both services share one credentials cache, one TLS context and one pool of connections per
origin.

Nothing is looked up at start: credentials are found on the first call, in a thread of its own (it
may call a credentials endpoint), so none can end up in a SnapStart snapshot; `after_restore`
forgets them and every connection. Finding them and building the TLS context each run in one
thread however many requests wait for them (shared_call.py); a refresh is botocore's, whose own lock
lets one thread refresh while the others sign with keys still valid.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ssl
from typing import Any, Final

import anyio
import anyio.to_thread
from anyio.lowlevel import RunVar
from botocore.auth import SIGNED_HEADERS_BLACKLIST, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials, RefreshableCredentials
from botocore.exceptions import NoCredentialsError
from starlette.datastructures import MutableHeaders

from .connection_pool import ConnectionPool
from .http_types import Origin, Request, Response, split_url
from .network import AsyncioBackend, environment_proxy, tls_context
from .shared_call import SharedCall

__all__ = ["KEEPALIVE_SECONDS", "AwsAccess", "ServiceEndpoint"]

# Idle connections to AWS are kept this long for the next request, then closed by the pool
# (connection_pool.py). SageMaker does not publish its idle timeout; load balancers commonly
# close idle connections after 60 s (ALB's default) and servers often sooner, so this stays well
# under it: the function drops a connection before the far side does, and the rare one closed
# as a request left it is sent again (connection_pool.py). A request after a longer pause pays
# for a new connection (a TLS handshake).
KEEPALIVE_SECONDS: Final = 20.0


class ServiceEndpoint:
    """Where one service is, and its botocore model (for serializing and parsing)."""

    def __init__(self, url: str, model: Any) -> None:
        self.url = url.rstrip("/")
        self.model = model


class AwsAccess:
    """Credentials, connections and signing for the function's calls to AWS in one region."""

    def __init__(self, region: str) -> None:
        import botocore.session

        self.region = region
        self._session = botocore.session.get_session()
        self._credentials: Any = None
        self._finding_credentials = SharedCall(self._found_credentials, name="credentials")
        self._ssl_context: ssl.SSLContext | None = None
        self._building_tls_context = SharedCall(self._tls_context, name="tls-context")
        # One connection pool per event loop and origin: a connection belongs to the loop that
        # opened it, and a proxy (NO_PROXY) is chosen per origin. (anyio keys a RunVar's value by
        # the object, not its name.)
        self._pools: RunVar[dict[Origin, ConnectionPool]] = RunVar("jumpstream_pools")

    def endpoint(self, service: str) -> ServiceEndpoint:
        """The service's endpoint URL and model, from a client made only for them: it never sends
        a request. Placeholder keys keep botocore from looking for credentials."""
        client = self._session.create_client(
            service,
            region_name=self.region,
            aws_access_key_id="unused",
            aws_secret_access_key="unused",  # noqa: S106 (a placeholder: this client signs nothing)
        )
        return ServiceEndpoint(str(client.meta.endpoint_url), client.meta.service_model)

    async def pool(self, url: str) -> ConnectionPool:
        """The event loop's connection pool for `url`'s origin, made on first use.

        No cap on connections: each concurrent stream holds one for as long as it runs, and
        every one goes back to the pool after a complete answer, however many run (the server's
        connection limit bounds them; a request takes an idle connection before it opens one,
        so there are never more than the most requests that ran at once). The TLS
        context (~20 ms to load the CA bundle) is built once, in a thread of its own, so the start
        does not pay for it and the event loop never waits on it. A proxy in the environment
        (HTTPS_PROXY, NO_PROXY, ...) is used as botocore would use it.
        """
        pools = self._loop_pools()
        origin, _ = _split(url)
        pool = pools.get(origin)
        if pool is not None:
            return pool
        # Plain http (an emulator): nothing to verify, no context needed.
        if url.startswith("https:") and self._ssl_context is None:
            await self._building_tls_context()
        pool = pools.get(origin)  # another request may have made it meanwhile
        if pool is None:
            pool = pools[origin] = ConnectionPool(
                ssl_context=self._ssl_context,
                keepalive_expiry=KEEPALIVE_SECONDS,
                network_backend=AsyncioBackend(),
                proxy=environment_proxy(url),
            )
        return pool

    def _loop_pools(self) -> dict[Origin, ConnectionPool]:
        try:
            return self._pools.get()
        except LookupError:
            pools: dict[Origin, ConnectionPool] = {}
            self._pools.set(pools)
            return pools

    async def post(
        self,
        *,
        service: str,
        url: str,
        body: bytes,
        headers: dict[str, str],
        timeouts: dict[str, float | None],
    ) -> Response:
        """POST `body` to `url` for `service`, signed, through the pool for its origin;
        `headers` hold Host as it will be sent. Returns once the answer's head arrived."""
        signed = await self.signed_headers(service=service, url=url, body=body, headers=headers)
        signed.append((b"content-length", b"%d" % len(body)))
        origin, target = _split(url)
        request = Request(b"POST", origin, target, headers=signed, content=body, timeouts=timeouts)
        return await (await self.pool(url)).handle_async_request(request)

    async def signed_headers(
        self, *, service: str, url: str, body: bytes, headers: dict[str, str]
    ) -> list[tuple[bytes, bytes]]:
        """`headers` plus SigV4's for a POST of `body` to `url` (the body hashed), as the HTTP
        client takes them (names in lower case). Host must be among `headers`, as it will be
        sent: the HTTP client sends only the headers it is given."""
        credentials = await self._frozen_credentials()
        sign = _signed_lightly if _SIGNS_AS_BOTOCORE else _signed_by_botocore
        return sign(credentials, service, self.region, url, body, headers)

    async def _frozen_credentials(self) -> Any:
        """The current credentials; finding or refreshing them may call the network (a
        container credentials endpoint, SSO), so that happens off the event loop.

        A refresh is left to botocore, in a worker thread per request while one is due: in the
        advisory window its lock lets one thread refresh and hands the others the keys still
        valid at once, which a call shared by all would make wait for the network."""
        credentials = self._credentials
        if credentials is None:
            credentials = await self._finding_credentials()
            if credentials is None:
                raise NoCredentialsError
        if isinstance(credentials, RefreshableCredentials) and credentials.refresh_needed():
            return await anyio.to_thread.run_sync(credentials.get_frozen_credentials)
        return credentials.get_frozen_credentials()

    def _found_credentials(self) -> Any:
        """In the lookup's thread: the session's credentials (the usual chain), kept before
        the waiters hear (so a request that comes meanwhile does not look again), or None."""
        credentials = self._session.get_credentials()
        if credentials is not None:
            self._credentials = credentials
        return credentials

    def _tls_context(self) -> None:
        """In its thread: the TLS context with the session's CA bundle (~20 ms to load), kept
        before the waiters hear."""
        self._ssl_context = tls_context(self._session.get_config_variable("ca_bundle"))

    async def after_restore(self) -> None:
        """Forget the credentials (and signing keys) and the connections a SnapStart snapshot
        may hold.

        A snapshot is taken once, at publish time, and restored for days: credentials found
        then would be another sandbox's (and expire), and a connection open then is gone. The
        next call finds both again: a fresh botocore session resolves the credentials the
        restored environment has, and the event loop gets new pools. The TLS context and the
        endpoints are plain data and stay.
        """
        import botocore.session

        try:
            pools = list(self._pools.get().values())
        except LookupError:
            pools = []
        self._pools = RunVar("jumpstream_pools")  # a new RunVar is empty
        self._session = botocore.session.get_session()
        self._credentials = None
        _signing_key.cache_clear()
        with anyio.CancelScope(shield=True):
            for pool in pools:
                await pool.aclose()


class _SigningRequest:
    """What botocore's SigV4Auth reads and writes of a request, and no more: `method`, `url`,
    `params`, `body`, `context` and `headers` (looked up, set, deleted, listed).

    botocore's own AWSRequest keeps its headers in an `email.message.Message` (HTTPHeaders),
    whose every read and write parses and checks the header; with SigV4's two passes over the
    headers, that was a third of a signature's cost. Starlette's headers are a list of byte
    pairs, looked up without case, as the HTTP client sends them.
    """

    __slots__ = ("body", "context", "headers", "method", "params", "url")

    def __init__(self, url: str, body: bytes, headers: MutableHeaders) -> None:
        self.method = "POST"
        self.url = url
        self.body = body
        self.headers = headers
        self.params: dict[str, str] = {}
        self.context: dict[str, Any] = {}


class _HeadersToSign(dict[str, list[str]]):
    """The headers SigV4 signs, by lower-case name, as botocore's HTTPHeaders offers them."""

    def get_all(self, name: str) -> list[str]:
        return self[name]


class _SigV4(SigV4Auth):
    """botocore's SigV4, with the headers to sign in a dict rather than in an HTTPHeaders
    (see `_SigningRequest`) and the signing key kept for the day (`_signing_key`); the canonical
    request, the string to sign and the signature's HMAC are botocore's. Used where it signs as
    botocore does (`_signs_as_botocore`); tests/streamer/test_aws.py holds it to botocore's own
    signing of an AWSRequest."""

    def headers_to_sign(self, request: Any) -> Any:
        # Host is always among them (see `signed_headers`): botocore's fallback to the URL's
        # host is not needed.
        headers = _HeadersToSign()
        for name, value in request.headers.items():  # names in lower case already
            if name not in SIGNED_HEADERS_BLACKLIST:
                headers.setdefault(name, []).append(value)
        return headers

    def signature(self, string_to_sign: str, request: Any) -> str:
        """botocore's signature, with the signing key derived once a day (`_signing_key`)."""
        day = request.context["timestamp"][0:8]
        key = _signing_key(self.credentials.secret_key, day, self._region_name, self._service_name)
        return str(self._sign(key, string_to_sign, hex=True))


@functools.lru_cache(maxsize=4)
def _signing_key(secret: str, day: str, region: str, service: str) -> bytes:
    """SigV4's signing key, as botocore's `signature` derives it for every request: four HMACs
    that change only with the day, the secret, the region and the service."""
    key = f"AWS4{secret}".encode()
    for part in (day, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def _signed_lightly(
    credentials: Any, service: str, region: str, url: str, body: bytes, headers: dict[str, str]
) -> list[tuple[bytes, bytes]]:
    """`headers` and SigV4's, signed by `_SigV4` on a `_SigningRequest`."""
    request = _SigningRequest(url, body, MutableHeaders(headers=headers))
    _SigV4(credentials, service, region).add_auth(request)
    return list(request.headers.raw)


def _signed_by_botocore(
    credentials: Any, service: str, region: str, url: str, body: bytes, headers: dict[str, str]
) -> list[tuple[bytes, bytes]]:
    """`headers` and SigV4's, signed by botocore's own `SigV4Auth` on an `AWSRequest`, named in
    lower case as `_signed_lightly` names them."""
    request = AWSRequest(method="POST", url=url, data=body, headers=headers)
    SigV4Auth(credentials, service, region).add_auth(request)
    return [
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in request.headers.items()
    ]


def _signs_as_botocore() -> bool:
    """`_signed_lightly` gives botocore's own headers for a probe request (signed both ways in
    the same second). The Lambda runtime ships its own botocore, which the asset does not pin:
    where its signer reads a request otherwise, or its internals moved, every request is signed
    botocore's own way instead (slower, the same headers). One probe, at import: no credentials
    (the probe's are made up), nothing kept but a made-up key in `_signing_key`'s cache."""
    credentials = ReadOnlyCredentials("AKIDPROBE", "probe-secret", "probe-token")
    url = "https://runtime.sagemaker.us-east-1.amazonaws.com/probe"
    headers = {"Host": "runtime.sagemaker.us-east-1.amazonaws.com", "X-Probe": " a  b "}
    for _ in range(2):  # a second may turn between the two signatures: then once more
        try:
            ours = _signed_lightly(credentials, "sagemaker", "us-east-1", url, b"{}", headers)
            theirs = _signed_by_botocore(credentials, "sagemaker", "us-east-1", url, b"{}", headers)
        except Exception:
            return False
        if dict(ours).get(b"x-amz-date") == dict(theirs).get(b"x-amz-date"):
            return sorted(ours) == sorted(theirs)
    return False


_SIGNS_AS_BOTOCORE: Final = _signs_as_botocore()


@functools.lru_cache(maxsize=16)
def _split(url: str) -> tuple[Origin, bytes]:
    """`url`'s origin (its pool's key) and target, parsed once per URL (a function calls one
    or two)."""
    return split_url(url)
