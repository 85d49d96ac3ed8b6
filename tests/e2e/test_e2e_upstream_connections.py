"""The relay's connections to SageMaker, end to end: the relay started as Lambda starts it
(run.sh) against a loopback server that closes a kept-alive connection as the next request
arrives, as a server whose idle timeout crossed the request does."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

import httpx
import pytest

from jumpstream.bench.http_peer import HttpPeer, Reused, http_peer
from jumpstream.local import (
    RELAY_ROOT,
    StackConfig,
    free_port,
    healthy_child,
    relay_command,
    relay_environment,
)
from jumpstream.procs import LineBuffer
from tests.e2e.support import HANG_GUARD_SECONDS, generate_body
from tests.streamer.support import answer_events, payload_part

#: What the stand-in SageMaker answers every request with: a whole TGI stream, as event stream.
ANSWER = b"".join(payload_part(event) for event in answer_events(["kept", " alive"]))


def stand_in() -> AbstractContextManager[HttpPeer]:
    return http_peer(body=ANSWER, content_type="application/vnd.amazon.eventstream")


@contextmanager
def relay_in_front_of(peer: HttpPeer) -> Iterator[httpx.Client]:
    port = free_port()
    with (
        healthy_child(
            "relay",
            relay_command(),
            cwd=RELAY_ROOT,
            env=relay_environment(StackConfig(), emulator_url=peer.url, port=port),
            port=port,
            sink=LineBuffer(),
            timeout=HANG_GUARD_SECONDS,
        ),
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=HANG_GUARD_SECONDS) as client,
    ):
        yield client


@pytest.mark.parametrize("reused", [Reused.CLOSE, Reused.RESET])
def test_a_stale_upstream_connection_costs_the_caller_nothing(reused: Reused) -> None:
    with stand_in() as peer, relay_in_front_of(peer) as relay:
        first = relay.post("/", json=generate_body("Once"))
        peer.reused = reused
        second = relay.post("/", json=generate_body("Twice"))
    assert (first.status_code, first.text) == (200, "kept alive")
    assert (second.status_code, second.text) == (200, "kept alive")
    assert peer.counts.failed_reused == 1
    assert peer.counts.connections == 2


def test_an_upstream_connection_that_ends_mid_answer_is_a_502_not_a_resend() -> None:
    with stand_in() as peer, relay_in_front_of(peer) as relay:
        relay.post("/", json=generate_body("Once"))
        peer.reused = Reused.PARTIAL
        response = relay.post("/", json=generate_body("Twice"))
    assert response.status_code == 502
    assert response.json()["type"] == "upstream_error"
    assert peer.counts.connections == 1
    assert peer.counts.requests == 2
