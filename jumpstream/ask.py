"""``python -m jumpstream ask``: send one prompt to a relay and print the answer as it streams.

A deployed function URL uses ``AuthType: AWS_IAM``, so requests are SigV4-signed with whatever
credentials botocore's chain finds; ``--no-sign`` talks to a local relay or a URL without auth.
The answer's text goes to stdout the moment it arrives; everything about the answer (its end,
an error) goes to stderr, so ``ask ... > answer.txt`` captures exactly the text. The exit
status is 1 whenever the answer is not complete: an HTTP error, or a failure mid-stream.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, TextIO

from botocore.credentials import ReadOnlyCredentials

from jumpstream.http_stream import PreparedRequest, StreamingReply, TransportError, send
from jumpstream.reading import (
    ACCEPT,
    Failed,
    Finished,
    ReaderError,
    TextChunk,
    read_answer,
    reader_for,
)
from jumpstream.signing import load_credentials, region_from_url, sign

__all__ = [
    "AskOptions",
    "describe_error",
    "prepare_request",
    "request_body",
    "run_ask",
]

USER_AGENT: Final = "jumpstream-ask/0.1"
EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
_SHOWN_BODY_CHARS: Final = 300


@dataclass(frozen=True, slots=True, kw_only=True)
class AskOptions:
    """One ``ask``: where, what, and how to read the answer."""

    url: str
    prompt: str
    output_format: str = "text"
    max_new_tokens: int | None = None
    temperature: float | None = None
    region: str | None = None
    sign: bool = True
    #: Seconds to connect, and the longest silence tolerated while reading.
    timeout: float = 300.0


class AskError(Exception):
    """A failure to report in one line before exiting with status 1."""


def request_body(
    prompt: str, *, max_new_tokens: int | None = None, temperature: float | None = None
) -> bytes:
    """The relay's request body; parameters the caller did not set are left to the relay."""
    parameters: dict[str, Any] = {}
    if max_new_tokens is not None:
        parameters["max_new_tokens"] = max_new_tokens
    if temperature is not None:
        parameters["temperature"] = temperature
    body: dict[str, Any] = {"inputs": prompt}
    if parameters:
        body["parameters"] = parameters
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


def prepare_request(
    options: AskOptions,
    *,
    credentials_loader: Callable[[], ReadOnlyCredentials | None] = load_credentials,
) -> PreparedRequest:
    """The request to send, signed unless ``options.sign`` is false; AskError if it cannot be."""
    request = PreparedRequest(
        method="POST",
        url=options.url,
        headers={
            "Content-Type": "application/json",
            "Accept": ACCEPT[options.output_format],
            "User-Agent": USER_AGENT,
        },
        body=request_body(
            options.prompt,
            max_new_tokens=options.max_new_tokens,
            temperature=options.temperature,
        ),
    )
    if not options.sign:
        return request
    region = options.region or region_from_url(options.url)
    if region is None:
        raise AskError(
            "cannot tell the function's region from the URL; pass --region "
            "(or --no-sign for a URL without IAM auth)"
        )
    credentials = credentials_loader()
    if credentials is None:
        raise AskError(
            "no AWS credentials found (environment, profile, SSO or role); configure some, "
            "or pass --no-sign for a URL without IAM auth"
        )
    return sign(request, credentials=credentials, region=region)


def describe_error(status: int, reason: str, body: bytes, headers: Any = None) -> str:
    """One line for an HTTP error: the relay's sentence and type, or whatever AWS said."""
    text = body.decode("utf-8", "replace")
    sentence: str | None = None
    kind: str | None = None
    try:
        document = json.loads(text)
    except ValueError:
        document = None
    if isinstance(document, dict):
        if isinstance(document.get("error"), str):
            sentence = document["error"]
            kind = str(document.get("type")) if document.get("type") is not None else None
        else:
            # A function URL's own refusals (403 and so on) say {"Message": "..."}.
            for key in ("Message", "message"):
                if isinstance(document.get(key), str):
                    sentence = document[key]
                    break
    if sentence is None:
        shown = " ".join(text.split())[:_SHOWN_BODY_CHARS]
        sentence = shown or reason or "no message"
    facts = [kind] if kind else []
    facts.append(f"HTTP {status}")
    if headers is not None:
        retry_after = headers.get("Retry-After")
        if retry_after:
            facts.append(f"retry after {retry_after} s")
        request_id = headers.get("X-Request-Id") or headers.get("x-amzn-RequestId")
        if request_id:
            facts.append(f"request id {request_id}")
    return f"{sentence} ({', '.join(facts)})"


def run_ask(
    options: AskOptions,
    *,
    stdout: TextIO,
    stderr: TextIO,
    credentials_loader: Callable[[], ReadOnlyCredentials | None] = load_credentials,
) -> int:
    """Send the prompt and stream the answer; return the exit status."""
    try:
        request = prepare_request(options, credentials_loader=credentials_loader)
        with send(request, timeout=options.timeout) as reply:
            if reply.status >= 400:
                message = describe_error(
                    reply.status, reply.reason, reply.read_error_body(), reply.headers
                )
                raise AskError(message)
            return _stream_answer(reply, options.output_format, stdout=stdout, stderr=stderr)
    except (AskError, TransportError, ReaderError) as error:
        _say(stderr, f"error: {error}")
        return EXIT_FAILED


def _stream_answer(
    reply: StreamingReply, output_format: str, *, stdout: TextIO, stderr: TextIO
) -> int:
    reader = reader_for(output_format)
    ended_with_newline = True
    outcome: Finished | Failed | None = None
    for event in read_answer(reply.chunks(), reader):
        ended_with_newline = _show(event, stdout, ended_with_newline)
        outcome = outcome or _outcome(event)
    if not ended_with_newline and stdout.isatty():
        stdout.write("\n")
        stdout.flush()
    if isinstance(outcome, Failed):
        _say(stderr, f"[stream error] {outcome.message} ({outcome.kind})")
        return EXIT_FAILED
    if outcome is None:
        _say(stderr, "error: the answer ended without saying it was done; it may be incomplete")
        return EXIT_FAILED
    if output_format != "text":
        _say(
            stderr,
            f"[done: finish_reason={outcome.finish_reason}, "
            f"generated_tokens={outcome.generated_tokens}]",
        )
    return EXIT_OK


def _show(event: object, stdout: TextIO, ended_with_newline: bool) -> bool:
    if isinstance(event, TextChunk) and event.text:
        stdout.write(event.text)
        stdout.flush()
        return event.text.endswith("\n")
    return ended_with_newline


def _outcome(event: object) -> Finished | Failed | None:
    return event if isinstance(event, Finished | Failed) else None


def _say(stream: TextIO, line: str) -> None:
    stream.write(line + "\n")
    stream.flush()
