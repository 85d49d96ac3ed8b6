"""Streaming behaviour only a real connection shows: pieces leave at once, leavers are noticed.

`[[hold@N]]` makes the emulator stop after N tokens until `POST /_emulator/release`. While it
holds, the relay has nothing more to send, so whatever the client has received by then was sent
piece by piece and not buffered until the end.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from jumpstream.local import LocalStack
from tests.e2e.support import (
    FORMATS,
    HANG_GUARD_SECONDS,
    PROMPT,
    expected_answer,
    expected_tokens,
    generate_body,
    parse_ndjson,
    parse_sse,
    stream_ids,
    wait_for_new_stream,
)

#: The first piece must arrive while the upstream holds; this long is the hang guard for it.
FIRST_PIECE_GUARD_SECONDS = 10.0


def answer_text(body: bytes, output_format: str) -> str:
    if output_format == "sse":
        return "".join(data.get("text", "") for _, data in parse_sse(body))
    if output_format == "ndjson":
        return "".join(line.get("text", "") for line in parse_ndjson(body))
    return body.decode("utf-8")


def holds_two_tokens(received: bytes, output_format: str, first_two: str) -> bool:
    """Whether ``received`` holds two complete tokens in this format."""
    if output_format == "sse":
        return received.count(b"\n\n") >= 2
    if output_format == "ndjson":
        return received.count(b"\n") >= 2
    return len(received) >= len(first_two.encode())


@pytest.fixture
def control(emulator: httpx.Client) -> Iterator[httpx.Client]:
    """The emulator's control API; any stream a failed test left held is released after it."""
    yield emulator
    emulator.post("/_emulator/release")


def test_first_token_reaches_the_client_before_the_upstream_goes_on(
    stack: LocalStack, control: httpx.Client
) -> None:
    prompt = f"{PROMPT} [[hold@1]]"
    before = stream_ids(control)
    timeout = httpx.Timeout(HANG_GUARD_SECONDS, read=FIRST_PIECE_GUARD_SECONDS)
    with (
        httpx.Client(base_url=stack.relay_url, timeout=timeout) as client,
        client.stream("POST", "/", json=generate_body(prompt)) as response,
    ):
        assert response.status_code == 200
        pieces = response.iter_raw()
        first = next(pieces)  # a ReadTimeout here means the relay held the token back
        record = wait_for_new_stream(control, before, held=True)
        assert record["tokens_sent"] == 1
        assert first.decode("utf-8") == expected_tokens(prompt)[0]
        assert control.post("/_emulator/release").json() == {"released": 1}
        rest = b"".join(pieces)
    assert (first + rest).decode("utf-8") == expected_answer(prompt)


@pytest.mark.parametrize("output_format", list(FORMATS))
def test_each_format_flushes_its_first_event(
    stack: LocalStack, control: httpx.Client, output_format: str
) -> None:
    prompt = f"{PROMPT} [[hold@2]]"
    before = stream_ids(control)
    timeout = httpx.Timeout(HANG_GUARD_SECONDS, read=FIRST_PIECE_GUARD_SECONDS)
    received = b""
    with (
        httpx.Client(base_url=stack.relay_url, timeout=timeout) as client,
        client.stream(
            "POST", "/", json=generate_body(prompt), headers={"accept": FORMATS[output_format]}
        ) as response,
    ):
        pieces = response.iter_raw()
        first_two = "".join(expected_tokens(prompt)[:2])
        # Both tokens sent before the hold must be readable while the emulator holds.
        while not holds_two_tokens(received, output_format, first_two):
            received += next(pieces)  # a ReadTimeout here means the relay buffered
        assert answer_text(received, output_format) == first_two
        record = wait_for_new_stream(control, before, held=True)
        assert record["tokens_sent"] == 2  # still held: nothing after them was sent yet
        control.post("/_emulator/release")
        received += b"".join(pieces)
    assert answer_text(received, output_format) == expected_answer(prompt)


def test_a_client_that_leaves_closes_the_upstream_stream(
    stack: LocalStack, control: httpx.Client
) -> None:
    prompt = f"{PROMPT} [[hold@3]]"
    before = stream_ids(control)
    with (
        httpx.Client(base_url=stack.relay_url, timeout=HANG_GUARD_SECONDS) as client,
        client.stream("POST", "/", json=generate_body(prompt)) as response,
    ):
        assert response.status_code == 200
        # Keep the iterator: a dropped one closes the connection at once, and the relay (which
        # now notices within a read) could close the upstream before the emulator holds.
        pieces = response.iter_raw()
        next(pieces)
        wait_for_new_stream(control, before, held=True)
    # Leaving the block with the body unread closed the connection mid-stream.
    record = wait_for_new_stream(control, before, state="disconnected")
    assert record["tokens_sent"] == 3
    assert not record["held"]
