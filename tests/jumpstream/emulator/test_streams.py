"""The streams the emulator served, as its control API reports them (``/_emulator/streams``,
``/_emulator/release``): how relay tests see the upstream side, holds and disconnects."""

from __future__ import annotations

from typing import Any

from tests.jumpstream.emulator.emulator_harness import (
    control,
    invoke,
    parse_sse,
    payload_parts,
    request_id,
    running_emulator,
    sagemaker_client,
    stream_record,
    wait_for_record,
)


def test_hold_delivers_the_first_tokens_and_waits_for_release(url: str, client: Any) -> None:
    response = invoke(client, "Tell me more[[hold@2]]", max_new_tokens=6)
    stream_id = request_id(response)
    events = iter(response["Body"])
    received = [next(events)["PayloadPart"]["Bytes"], next(events)["PayloadPart"]["Bytes"]]
    assert len(parse_sse(b"".join(received))) == 2
    # The server is parked after exactly two tokens while the client already holds them.
    record = wait_for_record(url, stream_id, lambda r: r["held"])
    assert record == {"id": stream_id, "state": "open", "tokens_sent": 2, "held": True}
    assert control(url, "POST", "/_emulator/release") == {"released": 1}
    received += [event["PayloadPart"]["Bytes"] for event in events]
    parsed = parse_sse(b"".join(received))
    assert [e["index"] for e in parsed] == [1, 2, 3, 4, 5, 6]
    assert stream_record(url, stream_id)["state"] == "completed"


def test_a_held_stream_does_not_block_other_streams(url: str, client: Any) -> None:
    held = invoke(client, "first[[hold@1]]")
    held_events = iter(held["Body"])
    next(held_events)
    wait_for_record(url, request_id(held), lambda r: r["held"])
    other = parse_sse(b"".join(payload_parts(invoke(client, "second"))))
    assert other[-1]["token"]["special"]
    assert stream_record(url, request_id(held))["state"] == "open"
    control(url, "POST", "/_emulator/release")
    rest = [event["PayloadPart"]["Bytes"] for event in held_events]
    assert parse_sse(b"".join(rest))[-1]["token"]["special"]


def test_a_client_leaving_a_held_stream_is_recorded_as_disconnected(url: str, client: Any) -> None:
    response = invoke(client, "Tell me more[[hold@1]]")
    stream_id = request_id(response)
    next(iter(response["Body"]))
    wait_for_record(url, stream_id, lambda r: r["held"])
    response["Body"].close()
    record = wait_for_record(url, stream_id, lambda r: r["state"] != "open")
    assert record["state"] == "disconnected"
    # The generator was really cancelled: it is no longer parked at the gate.
    assert record["held"] is False
    assert record["tokens_sent"] == 1


def test_release_with_nothing_held_releases_nothing(url: str) -> None:
    assert control(url, "POST", "/_emulator/release") == {"released": 0}


def test_streams_lists_every_stream_served(url: str, client: Any) -> None:
    ids = []
    for prompt in ("one", "two"):
        response = invoke(client, prompt, max_new_tokens=2)
        payload_parts(response)
        ids.append(request_id(response))
    listed = control(url, "GET", "/_emulator/streams")
    assert [record["id"] for record in listed][-2:] == ids
    assert all(set(record) == {"id", "state", "tokens_sent", "held"} for record in listed)


def test_a_client_leaving_mid_pacing_is_recorded_as_disconnected() -> None:
    # A slow model: the client leaves while the server sleeps between tokens.
    with running_emulator("--tokens-per-second", "2") as slow_url:
        slow_client = sagemaker_client(slow_url)
        response = invoke(slow_client, "Tell me more")
        next(iter(response["Body"]))
        response["Body"].close()
        record = wait_for_record(slow_url, request_id(response), lambda r: r["state"] != "open")
        assert record["state"] == "disconnected"
