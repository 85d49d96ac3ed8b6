"""The control API (health, streams, release) and what relay tests rely on: holds, disconnects,
inference-component routing and the ``--port 0`` start-up contract."""

from __future__ import annotations

import signal
import subprocess
import sys
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.jumpstream.emulator.emulator_harness import (
    ENDPOINT,
    POLL_TIMEOUT_SECONDS,
    REPO_ROOT,
    control,
    emulator_process,
    invoke,
    parse_sse,
    payload_parts,
    request_id,
    running_emulator,
    sagemaker_client,
    stream_record,
    tgi_body,
    wait_for_record,
)


def test_health(url: str) -> None:
    assert control(url, "GET", "/_emulator/health") == {"status": "ok"}


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


def test_inference_component_header_is_required_and_checked() -> None:
    with running_emulator("--inference-component", "jumpstream-ic") as ic_url:
        ic_client = sagemaker_client(ic_url)
        with pytest.raises(ClientError) as missing:
            invoke(ic_client, "hi")
        assert missing.value.response["Error"]["Code"] == "ValidationError"
        assert missing.value.response["Error"]["Message"].startswith(
            "Inference Component Name header is required"
        )
        with pytest.raises(ClientError) as wrong:
            ic_client.invoke_endpoint_with_response_stream(
                EndpointName=ENDPOINT,
                Body=tgi_body("hi"),
                ContentType="application/json",
                InferenceComponentName="other-ic",
            )
        assert wrong.value.response["Error"]["Code"] == "ValidationError"
        assert "other-ic" in wrong.value.response["Error"]["Message"]
        ok = ic_client.invoke_endpoint_with_response_stream(
            EndpointName=ENDPOINT,
            Body=tgi_body("hi"),
            ContentType="application/json",
            InferenceComponentName="jumpstream-ic",
        )
        assert parse_sse(b"".join(payload_parts(ok)))[-1]["token"]["special"]


def test_custom_endpoint_name_and_model_id() -> None:
    with running_emulator(
        "--endpoint-name", "custom", "--model-id", "huggingface-llm-mistral-7b-instruct"
    ) as custom_url:
        custom = sagemaker_client(custom_url)
        response = custom.invoke_endpoint_with_response_stream(
            EndpointName="custom",
            Body=tgi_body("[INST] hi [/INST]"),
            ContentType="application/json",
        )
        events = parse_sse(b"".join(payload_parts(response)))
        assert events[-1]["token"]["text"] == "</s>"


def test_the_cli_refuses_a_port_in_use(url: str) -> None:
    port = url.rsplit(":", 1)[1]
    result = subprocess.run(
        [sys.executable, "-m", "jumpstream.emulator", "--port", port],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode != 0
    assert "emulator listening" not in result.stdout


def test_sigterm_stops_the_emulator_even_while_a_stream_stalls() -> None:
    with emulator_process() as (process, url):
        response = invoke(sagemaker_client(url), "hi[[fault:stall@1]]")
        next(iter(response["Body"]))
        process.terminate()
        # uvicorn shuts down, then re-raises the signal it caught: -SIGTERM is a clean stop.
        assert process.wait(timeout=POLL_TIMEOUT_SECONDS) in (0, -signal.SIGTERM)
