"""The ``[[...]]`` directives a caller writes in its prompt to steer the emulator per request.

Why in the prompt: the relay under test forwards the prompt untouched, whatever body the engine
takes (TGI's and LMI's ``inputs``, vLLM's ``prompt``, or chat ``messages``), so a test that talks
only to the relay can still make the upstream fail, pause or misbehave in a chosen way. Directives
are stripped before the stand-in model sees the prompt. See the package docstring for the list.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: Faults answered with an HTTP error before any stream starts (``@N`` is ignored).
PRE_STREAM_FAULTS = frozenset(
    {"throttling", "unavailable", "model_error", "internal_failure", "no_capacity"}
)
#: Faults that happen inside the stream after N tokens.
IN_STREAM_FAULTS = frozenset(
    {
        "validation",
        "overloaded",
        "generation",
        "stream_broken",
        "timeout",
        "internal_stream",
        "truncate",
        "stall",
    }
)
#: ``[[length:N]]`` beyond this is refused: no model here generates more than 8192 tokens.
MAX_ANSWER_LENGTH = 20_000
#: In-stream faults the engine itself reports, each engine in its own error shape (TGI as an
#: error event with this ``error_type``); the others are SageMaker's, or no report at all.
ENGINE_FAULTS = frozenset({"validation", "overloaded", "generation"})
#: In-stream faults SageMaker itself reports as an exception in the event stream.
SAGEMAKER_STREAM_FAULTS = frozenset({"stream_broken", "timeout", "internal_stream"})
_DIRECTIVE = re.compile(
    r"\[\[\s*(fault|hold|split|keepalive|nospace|crlf|length|markdown)\b([^\[\]]*)\]\]"
)
_FAULT_ARGS = re.compile(r":([a-z_]+)(?:@(\d+))?")
_HOLD_ARGS = re.compile(r"(?:@(\d+))?")
_SPLIT_ARGS = re.compile(r":(?:([1-9]\d*)|(random))")
_LENGTH_ARGS = re.compile(r":(\d+)")


class DirectiveError(ValueError):
    """A ``[[...]]`` directive the emulator recognises by name but cannot parse."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Fault:
    """A failure to inject: ``kind``, after ``after`` tokens were sent (in-stream kinds only)."""

    kind: str
    after: int = 0

    @property
    def pre_stream(self) -> bool:
        return self.kind in PRE_STREAM_FAULTS


@dataclass(frozen=True, slots=True, kw_only=True)
class Directives:
    """Everything a request asked for; the defaults mean "behave like the real thing"."""

    faults: tuple[Fault, ...] = ()
    holds: tuple[int, ...] = ()
    split: int | None = None
    split_random: bool = False
    keepalive: bool = False
    nospace: bool = False
    crlf: bool = False
    answer_length: int | None = None
    markdown: bool = False

    @property
    def pre_stream_fault(self) -> Fault | None:
        """The first pre-stream fault written, which is the one that answers."""
        return next((fault for fault in self.faults if fault.pre_stream), None)

    @property
    def stream_fault(self) -> Fault | None:
        """The in-stream fault that fires first (fewest tokens before it)."""
        in_stream = [fault for fault in self.faults if not fault.pre_stream]
        return min(in_stream, key=lambda fault: fault.after, default=None)


def parse_directives(inputs: str) -> tuple[str, Directives]:
    """Return ``inputs`` without its directives, and what they asked for.

    Text in ``[[...]]`` whose name is not a directive is left in the prompt: it is the user's.
    """
    faults: list[Fault] = []
    holds: list[int] = []
    flags: set[str] = set()
    split: int | None = None
    answer_length: int | None = None
    for match in _DIRECTIVE.finditer(inputs):
        name, args = match.group(1), match.group(2).strip()
        if name == "fault":
            faults.append(_fault(args, match.group()))
        elif name == "hold":
            holds.append(_hold(args, match.group()))
        elif name == "split":
            size = _SPLIT_ARGS.fullmatch(args)
            if size is None:
                raise DirectiveError(f"{match.group()}: expected [[split:K]] or [[split:random]]")
            if size.group(2):
                flags.add("split_random")
            else:
                split = int(size.group(1))
        elif name == "length":
            length = _LENGTH_ARGS.fullmatch(args)
            if length is None:
                raise DirectiveError(f"{match.group()}: expected [[length:N]]")
            answer_length = int(length.group(1))
            if answer_length > MAX_ANSWER_LENGTH:
                raise DirectiveError(f"{match.group()}: at most {MAX_ANSWER_LENGTH} tokens")
        else:
            if args:
                raise DirectiveError(f"{match.group()}: [[{name}]] takes no argument")
            flags.add(name)
    stripped = _DIRECTIVE.sub("", inputs)
    directives = Directives(
        faults=tuple(faults),
        holds=tuple(holds),
        split=split,
        split_random="split_random" in flags,
        keepalive="keepalive" in flags,
        nospace="nospace" in flags,
        crlf="crlf" in flags,
        answer_length=answer_length,
        markdown="markdown" in flags,
    )
    return stripped, directives


def _fault(args: str, text: str) -> Fault:
    match = _FAULT_ARGS.fullmatch(args)
    if match is None:
        raise DirectiveError(f"{text}: expected [[fault:KIND]] or [[fault:KIND@N]]")
    kind = match.group(1)
    if kind not in PRE_STREAM_FAULTS | IN_STREAM_FAULTS:
        known = ", ".join(sorted(PRE_STREAM_FAULTS | IN_STREAM_FAULTS))
        raise DirectiveError(f"{text}: unknown fault kind {kind!r} (known: {known})")
    return Fault(kind=kind, after=int(match.group(2) or 0))


def _hold(args: str, text: str) -> int:
    match = _HOLD_ARGS.fullmatch(args)
    if match is None:
        raise DirectiveError(f"{text}: expected [[hold@N]]")
    return int(match.group(1) or 0)


def read_directives(body: Any) -> tuple[Any, Directives]:
    """Return ``body`` with the directives stripped from its prompt text, and what they ask for.

    The prompt text is wherever an engine reads it: ``inputs``, ``prompt``, and the ``content``
    of each of ``messages`` (a string, or a list of ``{"type": "text", "text": ...}`` parts).
    Directives written in several of them all apply, as they would in one rendered prompt.
    Anything else in the body, or a body of another shape, is left for the engine to judge.
    """
    if not isinstance(body, dict):
        return body, Directives()
    texts: list[str] = []

    def strip(text: str) -> str:
        stripped, _ = parse_directives(text)
        texts.append(text)
        return stripped

    stripped_body = dict(body)
    for key in ("inputs", "prompt"):
        if isinstance(body.get(key), str):
            stripped_body[key] = strip(body[key])
    if isinstance(body.get("messages"), list):
        stripped_body["messages"] = [_strip_message(m, strip) for m in body["messages"]]
    _, directives = parse_directives("\n".join(texts))
    return stripped_body, directives


def _strip_message(message: Any, strip: Callable[[str], str]) -> Any:
    if not isinstance(message, dict):
        return message
    content = message.get("content")
    if isinstance(content, str):
        return {**message, "content": strip(content)}
    if isinstance(content, list):
        parts = [
            {**part, "text": strip(part["text"])}
            if isinstance(part, dict) and isinstance(part.get("text"), str)
            else part
            for part in content
        ]
        return {**message, "content": parts}
    return message
