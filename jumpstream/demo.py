"""``python -m jumpstream demo`` (``make demo``): one answer streamed through the real relay.

Starts the local stack on free ports, paced like a real model (25 tokens/s by default) so the
words visibly arrive one by one, asks one question as a chat (the relay lays it out in the
model's own prompt format), prints each piece as it arrives, then a summary line, and stops
everything. The children's own output is kept quiet
unless ``--verbose`` is given, and shown when something fails, since then it is what explains it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Final, TextIO

from jumpstream.client import RelayClient, RelayError, Text
from jumpstream.local import (
    DEFAULT_MODEL_ID,
    StackConfig,
    emulator_streams,
    start_stack,
)
from jumpstream.procs import ChildExited, LineBuffer, PrefixedWriter, StartupTimeout

__all__ = ["DEMO_PROMPT", "DemoOptions", "DemoResult", "run_demo"]

DEMO_PROMPT: Final = "Why should a chat application stream the answer of a language model?"
_REQUEST_TIMEOUT_SECONDS: Final = 60.0


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoOptions:
    """What the demo asks and how fast the emulated model answers."""

    prompt: str = DEMO_PROMPT
    max_new_tokens: int = 128
    tokens_per_second: float = 25.0
    model_id: str = DEFAULT_MODEL_ID
    verbose: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoResult:
    """What the summary line reports."""

    time_to_first_token: float
    duration: float
    tokens: int | None


class DemoFailed(Exception):
    """Something went wrong; the message is the line printed before exiting with status 1."""


def run_demo(options: DemoOptions, *, stdout: TextIO, stderr: TextIO) -> int:
    """Run the demo; return the exit status."""
    output = LineBuffer(echo=PrefixedWriter(stderr) if options.verbose else None)
    config = StackConfig(
        relay_port=0,
        emulator_port=0,
        model_id=options.model_id,
        tokens_per_second=options.tokens_per_second,
    )
    _say(stderr, "Starting the SageMaker emulator and the relay (lambda/streamer/run.sh) ...")
    try:
        with start_stack(config, sink=output) as stack:
            _say(stdout, f"relay {stack.relay_url}  ->  emulated endpoint {stack.emulator_url}")
            _say(
                stdout,
                f"(the answer comes from the emulator's stand-in for {options.model_id}: "
                "canned text at a model's pace, not an LLM)",
            )
            _say(stdout, f"prompt: {options.prompt}\n")
            result = _ask(stack.relay_url, options, stdout=stdout)
            tokens = _tokens_sent(stack.emulator_url)
            result = DemoResult(
                time_to_first_token=result.time_to_first_token,
                duration=result.duration,
                tokens=tokens,
            )
    except (ChildExited, StartupTimeout, OSError, DemoFailed) as error:
        if not options.verbose and output.lines():
            stderr.write(output.render())
        _say(stderr, f"jumpstream demo failed: {error}")
        return 1
    _say(stdout, "\n\n" + summary_line(result))
    _say(stdout, NEXT_STEPS)
    return 0


#: What to try after the demo: the same stack to play with, the tests, the way to AWS.
NEXT_STEPS = """
Next:
  make local                # the same stack until Ctrl-C, with a chat page at /chat
  make test                 # every test, as CI runs them
  make synth ENV=dev        # what would deploy (README: "The quick path"; no AWS account needed)"""


def summary_line(result: DemoResult) -> str:
    """``-- first token after 0.21 s, 65 tokens in 2.80 s (23.2 tokens/s)``."""
    parts = [f"-- first token after {result.time_to_first_token:.2f} s"]
    if result.tokens is not None:
        rate = result.tokens / result.duration if result.duration > 0 else float("inf")
        parts.append(f"{result.tokens} tokens in {result.duration:.2f} s ({rate:.1f} tokens/s)")
    else:
        parts.append(f"answer complete in {result.duration:.2f} s")
    return ", ".join(parts)


def _ask(relay_url: str, options: DemoOptions, *, stdout: TextIO) -> DemoResult:
    started = time.perf_counter()
    first_token: float | None = None
    messages = [{"role": "user", "content": options.prompt}]
    parameters = {"max_new_tokens": options.max_new_tokens}
    try:
        with RelayClient(relay_url + "/", auth=None, timeout=_REQUEST_TIMEOUT_SECONDS) as client:
            for event in client.events(messages=messages, parameters=parameters):
                if isinstance(event, Text):
                    if first_token is None:
                        first_token = time.perf_counter()
                    stdout.write(event.text)
                    stdout.flush()
    except RelayError as error:
        raise DemoFailed(f"the answer broke off: {error}") from error
    finished = time.perf_counter()
    if first_token is None:
        raise DemoFailed("the relay answered without any text")
    return DemoResult(
        time_to_first_token=first_token - started, duration=finished - started, tokens=None
    )


def _tokens_sent(emulator_url: str) -> int | None:
    """The tokens the emulated model sent for the demo's one stream (its EOS included)."""
    try:
        records = emulator_streams(emulator_url)
    except (OSError, RuntimeError, ValueError):
        return None
    if not records:
        return None
    tokens = records[-1].get("tokens_sent")
    return tokens if isinstance(tokens, int) else None


def _say(stream: TextIO, line: str) -> None:
    stream.write(line + "\n")
    stream.flush()
