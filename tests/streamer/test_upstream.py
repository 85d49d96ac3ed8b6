"""upstream.py (the relay's HTTP client over network.py, botocore's signer, event-stream and
error parsers) against a loopback SageMaker stand-in."""

from __future__ import annotations

import itertools
import json
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import trustme
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.eventstream import EventStreamBuffer, ParserError
from botocore.exceptions import (
    EventStreamError,
)
from hypothesis import given
from hypothesis import settings as settings_hypothesis
from hypothesis import strategies as st
from streamer import aws
from streamer.app import create_app
from streamer.contract import SERVICE_NAME
from streamer.errors import UpstreamError
from streamer.upstream import (
    SageMakerUpstream,
    _EventStreamBuffer,
)

from tests.streamer.support import (
    HANG_GUARD_SECONDS,
    RETRY_AFTER_BUSY_SECONDS,
    RETRY_AFTER_NO_CAPACITY_SECONDS,
    ErrorReply,
    EventStreamServer,
    Pause,
    Stall,
    answer_events,
    asgi_post,
    call,
    calls,
    payload_part,
    settings,
    stream_exception,
    token_event,
)


def use_server(monkeypatch: pytest.MonkeyPatch, running: EventStreamServer) -> None:
    """Reach the stand-in the way a deployment would reach an emulator: by botocore's own
    AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME, never an endpoint URL in code."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", running.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    for scheme in ("http", "https", "all", "no"):
        monkeypatch.delenv(f"{scheme}_proxy", raising=False)
        monkeypatch.delenv(f"{scheme.upper()}_PROXY", raising=False)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[EventStreamServer]:
    with EventStreamServer() as running:
        use_server(monkeypatch, running)
        yield running


@pytest.fixture
def authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_server(
    monkeypatch: pytest.MonkeyPatch, authority: trustme.CA
) -> Iterator[EventStreamServer]:
    """The stand-in over https, with a certificate for 127.0.0.1 from a CA of the test's own."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    with EventStreamServer(tls=context) as running:
        use_server(monkeypatch, running)
        yield running


def upstream(**overrides: Any) -> SageMakerUpstream:
    return SageMakerUpstream(settings(**overrides))


async def read_all(stream: Any) -> list[bytes]:
    try:
        return [data async for data in stream]
    finally:
        await stream.aclose()


async def failure_of(stream: Any) -> UpstreamError:
    with pytest.raises(UpstreamError) as caught:
        await read_all(stream)
    return caught.value


def opened_and_read(relay_upstream: SageMakerUpstream, body: bytes) -> list[bytes]:
    """Open a stream and read it to its end, on an event loop of its own."""

    async def run() -> list[bytes]:
        return await read_all(await relay_upstream.open(body))

    return anyio.run(run)


def open_error(relay_upstream: SageMakerUpstream, body: bytes = b"{}") -> UpstreamError:
    """What opening a stream raised."""

    async def run() -> None:
        await relay_upstream.open(body)

    with pytest.raises(UpstreamError) as caught:
        anyio.run(run)
    return caught.value


def test_payload_parts_arrive_as_their_bytes(server: EventStreamServer) -> None:
    parts = [b'data: {"tok', b'en": 1}\n\n', "日本語".encode()[:4], "日本語".encode()[4:]]
    server.reply = [payload_part(part) for part in parts]
    # Parts a read completes together come joined: the decoder takes bytes, wherever cut.
    assert b"".join(opened_and_read(upstream(), b'{"inputs": "x"}')) == b"".join(parts)


def test_the_call_is_invoke_endpoint_with_response_stream(server: EventStreamServer) -> None:
    server.reply = [payload_part(b"x")]
    opened_and_read(upstream(inference_component_name="ic-1"), b'{"inputs": "hi"}')
    ((path, headers, body),) = server.requests
    assert path == "/endpoints/test-endpoint/invocations-response-stream"
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Amzn-SageMaker-Inference-Component"] == "ic-1"
    assert body == b'{"inputs": "hi"}'
    assert "Authorization" in headers  # signed, as SageMaker requires
    assert headers["User-Agent"] == SERVICE_NAME  # who calls, in SageMaker's and CloudTrail's logs


def test_the_signature_holds_for_what_was_sent(server: EventStreamServer) -> None:
    """What SageMaker does with a request: recompute SigV4 from the headers the request says it
    signed, as they arrived (Host as the relay wrote it, the body as sent), and compare.
    botocore signed before the relay's HTTP client sent the request, so this is what proves the
    two agree."""
    server.reply = [payload_part(b"x")]
    body = '{"inputs": "署名"}'.encode()
    opened_and_read(upstream(inference_component_name="ic-1"), body)
    ((path, headers, received),) = server.requests
    by_name = {name.lower(): value for name, value in headers.items()}
    authorization = by_name["authorization"]
    signed_names = authorization.split("SignedHeaders=")[1].split(",")[0].split(";")
    assert {"host", "x-amz-date", "content-type"} <= set(signed_names)
    request = AWSRequest(
        method="POST",
        url=server.url + path,
        data=received,
        headers={name: by_name[name] for name in signed_names},
    )
    request.context["timestamp"] = by_name["x-amz-date"]
    signer = SigV4Auth(Credentials("AKIDTEST", "test-secret"), "sagemaker", "us-east-1")
    string_to_sign = signer.string_to_sign(request, signer.canonical_request(request))
    assert received == body
    assert authorization.endswith("Signature=" + signer.signature(string_to_sign, request))


def test_no_inference_component_header_unless_configured(server: EventStreamServer) -> None:
    server.reply = [payload_part(b"x")]
    opened_and_read(upstream(), b"{}")
    ((_, headers, _),) = server.requests
    assert "X-Amzn-SageMaker-Inference-Component" not in headers


@pytest.mark.parametrize(
    ("exception", "body", "kind", "status"),
    [
        (
            "ModelStreamError",
            {
                "Message": "Model invocation time exceeded",
                "ErrorCode": "ModelInvocationTimeExceeded",
            },
            "upstream_timeout",
            504,
        ),
        (
            "ModelStreamError",
            {"Message": "ModelInvocationTimeExceeded", "ErrorCode": "ModelInvocationTimeExceeded"},
            "upstream_timeout",
            504,
        ),
        (
            "ModelStreamError",
            {"Message": "The stream broke.", "ErrorCode": "StreamBroken"},
            "upstream_error",
            502,
        ),
        ("InternalStreamFailure", {"Message": "failed"}, "upstream_error", 502),
    ],
)
def test_exceptions_in_the_stream(
    server: EventStreamServer, exception: str, body: dict[str, str], kind: str, status: int
) -> None:
    gate = threading.Event()
    server.reply = [
        payload_part(b"data: first\n\n"),
        Pause(gate),
        stream_exception(exception, body),
    ]

    async def run() -> UpstreamError:
        stream = await upstream().open(b"{}")
        assert await stream.__anext__() == b"data: first\n\n"
        gate.set()
        return await failure_of(stream)

    error = anyio.run(run)
    assert (error.kind, error.status) == (kind, status)
    assert exception in (error.detail or "")


def test_text_before_an_exception_in_the_same_read_comes_first(server: EventStreamServer) -> None:
    exception = stream_exception("ModelStreamError", {"Message": "m", "ErrorCode": "StreamBroken"})
    server.reply = [payload_part(b"data: first\n\n") + exception]

    async def run() -> tuple[bytes, UpstreamError]:
        stream = await upstream().open(b"{}")
        first = await stream.__anext__()
        return first, await failure_of(stream)

    first, error = anyio.run(run)
    assert first == b"data: first\n\n"
    assert (error.kind, error.status) == ("upstream_error", 502)
    assert "StreamBroken" in (error.detail or "")


def test_a_corrupt_event_stream_is_a_502(server: EventStreamServer) -> None:
    part = bytearray(payload_part(b"data: x\n\n"))
    part[-1] ^= 0xFF  # the message CRC no longer matches
    server.reply = [bytes(part)]

    async def run() -> UpstreamError:
        return await failure_of(await upstream().open(b"{}"))

    error = anyio.run(run)
    assert (error.kind, error.status) == ("upstream_error", 502)
    assert "Checksum" in (error.detail or "")


def test_botocore_drops_the_error_code_of_stream_exceptions(server: EventStreamServer) -> None:
    """Why upstream.py parses exception messages itself, and still reads the message when the
    code is missing: ErrorCode does not survive botocore's own event stream."""
    import botocore.session
    from botocore.config import Config

    client = botocore.session.get_session().create_client(
        "sagemaker-runtime",
        region_name=settings().region,
        config=Config(retries={"total_max_attempts": 1}),
    )
    server.reply = [
        stream_exception("ModelStreamError", {"Message": "m", "ErrorCode": "StreamBroken"})
    ]
    response = client.invoke_endpoint_with_response_stream(EndpointName="e", Body=b"{}")
    with pytest.raises(EventStreamError) as caught:
        list(response["Body"])
    assert caught.value.response == {"Error": {"Code": "ModelStreamError", "Message": "m"}}


def test_a_silent_stream_times_out_as_504(server: EventStreamServer) -> None:
    gate = threading.Event()
    server.reply = [payload_part(b"data: first\n\n"), Pause(gate)]

    async def run() -> UpstreamError:
        stream = await upstream(upstream_read_timeout_seconds=0.2).open(b"{}")
        assert await stream.__anext__() == b"data: first\n\n"
        return await failure_of(stream)

    try:
        error = anyio.run(run)
    finally:
        gate.set()
    assert (error.kind, error.status) == ("upstream_timeout", 504)
    assert "ReadTimeout" in (error.detail or "")


@pytest.mark.parametrize(
    ("reply", "kind", "status", "retry_after"),
    [
        (
            ErrorReply(400, "ThrottlingException", {"message": "Rate exceeded"}),
            "throttled",
            503,
            RETRY_AFTER_BUSY_SECONDS,
        ),
        (
            ErrorReply(503, "ServiceUnavailable", {"Message": "Try again"}),
            "unavailable",
            503,
            RETRY_AFTER_BUSY_SECONDS,
        ),
        (
            ErrorReply(
                400,
                "ValidationError",
                {"Message": "Inference Component has no capacity to process this request."},
            ),
            "no_capacity",
            503,
            RETRY_AFTER_NO_CAPACITY_SECONDS,
        ),
        (
            ErrorReply(
                400, "ValidationError", {"Message": "Endpoint e of account 1234 not found."}
            ),
            "upstream_error",
            502,
            None,
        ),
        (ErrorReply(500, "InternalFailure", {"Message": "x"}), "upstream_error", 502, None),
    ],
)
def test_refusals_before_the_stream_are_tried_once(
    server: EventStreamServer, reply: ErrorReply, kind: str, status: int, retry_after: int | None
) -> None:
    server.reply = reply
    error = open_error(upstream())
    assert (error.kind, error.status, error.retry_after) == (kind, status, retry_after)
    assert len(server.requests) == 1  # no automatic retries: the caller decides
    assert "1234" not in error.message


def model_error_reply(status: int, original: str) -> ErrorReply:
    """SageMaker's 424 for a container that answered `status` with the body `original`."""
    kind = "client" if status < 500 else "server"
    return ErrorReply(
        424,
        "ModelError",
        {
            "Message": f"Received {kind} error ({status}) from primary",
            "OriginalStatusCode": status,
            "OriginalMessage": original,
            "LogStreamArn": "arn:aws:logs:us-east-1:1234:log-group:/aws/sagemaker/Endpoints/e",
        },
    )


def model_error_of(server: EventStreamServer, status: int, original: str) -> UpstreamError:
    server.reply = model_error_reply(status, original)
    error = open_error(upstream())
    assert "arn:aws" not in error.message
    return error


def test_a_model_error_for_a_refused_request_is_a_422_with_tgis_reason(
    server: EventStreamServer,
) -> None:
    reason = "Input validation error: `temperature` must be strictly positive"
    original = json.dumps({"error": reason, "error_type": "validation"})
    error = model_error_of(server, 422, original)
    assert (error.kind, error.status, error.retry_after) == ("validation", 422, None)
    assert reason in error.message


@pytest.mark.parametrize(
    ("status", "original"),
    [
        # TGI's own JSON with the type, even under another status.
        (
            400,
            json.dumps(
                {"error": "`inputs` must have less than 1024 tokens", "error_type": "validation"}
            ),
        ),
        # TGI >= 2.4.1 spelling: no error_type, the status inside.
        (422, json.dumps({"error": {"message": "`inputs` too long", "http_status_code": 422}})),
        # axum refusing a body it cannot deserialize: plain text, status 422.
        (422, "Failed to deserialize the JSON body into the target type: inputs: invalid type"),
    ],
)
def test_every_spelling_of_a_refused_request_is_a_422(
    server: EventStreamServer, status: int, original: str
) -> None:
    error = model_error_of(server, status, original)
    assert (error.kind, error.status) == ("validation", 422)
    assert error.message.startswith("The model rejected the request: ")
    assert "\n" not in error.message


@pytest.mark.parametrize(
    ("status", "original"),
    [
        (429, json.dumps({"error": "Model is overloaded", "error_type": "overloaded"})),
        (429, "Too Many Requests"),
        (503, json.dumps({"error": "Model is overloaded", "error_type": "overloaded"})),
    ],
)
def test_a_model_error_for_an_overloaded_model_is_a_503_to_retry(
    server: EventStreamServer, status: int, original: str
) -> None:
    error = model_error_of(server, status, original)
    assert (error.kind, error.status, error.retry_after) == (
        "overloaded",
        503,
        RETRY_AFTER_BUSY_SECONDS,
    )


@pytest.mark.parametrize(
    ("status", "original", "shown"),
    [
        (500, json.dumps({"error": "CUDA error", "error_type": "generation"}), "CUDA error"),
        (500, "Traceback (most recent call last): secret internals", None),
        (424, json.dumps({"error": "Request failed during generation"}), "during generation"),
    ],
)
def test_other_model_errors_stay_502(
    server: EventStreamServer, status: int, original: str, shown: str | None
) -> None:
    error = model_error_of(server, status, original)
    assert (error.kind, error.status, error.retry_after) == ("model_error", 502, None)
    assert f"HTTP {status}" in error.message
    if shown is None:
        assert "secret" not in error.message
    else:
        assert shown in error.message


@pytest.mark.parametrize(
    ("engine", "status", "original"),
    [
        ("lmi", 400, json.dumps({"error": "max_tokens must be at least 1", "code": 400})),
        (
            "vllm",
            400,
            json.dumps(
                {"error": {"message": "max_tokens must be at least 1", "type": "BadRequestError"}}
            ),
        ),
    ],
)
def test_a_model_error_is_read_by_the_models_engine(
    server: EventStreamServer, engine: str, status: int, original: str
) -> None:
    server.reply = model_error_reply(status, original)
    error = open_error(upstream(serving_engine=engine))
    assert (error.kind, error.status) == ("validation", 422)
    assert error.message == "The model rejected the request: max_tokens must be at least 1."
    # TGI reads no reason out of another engine's JSON: its own shapes only.
    assert open_error(upstream(serving_engine="tgi")).message != error.message


def test_a_silent_endpoint_before_the_stream_times_out_as_504(server: EventStreamServer) -> None:
    gate = threading.Event()
    server.reply = Stall(gate)
    try:
        error = open_error(upstream(upstream_read_timeout_seconds=0.2))
    finally:
        gate.set()
    assert (error.kind, error.status) == ("upstream_timeout", 504)


def test_nothing_listening_is_a_502(
    monkeypatch: pytest.MonkeyPatch, server: EventStreamServer
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", "http://127.0.0.1:9")
    error = open_error(upstream())
    assert (error.kind, error.status) == ("upstream_error", 502)


def test_a_waiting_read_ends_when_the_relay_gives_up_on_it(server: EventStreamServer) -> None:
    """The relay cancels a read when the client leaves or the deadline comes, then closes the
    stream: both end at once, long before the server sends again or the read times out."""
    gate = threading.Event()
    server.reply = [payload_part(b"first"), Pause(gate), payload_part(b"late")]

    async def run() -> tuple[list[bytes], bool]:
        stream = await upstream(upstream_read_timeout_seconds=HANG_GUARD_SECONDS).open(b"{}")
        first = await stream.__anext__()
        with anyio.move_on_after(0.2) as waited:
            await stream.__anext__()
        with anyio.fail_after(HANG_GUARD_SECONDS / 2):
            await stream.aclose()
        return [first], waited.cancelled_caught

    try:
        read, cancelled = anyio.run(run)
    finally:
        gate.set()
    assert read == [b"first"]
    assert cancelled


def test_credentials_come_from_botocores_chain(
    server: EventStreamServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A session token (what Lambda's role gives) is signed in, as boto3 would."""
    monkeypatch.setenv("AWS_SESSION_TOKEN", "token-from-the-chain")
    server.reply = [payload_part(b"x")]
    opened_and_read(upstream(), b"{}")
    ((_, headers, _),) = server.requests
    assert headers["X-Amz-Security-Token"] == "token-from-the-chain"
    assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDTEST/")
    assert "/us-east-1/sagemaker/aws4_request" in headers["Authorization"]


def test_no_credentials_is_a_502_not_a_crash(
    server: EventStreamServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    ):
        monkeypatch.delenv(name, raising=False)
    error = open_error(upstream())
    assert (error.kind, error.status) == ("upstream_error", 502)
    assert "NoCredentials" in (error.detail or "")
    assert server.requests == []


def test_after_a_snapstart_restore_the_next_call_signs_with_the_restored_credentials(
    server: EventStreamServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A snapshot is restored days after it was taken, in another sandbox: the credentials
    found before it are not the restored environment's. After the hook, the next call finds
    them again, on a connection of its own."""
    server.reply = [payload_part(b"x")]
    relay_upstream = upstream()

    async def run() -> None:
        await read_all(await relay_upstream.open(b"{}"))
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDRESTORED")
        await read_all(await relay_upstream.open(b"{}"))  # still the snapshot's
        await relay_upstream.after_restore()
        assert aws._signing_key.cache_info().currsize == 0  # no key of the snapshot's secret
        await read_all(await relay_upstream.open(b"{}"))

    anyio.run(run)
    keys = [
        headers["Authorization"].split("Credential=")[1].split("/")[0]
        for _, headers, _ in server.requests
    ]
    assert keys == ["AKIDTEST", "AKIDTEST", "AKIDRESTORED"]


def test_the_whole_relay_over_the_loopback_endpoint(server: EventStreamServer) -> None:
    whole = b"".join(answer_events(["東京", "です"]))
    server.reply = [payload_part(whole[:7]), payload_part(whole[7:50]), payload_part(whole[50:])]
    app = create_app(settings())
    response = call(
        app, json_body={"inputs": "首都は?"}, headers={"accept": "application/x-ndjson"}
    )
    assert response.status_code == 200
    assert [json.loads(line) for line in response.text.splitlines()] == [
        {"event": "token", "text": "東京"},
        {"event": "token", "text": "です"},
        {"event": "done", "finish_reason": "eos_token", "generated_tokens": 3},
    ]
    ((_, _, body),) = server.requests
    assert json.loads(body) == {
        "inputs": "首都は?",
        "parameters": {"details": True, "max_new_tokens": 100, "return_full_text": False},
        "stream": True,
    }


def test_parts_that_arrived_together_leave_in_one_write(server: EventStreamServer) -> None:
    """A client slower than the model finds several PayloadParts waiting: they are decoded and
    sent as one body message, not one per token."""
    first, second, third, final = answer_events(["一", "二", "三"])
    server.reply = [payload_part(first) + payload_part(second) + payload_part(third)]
    server.reply.append(payload_part(final))
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asgi_post(create_app(settings()), json.dumps({"inputs": "x"}).encode(), send)
    bodies = [m["body"] for m in sent if m["type"] == "http.response.body" and m["body"]]
    assert bodies[0] == "一二三".encode()


def test_a_complete_answer_leaves_its_connection_for_the_next_request(
    server: EventStreamServer,
) -> None:
    """The relay reads a finished stream to its end, so urllib3 pools the connection and the next
    call skips a new connection (a TLS handshake to SageMaker)."""
    server.reply = [payload_part(event) for event in answer_events(["再", "利用"])]
    app = create_app(settings())
    for response in calls(app, 3, json_body={"inputs": "x"}):
        assert response.text == "再利用"
    assert len(server.peers) == 3
    assert len(set(server.peers)) == 1, server.peers


def test_a_failed_answer_does_not_leave_its_connection(server: EventStreamServer) -> None:
    server.reply = [
        payload_part(token_event("cut")),
        stream_exception("ModelStreamError", {"Message": "broken", "ErrorCode": "StreamBroken"}),
        payload_part(b"left unread"),
    ]
    app = create_app(settings())
    for response in calls(app, 2, json_body={"inputs": "x"}):
        assert response.status_code == 200
    assert len(set(server.peers)) == 2, server.peers


def test_concurrent_answers_each_keep_their_connection(server: EventStreamServer) -> None:
    """More streams at once than botocore's old pool of 50: every connection goes back to the
    pool, so a second round reuses them all instead of opening new ones."""
    gate = threading.Event()
    server.reply = [Pause(gate), *(payload_part(event) for event in answer_events(["ok"]))]
    app = create_app(settings())
    streams = 60

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://relay") as client:
            results: list[httpx.Response] = []

            async def one() -> None:
                results.append(await client.post("/", json={"inputs": "x"}))

            async with anyio.create_task_group() as group:
                for _ in range(streams):
                    group.start_soon(one)
                with anyio.fail_after(HANG_GUARD_SECONDS):
                    while len(server.requests) < streams:
                        await anyio.sleep(0.01)
                gate.set()
            server.reply = [payload_part(event) for event in answer_events(["ok"])]
            async with anyio.create_task_group() as group:
                for _ in range(streams):
                    group.start_soon(one)
            return results

    try:
        responses = anyio.run(run)
    finally:
        gate.set()
    assert [response.text for response in responses] == ["ok"] * (2 * streams)
    assert len(set(server.peers)) == streams


def test_starting_reads_no_credentials(
    server: EventStreamServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What SnapStart snapshots is the relay as it starts: it must hold no credentials then.
    The client made for the endpoint's URL does not look for any; the first call does."""
    import botocore.session

    looked: list[str] = []
    original = botocore.session.Session.get_credentials

    def spy(session: Any) -> Any:
        looked.append("get_credentials")
        return original(session)

    monkeypatch.setattr(botocore.session.Session, "get_credentials", spy)
    relay_upstream = upstream()
    assert looked == []
    server.reply = [payload_part(b"x")]
    opened_and_read(relay_upstream, b"{}")
    assert looked == ["get_credentials"]


def test_tls_to_sagemaker_is_verified_against_botocores_ca_bundle(
    tls_server: EventStreamServer,
    authority: trustme.CA,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """The relay trusts what botocore would: here the CA bundle AWS_CA_BUNDLE names."""
    bundle = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("AWS_CA_BUNDLE", str(bundle))
    tls_server.reply = [payload_part(b"over tls")]
    assert opened_and_read(upstream(), b"{}") == [b"over tls"]


def test_tls_to_a_certificate_botocore_does_not_trust_is_a_502(
    tls_server: EventStreamServer,
) -> None:
    tls_server.reply = [payload_part(b"never sent")]
    error = open_error(upstream())
    assert (error.kind, error.status) == ("upstream_error", 502)
    assert "CERTIFICATE_VERIFY_FAILED" in (error.detail or "")
    assert tls_server.requests == []


def test_a_proxy_in_the_environment_carries_the_call(
    server: EventStreamServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTP_PROXY (here the stand-in itself, answering as a forward proxy would) is used as
    botocore and httpx use it: the request goes to the proxy, for the endpoint's URL, with the
    proxy's credentials."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", "http://runtime.sagemaker.test:8080")
    monkeypatch.setenv("HTTP_PROXY", server.url.replace("://", "://relay:s%40cret@"))
    server.reply = [payload_part(b"via the proxy")]
    assert opened_and_read(upstream(), b"{}") == [b"via the proxy"]
    ((target, headers, _),) = server.requests
    endpoint = "http://runtime.sagemaker.test:8080/endpoints/test-endpoint"
    assert target == f"{endpoint}/invocations-response-stream"
    assert headers["Proxy-Authorization"] == "Basic cmVsYXk6c0BjcmV0"  # relay:s@cret


def test_no_proxy_names_the_hosts_reached_directly(
    server: EventStreamServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    server.reply = [payload_part(b"direct")]
    assert opened_and_read(upstream(), b"{}") == [b"direct"]


# --- the event-stream parse -------------------------------------------------------------------


def _botocores_messages(pieces: list[bytes]) -> list[Any]:
    """What botocore's own buffer parses from `pieces` fed in turn: each message's headers and
    payload, or the error."""
    buffer = EventStreamBuffer()
    parsed: list[Any] = []
    try:
        for piece in pieces:
            buffer.add_data(piece)
            for message in buffer:
                parsed.append((message.headers, message.payload))
    except ParserError as error:
        parsed.append((type(error), str(error)))
    return parsed


def _relays_messages(buffer: _EventStreamBuffer, pieces: list[bytes]) -> list[Any]:
    """The same through the relay's `next_message`."""
    parsed: list[Any] = []
    try:
        for piece in pieces:
            buffer.add_data(piece)
            while (message := buffer.next_message()) is not None:
                parsed.append(message)
    except ParserError as error:
        parsed.append((type(error), str(error)))
    return parsed


@settings_hypothesis(max_examples=200, deadline=None)
@given(
    payloads=st.lists(st.binary(max_size=300), min_size=1, max_size=12),
    cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=12),
    flipped=st.one_of(st.none(), st.integers(min_value=0, max_value=4000)),
)
def test_the_relays_event_stream_parse_is_botocores(
    payloads: list[bytes], cuts: list[int], flipped: int | None
) -> None:
    """Any stream of PayloadParts and a ModelStreamError, cut anywhere, a bit flipped anywhere
    or nowhere: the relay's parser (`next_message`, in one method) gives botocore's messages'
    headers and payloads, or botocore's error, in the same place; and so does its fallback for
    another botocore, which goes through botocore's own `next`."""
    # The installed botocore keeps its state as expected: the relay's own parse runs.
    assert _EventStreamBuffer.next_message is _EventStreamBuffer._next_message_in_one
    stream = bytearray(
        b"".join(payload_part(payload) for payload in payloads)
        + stream_exception("ModelStreamError", {"Message": "m", "ErrorCode": "StreamBroken"})
    )
    if flipped is not None:
        stream[flipped % len(stream)] ^= 0x10
    points = sorted({cut % len(stream) for cut in cuts} | {0, len(stream)})
    pieces = [bytes(stream[a:b]) for a, b in itertools.pairwise(points)]
    expected = _botocores_messages(pieces)
    assert _relays_messages(_EventStreamBuffer(), pieces) == expected
    by_botocore = _EventStreamBuffer()
    by_botocore.next_message = by_botocore._next_message_by_botocore  # type: ignore[method-assign]
    assert _relays_messages(by_botocore, pieces) == expected
