"""A Python client for a jumpstream relay: the answer's text as it streams, and typed errors.

    from jumpstream.client import RelayClient

    with RelayClient("https://ID.lambda-url.eu-west-1.on.aws/") as relay:
        for piece in relay.stream(messages=[{"role": "user", "content": "Hello!"}]):
            print(piece, end="", flush=True)

A function URL's host says it needs SigV4: the client signs for it with botocore's credential
chain (service ``lambda``, the region in the host). A loopback URL (``jumpstream local``) is not
signed unless asked. httpx carries the request, so ``HTTPS_PROXY``, TLS and timeouts behave as
users expect, and httpx-sse reads the relay's server-sent events.

Every failure is a ``RelayError`` carrying ``status`` (None when no HTTP answer came) and
``kind`` (the relay's error type): ``RefusedError`` before the answer began, ``StreamError``
after some text was already yielded, ``ConnectionFailed`` when the relay could not be reached
or read.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import httpx
from botocore.credentials import ReadOnlyCredentials
from httpx_sse import EventSource, SSEError
from streamer import contract

from jumpstream.signing import (
    HOW_TO_GET_CREDENTIALS,
    PreparedRequest,
    credential_source,
    region_from_url,
    sign,
)

__all__ = [
    "ConnectionFailed",
    "Done",
    "RefusedError",
    "RelayClient",
    "RelayError",
    "SigV4",
    "StreamError",
    "Text",
    "auth_for",
    "pause_before_retry",
]

USER_AGENT: Final = "jumpstream-client/0.1"
#: Refusals that say "not now" rather than "no" (a model starting from zero, or busy): the
#: relay's error table says which.
RETRYABLE_KINDS: Final = contract.RETRYABLE_KINDS
#: The longest pause between two tries while waiting.
MAX_PAUSE_SECONDS: Final = 30.0
_SIGNED_HEADERS: Final = ("content-type", "accept")
_SHOWN_BODY_CHARS: Final = 300

CredentialSource = Callable[[], ReadOnlyCredentials]


@dataclass(frozen=True, slots=True)
class Text:
    """A piece of the answer, as the relay sent it."""

    text: str


@dataclass(frozen=True, slots=True)
class Done:
    """The answer is complete; why it ended and how many tokens it took, when TGI said."""

    finish_reason: str | None
    generated_tokens: int | None


class RelayError(Exception):
    """A request that did not give a complete answer."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None,
        kind: str | None,
        retry_after: float | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.kind = kind
        self.retry_after = retry_after
        self.request_id = request_id

    def __str__(self) -> str:
        facts = [self.kind] if self.kind else []
        if self.status is not None and self.status >= 400:
            facts.append(f"HTTP {self.status}")
        if self.retry_after is not None:
            facts.append(f"retry after {self.retry_after:g} s")
        if self.request_id:
            facts.append(f"request id {self.request_id}")
        return f"{self.message} ({', '.join(facts)})"


class RefusedError(RelayError):
    """The relay (or the function URL in front of it) answered with an HTTP error."""


class StreamError(RelayError):
    """The answer failed after it began; the text already yielded is real model output."""


class ConnectionFailed(RelayError):
    """The relay could not be reached, or the connection broke while reading."""


class SigV4(httpx.Auth):
    """httpx authentication that signs each request as a function URL with AWS_IAM checks it."""

    requires_request_body = True

    def __init__(self, *, region: str, credentials: CredentialSource) -> None:
        self._region = region
        self._credentials = credentials

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        prepared = PreparedRequest(
            method=request.method,
            url=str(request.url),
            headers={
                name: request.headers[name] for name in _SIGNED_HEADERS if name in request.headers
            },
            body=request.content,
        )
        signed = sign(prepared, credentials=self._credentials(), region=self._region)
        for name, value in signed.headers.items():
            request.headers[name] = value
        yield request


#: Where `ask` finds the API key of a relay that takes keys (auth "API_KEY"): the environment,
#: not a command-line flag, which shell histories and process lists would keep.
API_KEY_VARIABLE: Final = "JUMPSTREAM_API_KEY"


class BearerKey(httpx.Auth):
    """An API key, sent as OpenAI's clients send theirs: `Authorization: Bearer <key>`."""

    def __init__(self, key: str) -> None:
        self._header = f"Bearer {key}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request


def auth_for(
    url: str,
    *,
    sign: bool | None = None,
    region: str | None = None,
    source_loader: Callable[[], CredentialSource | None] = credential_source,
    api_key: str | None = None,
) -> httpx.Auth | None:
    """How to authenticate to ``url``: its API key when there is one (a relay that takes keys
    does not check SigV4, and both would claim Authorization), else SigV4 or nothing:
    ``sign=None`` signs a function URL only, True always, False never. ValueError says why it
    cannot sign (no region, no credentials)."""
    if api_key:
        return BearerKey(api_key)
    url_region = region_from_url(url)
    if sign is False or (sign is None and url_region is None):
        return None
    signing_region = region or url_region
    if signing_region is None:
        raise ValueError(
            "cannot tell the function's region from the URL; pass --region "
            "(or --no-sign for a URL without IAM auth)"
        )
    source = source_loader()
    if source is None:
        raise ValueError(
            f"no AWS credentials found; {HOW_TO_GET_CREDENTIALS}, "
            "or pass --no-sign for a URL without IAM auth"
        )
    return SigV4(region=signing_region, credentials=source)


class RelayClient:
    """One relay URL; an httpx client reused across requests (its connections kept alive)."""

    def __init__(
        self,
        url: str,
        *,
        auth: httpx.Auth | str | None = "auto",
        timeout: float = 300.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url
        resolved = auth_for(url) if auth == "auto" else auth
        self._client = httpx.Client(
            auth=resolved,  # type: ignore[arg-type]
            timeout=httpx.Timeout(timeout),
            transport=transport,
            headers={"User-Agent": USER_AGENT},
        )

    def __enter__(self) -> RelayClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def stream(
        self,
        *,
        inputs: str | None = None,
        messages: Sequence[Mapping[str, Any]] | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> Iterator[str]:
        """The answer's text, piece by piece; a RelayError if it does not complete."""
        for event in self.events(inputs=inputs, messages=messages, parameters=parameters):
            if isinstance(event, Text):
                yield event.text

    def events(
        self,
        *,
        inputs: str | None = None,
        messages: Sequence[Mapping[str, Any]] | None = None,
        parameters: Mapping[str, Any] | None = None,
        wait: float = 0.0,
        on_wait: Callable[[RefusedError, float], None] | None = None,
    ) -> Iterator[Text | Done]:
        """Text pieces, then one Done; a RelayError instead of Done if the answer failed.

        With ``wait`` seconds, a refusal that means "not now" (a model starting from zero,
        throttling, overload) is tried again after 1, 2, 4 ... s (at most Retry-After, at most
        30 s) until the answer starts or ``wait`` runs out; ``on_wait`` hears of each pause.
        """
        deadline = time.monotonic() + wait
        pause = 1.0
        while True:
            try:
                yield from self._events_once(inputs, messages, parameters)
                return
            except RefusedError as error:
                this_pause = pause_before_retry(error, pause, deadline - time.monotonic())
                if this_pause is None:
                    raise
                if on_wait is not None:
                    on_wait(error, this_pause)
                time.sleep(this_pause)
                pause = min(pause * 2, MAX_PAUSE_SECONDS)

    def _events_once(
        self,
        inputs: str | None,
        messages: Sequence[Mapping[str, Any]] | None,
        parameters: Mapping[str, Any] | None,
    ) -> Iterator[Text | Done]:
        body = request_document(inputs=inputs, messages=messages, parameters=parameters)
        headers = {"Accept": "text/event-stream", "Content-Type": "application/json"}
        content = json.dumps(body, ensure_ascii=False).encode("utf-8")
        try:
            with self._client.stream(
                "POST", self.url, content=content, headers=headers
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    raise refusal(response)
                yield from _answer(EventSource(response))
        except httpx.HTTPError as error:
            raise ConnectionFailed(
                f"the relay at {self.url} could not be reached or read: {_describe(error)}",
                status=None,
                kind="connection",
            ) from error


def pause_before_retry(error: RefusedError, pause: float, left: float) -> float | None:
    """How long to pause before trying again, or None when this refusal is final.

    Only "not now" refusals are retried, while time is left; the pause is the backoff's, but
    never longer than the Retry-After the relay gave or the time left.
    """
    if error.kind not in RETRYABLE_KINDS or left <= 0:
        return None
    return min(pause, error.retry_after or pause, left)


def request_document(
    *,
    inputs: str | None = None,
    messages: Sequence[Mapping[str, Any]] | None = None,
    parameters: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The relay's request body: a prompt or a chat, and only the parameters given."""
    if (inputs is None) == (messages is None):
        raise ValueError("give either inputs (a prompt) or messages (a chat)")
    body: dict[str, Any] = (
        {"inputs": inputs} if inputs is not None else {"messages": list(messages or ())}
    )
    if parameters:
        body["parameters"] = dict(parameters)
    return body


def _answer(source: EventSource) -> Iterator[Text | Done]:
    status = source.response.status_code
    try:
        for event in source.iter_sse():
            data = json.loads(event.data) if event.data else {}
            if event.event == "token":
                yield Text(str(data.get("text", "")))
            elif event.event == "done":
                yield Done(data.get("finish_reason"), data.get("generated_tokens"))
                return
            elif event.event == "error":
                raise StreamError(
                    str(data.get("error", "the answer failed")),
                    status=status,
                    kind=str(data.get("type", "unknown")),
                )
    except (SSEError, ValueError) as error:
        raise StreamError(
            f"the answer was not the relay's event stream: {error}",
            status=status,
            kind="protocol",
        ) from error
    raise StreamError(
        "the answer ended without saying it was done; it may be incomplete",
        status=status,
        kind="incomplete_stream",
    )


def refusal(response: httpx.Response) -> RefusedError:
    """The RefusedError for an HTTP error response (its body already read)."""
    return parse_refusal(
        response.status_code, response.reason_phrase, response.content, response.headers
    )


def parse_refusal(
    status: int, reason: str, body: bytes, headers: Mapping[str, str] | None = None
) -> RefusedError:
    """An HTTP error as a RefusedError: the relay's sentence and type, or whatever AWS said."""
    text = body.decode("utf-8", "replace")
    sentence: str | None = None
    kind: str | None = None
    try:
        document = json.loads(text)
    except ValueError:
        document = None
    if isinstance(document, dict):
        error = document.get("error")
        if isinstance(error, str):
            sentence = error
            kind = str(document["type"]) if document.get("type") is not None else None
        elif isinstance(error, dict) and isinstance(error.get("message"), str):
            # OpenAI's error object, as the relay's /v1 routes answer: the relay's type is code.
            sentence = error["message"]
            kind = str(error["code"]) if error.get("code") is not None else None
        else:
            # A function URL's own refusals (403 and so on) say {"Message": "..."}.
            for key in ("Message", "message"):
                if isinstance(document.get(key), str):
                    sentence = document[key]
                    break
    if sentence is None:
        sentence = " ".join(text.split())[:_SHOWN_BODY_CHARS] or reason or "no message"
    headers = headers or {}
    retry_after = headers.get("Retry-After")
    return RefusedError(
        sentence,
        status=status,
        kind=kind,
        retry_after=float(retry_after) if retry_after and retry_after.isdigit() else None,
        request_id=headers.get("X-Request-Id") or headers.get("x-amzn-RequestId"),
    )


def _describe(error: httpx.HTTPError) -> str:
    return str(error) or type(error).__name__
