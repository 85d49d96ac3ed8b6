"""Every injected fault, as the real boto3 sees it: the same exceptions AWS would raise."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.eventstream import EventStreamBuffer
from botocore.exceptions import ClientError
from urllib3.exceptions import ReadTimeoutError

from tests.jumpstream.emulator.emulator_harness import (
    ENDPOINT,
    invoke,
    parse_sse,
    parts_until_error,
    payload_parts,
    request_id,
    sagemaker_client,
    stream_record,
    tgi_body,
    wait_for_record,
)


@pytest.mark.parametrize(
    ("kind", "code", "status", "message"),
    [
        ("throttling", "ThrottlingException", 400, "Rate exceeded"),
        ("unavailable", "ServiceUnavailable", 503, "The service is unavailable"),
        ("internal_failure", "InternalFailure", 500, "An internal failure occurred"),
        ("no_capacity", "ValidationError", 400, "Inference Component has no capacity"),
    ],
)
def test_pre_stream_faults_are_client_errors_with_aws_codes(
    client: Any, kind: str, code: str, status: int, message: str
) -> None:
    with pytest.raises(ClientError) as raised:
        invoke(client, f"hi [[fault:{kind}@5]]")
    error = raised.value.response
    assert error["Error"]["Code"] == code
    assert error["Error"]["Message"].startswith(message)
    assert error["ResponseMetadata"]["HTTPStatusCode"] == status
    assert error["ResponseMetadata"]["RequestId"]


def test_model_error_carries_the_containers_status_message_and_log_stream(client: Any) -> None:
    with pytest.raises(client.exceptions.ModelError) as raised:
        invoke(client, "hi [[fault:model_error]]")
    error = raised.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert error["OriginalStatusCode"] == 500
    assert json.loads(error["OriginalMessage"])["error_type"] == "generation"
    assert error["LogStreamArn"] == (
        f"arn:aws:logs:us-east-1:000000000000:log-group:/aws/sagemaker/Endpoints/{ENDPOINT}"
    )
    assert error["Error"]["Message"].startswith("Received server error (500) from primary")


def test_non_streaming_validation_failure_is_a_model_error_with_tgis_422(client: Any) -> None:
    with pytest.raises(client.exceptions.ModelError) as raised:
        invoke(client, "hi", stream=False, temperature=0)
    error = raised.value.response
    assert error["OriginalStatusCode"] == 422
    assert json.loads(error["OriginalMessage"]) == {
        "error": "Input validation error: `temperature` must be strictly positive",
        "error_type": "validation",
    }


def test_a_body_that_is_not_json_is_a_model_error(client: Any) -> None:
    with pytest.raises(client.exceptions.ModelError) as raised:
        client.invoke_endpoint_with_response_stream(
            EndpointName=ENDPOINT, Body=b"not json", ContentType="application/json"
        )
    assert raised.value.response["OriginalStatusCode"] == 400


def test_a_body_without_inputs_is_a_model_error_from_deserialization(client: Any) -> None:
    with pytest.raises(client.exceptions.ModelError) as raised:
        client.invoke_endpoint_with_response_stream(
            EndpointName=ENDPOINT, Body=b'{"prompt": "hi"}', ContentType="application/json"
        )
    error = raised.value.response
    assert error["OriginalStatusCode"] == 422
    assert "missing field `inputs`" in error["OriginalMessage"]


def test_a_malformed_directive_is_refused_up_front(client: Any) -> None:
    with pytest.raises(ClientError) as raised:
        invoke(client, "hi [[fault:nonsense]]")
    assert raised.value.response["Error"]["Code"] == "ValidationError"
    assert raised.value.response["Error"]["Message"].startswith("jumpstream emulator:")


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"temperature": 0}, "`temperature` must be strictly positive"),
        ({"top_p": 1.0}, "`top_p` must be > 0.0 and < 1.0"),
        ({"top_k": 0}, "`top_k` must be strictly positive"),
        ({"max_new_tokens": 0}, "`max_new_tokens` must be strictly positive"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "`stop` supports up to 4 stop sequences"),
        ({"best_of": 2, "do_sample": True}, "`best_of` != 1 is not supported when streaming"),
        ({"max_new_tokens": 2047}, "`inputs` tokens + `max_new_tokens` must be <= 2048"),
    ],
)
def test_invalid_streaming_requests_get_tgis_in_stream_validation_error(
    client: Any, parameters: dict[str, Any], message: str
) -> None:
    response = invoke(client, "two words", **parameters)
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    (event,) = parse_sse(b"".join(payload_parts(response)))
    assert event["error_type"] == "validation"
    assert event["error"].startswith("Input validation error: ")
    assert message in event["error"]


@pytest.mark.parametrize("kind", ["validation", "overloaded", "generation"])
def test_tgi_error_faults_arrive_as_an_error_event_after_n_tokens(client: Any, kind: str) -> None:
    events = parse_sse(b"".join(payload_parts(invoke(client, f"hi[[fault:{kind}@3]]"))))
    assert [e["index"] for e in events[:3]] == [1, 2, 3]
    assert set(events[3]) == {"error", "error_type"}
    assert events[3]["error_type"] == kind
    assert len(events) == 4


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        ("stream_broken", "ModelStreamError"),
        ("timeout", "ModelStreamError"),
        ("internal_stream", "InternalStreamFailure"),
    ],
)
def test_sagemaker_stream_faults_raise_event_stream_error_mid_iteration(
    client: Any, kind: str, code: str
) -> None:
    received, error = parts_until_error(invoke(client, f"hi[[fault:{kind}@2]]"))
    assert len(parse_sse(b"".join(received))) == 2
    assert error.response["Error"]["Code"] == code
    assert error.response["Error"]["Message"]


@pytest.mark.parametrize(
    ("kind", "error_code"),
    [("stream_broken", "StreamBroken"), ("timeout", "ModelInvocationTimeExceeded")],
)
def test_model_stream_error_payloads_carry_the_error_code(
    url: str, kind: str, error_code: str
) -> None:
    # boto3 keeps only Code and Message; check the wire for ErrorCode.
    reply = httpx.post(
        f"{url}/endpoints/{ENDPOINT}/invocations-response-stream",
        content=tgi_body(f"hi[[fault:{kind}]]"),
        headers=signed_headers(url, tgi_body(f"hi[[fault:{kind}]]")),
        timeout=10,
    )
    buffer = EventStreamBuffer()
    buffer.add_data(reply.content)
    (message,) = list(buffer)
    assert message.headers[":exception-type"] == "ModelStreamError"
    assert json.loads(message.payload)["ErrorCode"] == error_code


def test_truncate_ends_the_stream_without_its_final_event(url: str, client: Any) -> None:
    response = invoke(client, "hi[[fault:truncate@4]]")
    events = parse_sse(b"".join(payload_parts(response)))
    assert len(events) == 4
    assert all(e["generated_text"] is None for e in events)
    assert not any(e["token"]["special"] for e in events)
    assert stream_record(url, request_id(response))["state"] == "completed"


def test_stall_keeps_the_stream_open_until_the_client_leaves(url: str) -> None:
    impatient = sagemaker_client(url, read_timeout=1)
    response = invoke(impatient, "hi[[fault:stall@2]]")
    stream_id = request_id(response)
    events = iter(response["Body"])
    first_two = [next(events), next(events)]
    assert len(parse_sse(b"".join(e["PayloadPart"]["Bytes"] for e in first_two))) == 2
    assert stream_record(url, stream_id) == {
        "id": stream_id,
        "state": "open",
        "tokens_sent": 2,
        "held": False,
    }
    # Nothing more comes (botocore lets urllib3's read timeout through mid-iteration).
    with pytest.raises(ReadTimeoutError):
        next(events)
    response["Body"].close()
    record = wait_for_record(url, stream_id, lambda r: r["state"] != "open")
    assert record["state"] == "disconnected"


def signed_headers(url: str, body: bytes, *, service: str = "sagemaker") -> dict[str, str]:
    """The headers of a request to the invoke route, signed with SigV4 as botocore signs."""
    request = AWSRequest(
        method="POST",
        url=f"{url}/endpoints/{ENDPOINT}/invocations-response-stream",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    SigV4Auth(Credentials("local", "local"), service, "us-east-1").add_auth(request)
    return dict(request.headers.items())


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({"Content-Type": "application/json"}, 403, "MissingAuthenticationTokenException"),
        (
            {"Content-Type": "application/json", "Authorization": "Bearer x"},
            403,
            "InvalidSignatureException",
        ),
    ],
)
def test_an_unsigned_request_is_refused_as_aws_refuses_it(
    url: str, headers: dict[str, str], status: int, code: str
) -> None:
    reply = httpx.post(
        f"{url}/endpoints/{ENDPOINT}/invocations-response-stream",
        content=tgi_body("hi"),
        headers=headers,
        timeout=10,
    )
    assert reply.status_code == status
    assert reply.headers["x-amzn-errortype"].startswith(code + ":")


def test_a_signature_for_another_service_is_refused(url: str) -> None:
    body = tgi_body("hi")
    reply = httpx.post(
        f"{url}/endpoints/{ENDPOINT}/invocations-response-stream",
        content=body,
        headers=signed_headers(url, body, service="lambda"),
        timeout=10,
    )
    assert reply.status_code == 403
    assert "sagemaker" in reply.json()["message"]
