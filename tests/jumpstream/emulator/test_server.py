"""The emulator's app, run for real on loopback, streamed from with the real boto3 client: what it
answers, which endpoint and component it serves, and its health route."""

from __future__ import annotations

import json
import re
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.jumpstream.emulator.emulator_harness import (
    ENDPOINT,
    control,
    invoke,
    parse_sse,
    parts_until_error,
    payload_parts,
    request_id,
    running_emulator,
    sagemaker_client,
    stream_record,
    tgi_body,
)

KANA = re.compile(r"[\u3040-\u30ff]")


def stream(client: Any, inputs: str, **parameters: Any) -> tuple[list[bytes], list[Any]]:
    parts = payload_parts(invoke(client, inputs, **parameters))
    return parts, parse_sse(b"".join(parts))


def visible_text(events: list[Any]) -> str:
    return "".join(e["token"]["text"] for e in events if not e["token"]["special"])


def test_parts_concatenate_to_tgi_sse_ending_with_the_eos_token(client: Any) -> None:
    response = invoke(client, "What is streaming?")
    assert response["ContentType"] == "text/event-stream"
    assert response["InvokedProductionVariant"] == "AllTraffic"
    headers = response["ResponseMetadata"]["HTTPHeaders"]
    assert headers["content-type"] == "application/vnd.amazon.eventstream"
    parts = payload_parts(response)
    events = parse_sse(b"".join(parts))
    assert len(parts) == len(events)
    assert [e["index"] for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["token"] == {**events[-1]["token"], "text": "<|endoftext|>", "special": True}
    assert not any(e["token"]["special"] for e in events[:-1])
    assert all(e["generated_text"] is None for e in events[:-1])
    assert events[-1]["generated_text"] == "What is streaming?" + visible_text(events)
    assert all(e["details"] is None for e in events)


def test_a_japanese_prompt_streams_japanese_bytes_intact(client: Any) -> None:
    parts, events = stream(client, "日本の首都はどこですか？", details=True)
    text = visible_text(events)
    assert KANA.search(text)
    assert events[-1]["generated_text"] == "日本の首都はどこですか？" + text
    # Raw UTF-8 on the wire, not \u escapes.
    assert text.split("、")[0].encode("utf-8") in b"".join(parts)
    assert events[-1]["details"]["finish_reason"] == "eos_token"
    assert events[-1]["details"]["generated_tokens"] == len(events)


def test_max_new_tokens_is_honoured(client: Any) -> None:
    _, events = stream(client, "What is streaming?", max_new_tokens=5, details=True)
    assert len(events) == 5
    assert not events[-1]["token"]["special"]
    assert events[-1]["details"]["finish_reason"] == "length"
    assert events[-1]["generated_text"] is not None


def test_return_full_text_false_omits_the_prompt(client: Any) -> None:
    _, events = stream(client, "What is streaming?", return_full_text=False)
    assert events[-1]["generated_text"] == visible_text(events)


def test_a_body_without_stream_true_gets_one_json_part(client: Any) -> None:
    response = invoke(client, "What is streaming?", stream=False)
    assert response["ContentType"] == "application/json"
    parts = payload_parts(response)
    assert len(parts) == 1
    (reply,) = json.loads(parts[0])
    _, events = stream(client, "What is streaming?")
    assert reply == {"generated_text": events[-1]["generated_text"]}


def test_stream_inside_parameters_does_not_stream(client: Any) -> None:
    response = client.invoke_endpoint_with_response_stream(
        EndpointName=ENDPOINT,
        Body=json.dumps({"inputs": "hi", "parameters": {"stream": True}}),
        ContentType="application/json",
    )
    (part,) = payload_parts(response)
    assert json.loads(part)[0]["generated_text"].startswith("hi")


def test_an_unknown_endpoint_is_sagemakers_validation_error(client: Any) -> None:
    with pytest.raises(ClientError) as raised:
        client.invoke_endpoint_with_response_stream(
            EndpointName="no-such-endpoint", Body=tgi_body("hi"), ContentType="application/json"
        )
    error = raised.value.response
    assert error["Error"]["Code"] == "ValidationError"
    assert error["Error"]["Message"] == (
        "Endpoint no-such-endpoint of account 000000000000 not found."
    )
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert isinstance(raised.value, client.exceptions.ValidationError)


def test_split_1_sends_one_byte_parts_that_rebuild_the_same_stream(client: Any) -> None:
    plain, events = stream(client, "Tell me more", max_new_tokens=12)
    split, split_events = stream(client, "Tell me more[[split:1]]", max_new_tokens=12)
    assert all(len(part) == 1 for part in split)
    assert b"".join(split) == b"".join(plain)
    assert split_events == events


def test_split_1_cuts_japanese_characters_yet_they_arrive_intact(client: Any) -> None:
    plain, _ = stream(client, "こんにちは", max_new_tokens=10)
    split, events = stream(client, "こんにちは[[split:1]]", max_new_tokens=10)
    assert b"".join(split) == b"".join(plain)
    with pytest.raises(UnicodeDecodeError):
        b"".join(split[: b"".join(split).index("ち".encode()) + 1]).decode("utf-8")
    assert KANA.search(visible_text(events))


def test_split_random_is_deterministic_and_within_bounds(client: Any) -> None:
    plain, _ = stream(client, "Tell me more", max_new_tokens=20)
    first, _ = stream(client, "Tell me more[[split:random]]", max_new_tokens=20)
    second, _ = stream(client, "Tell me more[[split:random]]", max_new_tokens=20)
    assert [len(part) for part in first] == [len(part) for part in second]
    assert all(1 <= len(part) <= 40 for part in first)
    assert len({len(part) for part in first}) > 1
    assert b"".join(first) == b"".join(plain)


def test_old_tgi_spellings_parse_to_the_same_events(client: Any) -> None:
    plain, events = stream(client, "Tell me more", max_new_tokens=9)
    odd, odd_events = stream(
        client, "Tell me more[[nospace]][[crlf]][[keepalive]]", max_new_tokens=9
    )
    data = b"".join(odd)
    assert data.startswith(b":\r\n\r\n")
    assert b"\ndata:{" in data
    assert b"data: " not in data
    assert odd_events == events
    assert data != b"".join(plain)


def test_the_request_id_names_the_stream_record(url: str, client: Any) -> None:
    response = invoke(client, "hi", max_new_tokens=3)
    payload_parts(response)
    record = stream_record(url, request_id(response))
    assert record == {
        "id": request_id(response),
        "state": "completed",
        "tokens_sent": 3,
        "held": False,
    }


def test_a_repeated_body_is_answered_alike_each_time_with_a_stream_of_its_own(
    url: str, client: Any
) -> None:
    """The emulator keeps the reply it built for a body (`_remember`): the same request again
    gets the same bytes, a new request id and record, and its directives played anew (here a
    fault after two tokens, once per stream)."""
    readings = []
    for _ in range(3):
        response = invoke(client, "again [[fault:stream_broken@2]]", max_new_tokens=5)
        parts, error = parts_until_error(response)
        readings.append((parts, error.response["Error"]["Code"], request_id(response)))
    assert readings[0][:2] == readings[1][:2] == readings[2][:2]
    assert len({reading[2] for reading in readings}) == 3
    for *_, stream_id in readings:
        assert stream_record(url, stream_id)["tokens_sent"] == 2


def test_boto3_finds_the_emulator_through_the_environment(
    url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "local")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")
    # botocore 1.44 reads AWS_DEFAULT_REGION (Lambda sets both it and AWS_REGION).
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    env_client = boto3.session.Session().client("sagemaker-runtime")
    events = parse_sse(b"".join(payload_parts(invoke(env_client, "hi"))))
    assert events[-1]["token"]["special"]


def test_health(url: str) -> None:
    assert control(url, "GET", "/_emulator/health") == {"status": "ok"}


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
