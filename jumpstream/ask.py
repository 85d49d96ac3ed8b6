"""``python -m jumpstream ask``: send one prompt to a relay and print the answer as it streams.

A deployed function URL uses ``AuthType: AWS_IAM``, so a function URL is SigV4-signed with
whatever credentials botocore's chain finds; a loopback URL (``jumpstream local``) is not, unless
``--sign`` asks; ``--no-sign`` never signs. ``--env NAME`` finds the URL in the environment's
relay stack. ``--chat`` sends the prompt as a user message, laid out by the relay in the
model's own format. The answer's text goes to stdout the moment it arrives; everything about the
answer (an error) goes to stderr, so ``ask ... > answer.txt`` captures exactly the text. The
exit status is 1 whenever the answer is not complete: an HTTP error, or a failure mid-stream.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, TextIO

from jumpstream.client import (
    API_KEY_VARIABLE,
    CredentialSource,
    RelayClient,
    RelayError,
    StreamError,
    Text,
    auth_for,
    parse_refusal,
)
from jumpstream.signing import credential_source

__all__ = [
    "AskOptions",
    "describe_error",
    "request_body",
    "run_ask",
]

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class AskOptions:
    """One ``ask``: where, what, and whether to sign."""

    url: str
    prompt: str
    #: Send the prompt as a user message (with `system` before it) instead of as `inputs`.
    chat: bool = False
    system: str | None = None
    max_new_tokens: int | None = None
    temperature: float | None = None
    region: str | None = None
    #: None: sign a function URL, not a loopback one; True: always; False: never.
    sign: bool | None = None
    #: Seconds to connect, and the longest silence tolerated while reading.
    timeout: float = 300.0
    #: Seconds to keep trying while the model is starting (or busy) before the answer starts.
    wait: float = 0.0
    #: The key for a relay that takes API keys (then nothing is signed).
    api_key: str | None = None


def request_body(
    prompt: str, *, max_new_tokens: int | None = None, temperature: float | None = None
) -> bytes:
    """The relay's request body; parameters the caller did not set are left to the relay."""
    body: dict[str, Any] = {"inputs": prompt}
    parameters = _parameters(max_new_tokens=max_new_tokens, temperature=temperature)
    if parameters:
        body["parameters"] = parameters
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


def _parameters(*, max_new_tokens: int | None, temperature: float | None) -> dict[str, Any]:
    parameters: dict[str, Any] = {}
    if max_new_tokens is not None:
        parameters["max_new_tokens"] = max_new_tokens
    if temperature is not None:
        parameters["temperature"] = temperature
    return parameters


def describe_error(status: int, reason: str, body: bytes, headers: Any = None) -> str:
    """One line for an HTTP error: the relay's sentence and type, or whatever AWS said."""
    return str(parse_refusal(status, reason, body, headers))


def run_ask(
    options: AskOptions,
    *,
    stdout: TextIO,
    stderr: TextIO,
    source_loader: Callable[[], CredentialSource | None] = credential_source,
) -> int:
    """Send the prompt and stream the answer; return the exit status."""
    parameters = _parameters(max_new_tokens=options.max_new_tokens, temperature=options.temperature)
    if options.chat:
        messages = [{"role": "user", "content": options.prompt}]
        if options.system:
            messages.insert(0, {"role": "system", "content": options.system})
        request: dict[str, Any] = {"messages": messages}
    else:
        request = {"inputs": options.prompt}
    try:
        auth = auth_for(
            options.url,
            sign=options.sign,
            region=options.region,
            source_loader=source_loader,
            api_key=options.api_key,
        )
    except ValueError as error:
        _say(stderr, f"error: {error}")
        return EXIT_FAILED
    ended_with_newline = True
    try:
        with RelayClient(options.url, auth=auth, timeout=options.timeout) as client:
            events = client.events(
                **request,
                parameters=parameters,
                wait=options.wait,
                on_wait=lambda error, pause: _progress(stderr, error, pause),
            )
            for event in events:
                if isinstance(event, Text) and event.text:
                    stdout.write(event.text)
                    stdout.flush()
                    ended_with_newline = event.text.endswith("\n")
    except StreamError as error:
        _end_line(stdout, ended_with_newline)
        _say(stderr, f"[stream error] {error}")
        return EXIT_FAILED
    except RelayError as error:
        _end_line(stdout, ended_with_newline)
        _say(stderr, f"error: {error}")
        if error.kind == "unauthorized":
            _say(
                stderr,
                f"This relay takes API keys: set {API_KEY_VARIABLE} to one "
                "(`python -m jumpstream keys create --env NAME --name NAME` makes one).",
            )
        return EXIT_FAILED
    _end_line(stdout, ended_with_newline)
    return EXIT_OK


def _progress(stderr: TextIO, error: RelayError, pause: float) -> None:
    """While waiting, say why on a terminal; a script reading stderr gets only the outcome."""
    if stderr.isatty():
        _say(stderr, f"waiting {pause:g} s: {error}")


def _end_line(stdout: TextIO, ended_with_newline: bool) -> None:
    """A terminal's prompt should not start after the answer's last word."""
    if not ended_with_newline and stdout.isatty():
        stdout.write("\n")
        stdout.flush()


def _say(stream: TextIO, line: str) -> None:
    stream.write(line + "\n")
    stream.flush()
