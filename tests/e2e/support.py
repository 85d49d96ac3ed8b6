"""Helpers for the end-to-end tests: what the emulated model will say, and strict body parsers.

The expected answer is computed from the emulator's own stand-in model, exactly as the emulator
will compute it for the body the relay sends upstream (the prompt without directives, always
streaming, with details). So a test compares the text that went through the real relay with the
text the model produced, not with a copy pasted from a previous run.
"""

from __future__ import annotations

import json
import time
from typing import Any, Final

import httpx

from jumpstream.emulator.directives import parse_directives
from jumpstream.emulator.model import StandInModel
from jumpstream.emulator.request import parse_body
from jumpstream.local import DEFAULT_MODEL_ID, StackConfig

#: A guard against hangs on every network wait; never a statement about speed.
HANG_GUARD_SECONDS: Final = 30.0
#: How long to poll the emulator's stream records for a state change (a hang guard too).
POLL_GUARD_SECONDS: Final = 15.0
#: The upstream read timeout of the relay used for stall tests.
SHORT_READ_TIMEOUT_SECONDS: Final = 2

EOS_TEXTS: Final = ("</s>", "<|endoftext|>")


#: A prompt in English, so the stand-in model answers in English.
PROMPT = "Tell me why streaming matters."
#: The relay's three output formats, by the Accept value that asks for each.
FORMATS = {
    "text": "text/plain",
    "sse": "text/event-stream",
    "ndjson": "application/x-ndjson",
}


def fast_config(**relay_env: str) -> StackConfig:
    """The local stack on free ports with the model as fast as it can go."""
    return StackConfig(
        relay_port=0,
        emulator_port=0,
        model_id=DEFAULT_MODEL_ID,
        tokens_per_second=0,
        first_token_delay=0,
        relay_env=relay_env,
    )


def expected_tokens(
    inputs: str, parameters: dict[str, Any] | None = None, *, model_id: str = DEFAULT_MODEL_ID
) -> list[str]:
    """The visible texts of the tokens the emulator will stream for this request, in order."""
    prompt, directives = parse_directives(inputs)
    body = {"inputs": prompt, "parameters": {"details": True, **(parameters or {})}, "stream": True}
    generation = StandInModel(model_id).generate(
        parse_body(body), answer_length=directives.answer_length, markdown=directives.markdown
    )
    return [token.text for token in generation.tokens if not token.special]


def expected_answer(inputs: str, parameters: dict[str, Any] | None = None) -> str:
    """The whole visible answer to this request."""
    return "".join(expected_tokens(inputs, parameters))


def chat_turn(text: str) -> str:
    """An answer as the chat routes and `messages` on POST / send it: without the whitespace
    the model starts it with (streamer/model_text.LeadingSpaceTrimmer)."""
    return text.lstrip()


def parse_sse(body: bytes) -> list[tuple[str, dict[str, Any]]]:
    """The relay's SSE, parsed strictly: every block is one `event:` line and one `data:` line."""
    text = body.decode("utf-8")
    assert text.endswith("\n\n"), text[-80:]
    events = []
    for block in text[:-2].split("\n\n"):
        event_line, data_line = block.split("\n")
        assert event_line.startswith("event: "), block
        assert data_line.startswith("data: "), block
        data = json.loads(data_line.removeprefix("data: "))
        assert isinstance(data, dict)
        events.append((event_line.removeprefix("event: "), data))
    return events


def parse_ndjson(body: bytes) -> list[dict[str, Any]]:
    """The relay's NDJSON, parsed strictly: one JSON object per line, every line ended."""
    text = body.decode("utf-8")
    assert text.endswith("\n"), text[-80:]
    lines = [json.loads(line) for line in text.split("\n")[:-1]]
    assert all(isinstance(line, dict) for line in lines)
    return lines


def generate_body(inputs: str, **parameters: Any) -> dict[str, Any]:
    """A relay request body."""
    return {"inputs": inputs, "parameters": parameters} if parameters else {"inputs": inputs}


def stream_ids(emulator: httpx.Client) -> set[str]:
    """Ids of every stream the emulator has served so far."""
    return {record["id"] for record in emulator.get("/_emulator/streams").json()}


def wait_for_new_stream(
    emulator: httpx.Client, before: set[str], *, state: str | None = None, held: bool | None = None
) -> dict[str, Any]:
    """The one stream record not in ``before``, once it has ``state`` / ``held``.

    Polls with a bounded wait: the upstream side settles a moment after the client's side.
    Fails if more than one new stream appears (the test would be reading the wrong one).
    """
    deadline = time.monotonic() + POLL_GUARD_SECONDS
    while True:
        new = [r for r in emulator.get("/_emulator/streams").json() if r["id"] not in before]
        assert len(new) <= 1, new
        if (
            new
            and (state is None or new[0]["state"] == state)
            and (held is None or new[0]["held"] == held)
        ):
            return new[0]
        if time.monotonic() > deadline:
            raise AssertionError(f"no new stream with state={state} held={held}: {new}")
        time.sleep(0.02)
