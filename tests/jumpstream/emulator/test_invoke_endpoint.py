"""InvokeEndpoint, the API that answers once the container is done, through the real boto3: the
same replies and refusals as the streaming API, whole, and SageMaker's failures of a reply under
way turned into the HTTP errors InvokeEndpoint answers with."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from jumpstream.emulator.stream_faults import INVOKE_TIMEOUT_MESSAGE, STREAM_BROKEN_MESSAGE
from tests.jumpstream.emulator.emulator_harness import (
    ENDPOINT,
    POLL_TIMEOUT_SECONDS,
    control,
    invoke,
    parse_sse,
    payload_parts,
    request_id,
    sagemaker_client,
    stream_record,
    tgi_body,
    wait_for_record,
)


def whole(client: Any, inputs: str, *, stream: bool = True, **parameters: Any) -> Any:
    return client.invoke_endpoint(
        EndpointName=ENDPOINT,
        Body=tgi_body(inputs, stream=stream, **parameters),
        ContentType="application/json",
    )


def test_a_body_that_does_not_stream_gets_tgis_json_whole(url: str, client: Any) -> None:
    response = whole(client, "What is streaming?", stream=False, max_new_tokens=5)
    assert response["ContentType"] == "application/json"
    assert response["InvokedProductionVariant"] == "AllTraffic"
    (reply,) = json.loads(response["Body"].read())
    streamed = parse_sse(
        b"".join(payload_parts(invoke(client, "What is streaming?", max_new_tokens=5)))
    )
    assert reply == {"generated_text": streamed[-1]["generated_text"]}
    assert stream_record(url, request_id(response))["state"] == "completed"


def test_a_streamed_body_comes_back_as_the_whole_stream(client: Any) -> None:
    response = whole(client, "Tell me more[[split:3]]", max_new_tokens=7)
    assert response["ContentType"] == "text/event-stream"
    body = response["Body"].read()
    assert body == b"".join(payload_parts(invoke(client, "Tell me more", max_new_tokens=7)))
    assert len(parse_sse(body)) == 7


def test_refusals_before_the_reply_are_the_same_as_for_the_stream(client: Any) -> None:
    with pytest.raises(ClientError) as throttled:
        whole(client, "hi [[fault:throttling]]")
    assert throttled.value.response["Error"]["Code"] == "ThrottlingException"
    with pytest.raises(client.exceptions.ModelError) as failed:
        whole(client, "hi", stream=False, temperature=0)
    assert failed.value.response["OriginalStatusCode"] == 422
    with pytest.raises(client.exceptions.ValidationError):
        client.invoke_endpoint(EndpointName="elsewhere", Body=tgi_body("hi"))


def test_a_timeout_is_sagemakers_model_error_for_a_container_that_took_too_long(
    client: Any,
) -> None:
    with pytest.raises(client.exceptions.ModelError) as raised:
        whole(client, "hi[[fault:timeout@3]]")
    error = raised.value.response
    assert error["OriginalStatusCode"] == 0
    assert error["OriginalMessage"] == INVOKE_TIMEOUT_MESSAGE
    assert error["Error"]["Message"].startswith("Received server error (0) from primary")


def test_a_broken_connection_is_a_model_error_and_an_internal_one_an_internal_failure(
    client: Any,
) -> None:
    with pytest.raises(client.exceptions.ModelError) as broken:
        whole(client, "hi[[fault:stream_broken@2]]")
    assert broken.value.response["OriginalMessage"] == STREAM_BROKEN_MESSAGE
    with pytest.raises(ClientError) as internal:
        whole(client, "hi[[fault:internal_stream@2]]")
    assert internal.value.response["Error"]["Code"] == "InternalFailure"
    assert internal.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500


def test_engine_faults_and_truncation_are_part_of_the_containers_reply(client: Any) -> None:
    errored = parse_sse(whole(client, "hi[[fault:overloaded@2]]")["Body"].read())
    assert [set(event) for event in errored[2:]] == [{"error", "error_type"}]
    truncated = parse_sse(whole(client, "hi[[fault:truncate@3]]")["Body"].read())
    assert len(truncated) == 3
    assert truncated[-1]["generated_text"] is None


def test_a_held_reply_comes_only_once_released(url: str, client: Any) -> None:
    before = {record["id"] for record in control(url, "GET", "/_emulator/streams")}
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(lambda: whole(client, "hi[[hold@2]]", max_new_tokens=5))
        held = _new_held_stream(url, before)
        assert held["tokens_sent"] == 2
        assert not pending.done()
        assert control(url, "POST", "/_emulator/release")["released"] >= 1
        response = pending.result(timeout=POLL_TIMEOUT_SECONDS)
    assert len(parse_sse(response["Body"].read())) == 5
    assert stream_record(url, held["id"])["state"] == "completed"


def test_a_stalled_reply_never_comes_and_the_client_leaving_is_recorded(url: str) -> None:
    impatient = sagemaker_client(url, read_timeout=1)
    before = {record["id"] for record in control(url, "GET", "/_emulator/streams")}
    with pytest.raises(ReadTimeoutError):
        whole(impatient, "hi[[fault:stall@1]]")
    (stalled,) = [r for r in control(url, "GET", "/_emulator/streams") if r["id"] not in before]
    record = wait_for_record(url, stalled["id"], lambda r: r["state"] != "open")
    assert record["state"] == "disconnected"


def test_an_unsigned_invocation_is_refused(url: str) -> None:
    reply = httpx.post(
        f"{url}/endpoints/{ENDPOINT}/invocations", content=tgi_body("hi"), timeout=10
    )
    assert reply.status_code == 403
    assert reply.headers["x-amzn-errortype"].startswith("MissingAuthenticationTokenException:")


def _new_held_stream(url: str, before: set[str]) -> dict[str, Any]:
    deadline = time.monotonic() + POLL_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        new = [r for r in control(url, "GET", "/_emulator/streams") if r["id"] not in before]
        if new and new[0]["held"]:
            return new[0]
        time.sleep(0.02)
    raise AssertionError("no held reply appeared")
