"""The signing proxy: caller -> proxy -> SigV4-checking function URL stand-in -> real relay.

The stand-in refuses anything not signed exactly as a function URL with AWS_IAM checks it, so a
200 here means the proxy signed the request a deployed URL would accept, and the answer went
through piece by piece.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from botocore.credentials import ReadOnlyCredentials

from jumpstream.client import RefusedError, RelayClient, auth_for
from jumpstream.local import LocalStack, free_port
from jumpstream.proxy import ProxyOptions, create_proxy_app
from tests.e2e.support import (
    HANG_GUARD_SECONDS,
    PROMPT,
    expected_answer,
    expected_tokens,
    generate_body,
    parse_sse,
    stream_ids,
    wait_for_new_stream,
)
from tests.function_url_standin import CREDENTIALS, StandInLog, function_url_standin
from tests.serving import serving

SSE = {"accept": "text/event-stream"}


@pytest.fixture(scope="module")
def standin(stack: LocalStack) -> Iterator[tuple[str, StandInLog]]:
    with function_url_standin(stack.relay_url) as (url, log):
        yield url, log


def _proxy(upstream: str, credentials: ReadOnlyCredentials | None) -> Iterator[httpx.Client]:
    signing = None if credentials is None else ((lambda: credentials), "eu-west-1")
    app = create_proxy_app(ProxyOptions(url=upstream, sign=signing is not None), signing=signing)
    with (
        serving(app) as url,
        httpx.Client(base_url=url, timeout=HANG_GUARD_SECONDS) as client,
    ):
        yield client


@pytest.fixture
def proxy(standin: tuple[str, StandInLog]) -> Iterator[httpx.Client]:
    yield from _proxy(standin[0], CREDENTIALS)


def test_a_request_is_signed_as_a_function_url_checks_it(
    proxy: httpx.Client, standin: tuple[str, StandInLog]
) -> None:
    _, log = standin
    accepted_before = len(log.accepted)
    headers = {**SSE, "authorization": "Bearer sk-what-openai-clients-send"}
    response = proxy.post("/", json=generate_body(PROMPT), headers=headers)
    assert response.status_code == 200, response.text
    tokens = [data["text"] for event, data in parse_sse(response.content) if event == "token"]
    assert "".join(tokens) == expected_answer(PROMPT)
    (received,) = log.accepted[accepted_before:]
    authorization = {k.lower(): v for k, v in received.headers.items()}["authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=ASIAEXAMPLESTANDIN/")
    assert "/eu-west-1/lambda/aws4_request" in authorization


def test_the_answer_passes_through_piece_by_piece(
    proxy: httpx.Client, emulator: httpx.Client
) -> None:
    prompt = f"{PROMPT} [[hold@1]]"
    before = stream_ids(emulator)
    try:
        with proxy.stream("POST", "/", json=generate_body(prompt)) as response:
            assert response.status_code == 200
            pieces = response.iter_raw()
            first = next(pieces)  # a ReadTimeout here means someone on the way buffered
            record = wait_for_new_stream(emulator, before, held=True)
            assert record["tokens_sent"] == 1  # the model is still holding the rest
            assert first.decode() == expected_tokens(prompt)[0]
            emulator.post("/_emulator/release")
            rest = b"".join(pieces)
    finally:
        emulator.post("/_emulator/release")
    assert (first + rest).decode() == expected_answer(prompt)


def test_wrong_credentials_get_the_function_urls_403_through_the_proxy(
    standin: tuple[str, StandInLog],
) -> None:
    url, log = standin
    wrong = ReadOnlyCredentials(CREDENTIALS.access_key, "not-the-secret", CREDENTIALS.token)
    for client in _proxy(url, wrong):
        response = client.post("/", json=generate_body(PROMPT))
    assert response.status_code == 403
    assert log.refused[-1] == "the signature does not match"


def test_no_sign_sends_the_request_as_it_is(standin: tuple[str, StandInLog]) -> None:
    url, log = standin
    for client in _proxy(url, None):
        response = client.post("/", json=generate_body(PROMPT))
    assert response.status_code == 403
    assert log.refused[-1] == "no SigV4 Authorization header"


def test_an_unreachable_url_is_a_502_in_the_shape_of_the_callers_path() -> None:
    for client in _proxy(f"http://127.0.0.1:{free_port()}/", None):
        openai_path = client.post("/v1/chat/completions", json={})
        relay_path = client.post("/", json=generate_body(PROMPT))
    assert openai_path.status_code == relay_path.status_code == 502
    assert openai_path.json()["error"]["code"] == "upstream_error"
    assert openai_path.json()["error"]["type"] == "server_error"
    assert relay_path.json()["type"] == "upstream_error"


def test_the_python_client_signs_for_the_stand_in_and_streams_text(
    standin: tuple[str, StandInLog],
) -> None:
    url, log = standin
    auth = auth_for(url, sign=True, region="eu-west-1", source_loader=lambda: lambda: CREDENTIALS)
    refused_before = len(log.refused)
    with RelayClient(url, auth=auth, timeout=HANG_GUARD_SECONDS) as client:
        pieces = list(client.stream(inputs=PROMPT))
        with pytest.raises(RefusedError) as refused:
            list(client.stream(inputs=f"{PROMPT} [[fault:throttling]]"))
    assert len(pieces) > 1
    assert "".join(pieces) == expected_answer(PROMPT)
    assert len(log.refused) == refused_before
    assert (refused.value.status, refused.value.kind) == (503, "throttled")
    assert refused.value.retry_after is not None
