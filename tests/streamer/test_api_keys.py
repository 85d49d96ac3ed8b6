"""API keys at the door: who gets in, how often, how much, and what each key used.

The table is moto's DynamoDB in server mode, reached over HTTP by the relay's own signed client
(dynamodb.py) exactly as it reaches DynamoDB; SageMaker is a scripted upstream that records
whether it was called at all.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from streamer.contract import CHAT_PAGE_FILES, ApiKey, KeyTable, new_api_key, secret_digest

from tests.streamer.support import (
    PROMPT,
    CapturedLog,
    ScriptedUpstream,
    answer_events,
    asgi_post,
    call,
    error_event,
    make_app,
    token_event,
)
from tests.table_server import KeysTable, keys_table

ANSWER = ["one", " two", " three"]  # three tokens, then the final event's own


@pytest.fixture(scope="module")
def table() -> Iterator[KeysTable]:
    with keys_table() as served:
        yield served


@pytest.fixture(autouse=True)
def _table_endpoint(table: KeysTable, monkeypatch: pytest.MonkeyPatch) -> None:
    """The relay's botocore session finds the table where tests serve it."""
    for name, value in table.environment().items():
        monkeypatch.setenv(name, value)


def app_with_keys(
    table: KeysTable, upstream: ScriptedUpstream, log: CapturedLog | None = None, **limits: Any
) -> Any:
    return make_app(upstream, log, **{"api_keys_table": table.name, **limits})


def bearer(key: ApiKey) -> dict[str, str]:
    return {"authorization": f"Bearer {key.text}"}


def usage_today(table: KeysTable, key: ApiKey) -> dict[str, int]:
    day = time.strftime("%Y-%m-%d", time.gmtime())
    item = (
        table.client()
        .get_item(
            TableName=table.name,
            Key={"pk": {"S": key.key_id}, "sk": {"S": KeyTable.day(day)}},
            ConsistentRead=True,
        )
        .get("Item", {})
    )
    return {
        name: int(item[name]["N"])
        for name in (KeyTable.REQUESTS, KeyTable.PROMPT_TOKENS, KeyTable.OUTPUT_TOKENS)
        if name in item
    }


# --- Who gets in --------------------------------------------------------------------------------


def test_a_valid_key_in_either_header_gets_its_answer(table: KeysTable) -> None:
    key = table.create_key()
    upstream = ScriptedUpstream(answer_events(ANSWER))
    app = app_with_keys(table, upstream)
    by_bearer = call(app, json_body=PROMPT, headers=bearer(key))
    by_header = call(app, json_body=PROMPT, headers={"x-api-key": key.text})
    assert (by_bearer.status_code, by_header.status_code) == (200, 200)
    assert by_bearer.text == by_header.text == "one two three"
    assert len(upstream.bodies) == 2


def _refused_keys(table: KeysTable) -> dict[str, dict[str, str]]:
    good = table.create_key()
    revoked = table.create_key(revoked=True)
    expired = table.create_key(expired=True)
    unknown = new_api_key()
    return {
        "none": {},
        "not a key": {"authorization": "Bearer sk-not-ours"},
        "unknown": bearer(unknown),
        "wrong secret": bearer(ApiKey(good.key_id, new_api_key().secret)),
        "revoked": bearer(revoked),
        "expired": bearer(expired),
        "basic scheme": {"authorization": f"Basic {good.text}"},
    }


def test_a_key_in_x_api_key_is_taken_beside_another_scheme_but_not_beside_another_key(
    table: KeysTable,
) -> None:
    key = table.create_key()
    app = app_with_keys(table, ScriptedUpstream(answer_events(ANSWER)))
    signed = {"authorization": "AWS4-HMAC-SHA256 Credential=x", "x-api-key": key.text}
    assert call(app, json_body=PROMPT, headers=signed).status_code == 200
    same = {**bearer(key), "x-api-key": key.text}
    assert call(app, json_body=PROMPT, headers=same).status_code == 200
    other = {**bearer(key), "x-api-key": table.create_key().text}
    assert call(app, json_body=PROMPT, headers=other).status_code == 401


def test_every_kind_of_bad_key_gets_the_same_401_and_sagemaker_sees_nothing(
    table: KeysTable,
) -> None:
    upstream = ScriptedUpstream(answer_events(ANSWER))
    log = CapturedLog()
    app = app_with_keys(table, upstream, log)
    answers = {
        name: call(app, json_body=PROMPT, headers=headers)
        for name, headers in _refused_keys(table).items()
    }
    for name, response in answers.items():
        assert response.status_code == 401, name
        assert response.headers["www-authenticate"] == "Bearer", name
        assert response.json()["type"] == "unauthorized", name
    assert len({response.text for response in answers.values()}) == 1
    assert upstream.bodies == []
    # The log says which, by key id; the caller could not tell.
    details = [line["error_detail"] for line in log.request_lines()]
    assert any(detail.startswith("revoked key ") for detail in details)
    assert any(detail.startswith("expired key ") for detail in details)
    assert any(detail.startswith("wrong secret for key ") for detail in details)


def test_under_v1_the_401_is_openais_error_object(table: KeysTable) -> None:
    upstream = ScriptedUpstream(answer_events(ANSWER))
    app = app_with_keys(table, upstream)
    for method, path in (("POST", "/v1/chat/completions"), ("GET", "/v1/models")):
        response = call(app, method, path, json_body={"model": "m", "messages": []})
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        error = response.json()["error"]
        assert (error["type"], error["code"]) == ("invalid_request_error", "unauthorized")
    assert upstream.bodies == []


def test_the_key_is_checked_before_the_route_and_the_body(table: KeysTable) -> None:
    upstream = ScriptedUpstream(answer_events(ANSWER))
    app = app_with_keys(table, upstream)
    assert call(app, "POST", "/nowhere", content=b"x").status_code == 401
    assert call(app, content=b"{not json").status_code == 401
    assert call(app, "GET", "/").status_code == 401


def test_the_adapters_check_and_the_chat_pages_files_need_no_key(table: KeysTable) -> None:
    app = app_with_keys(table, ScriptedUpstream())
    for path in ("/health", *CHAT_PAGE_FILES):
        assert call(app, "GET", path).status_code == 200, path


def test_the_table_out_of_reach_refuses_everyone_with_a_503(table: KeysTable) -> None:
    key = table.create_key()
    upstream = ScriptedUpstream(answer_events(ANSWER))
    app = app_with_keys(table, upstream, api_keys_table="no-such-table")
    response = call(app, json_body=PROMPT, headers=bearer(key))
    assert response.status_code == 503
    assert response.json()["type"] == "unavailable"
    assert "retry-after" in response.headers
    assert upstream.bodies == []


# --- How often and how much ---------------------------------------------------------------------


def test_requests_past_the_keys_rate_get_429_with_the_seconds_left_in_the_minute(
    table: KeysTable,
) -> None:
    key = table.create_key(requests_per_minute=2)
    upstream = ScriptedUpstream(answer_events(ANSWER))
    app = app_with_keys(table, upstream)
    # Two requests in one minute: run them at the start of a minute so they share it.
    if time.time() % 60 > 55:
        time.sleep(60 - time.time() % 60 + 0.1)
    statuses = [call(app, json_body=PROMPT, headers=bearer(key)) for _ in range(3)]
    assert [response.status_code for response in statuses] == [200, 200, 429]
    refused = statuses[2]
    assert refused.json()["type"] == "rate_limited"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert len(upstream.bodies) == 2


def test_the_environments_rate_applies_to_keys_without_their_own(table: KeysTable) -> None:
    key = table.create_key()
    app = app_with_keys(table, ScriptedUpstream(answer_events(ANSWER)), key_requests_per_minute=1)
    if time.time() % 60 > 55:
        time.sleep(60 - time.time() % 60 + 0.1)
    first, second = (call(app, json_body=PROMPT, headers=bearer(key)) for _ in range(2))
    assert (first.status_code, second.status_code) == (200, 429)


def test_a_stream_may_cross_the_daily_budget_and_the_next_request_is_refused(
    table: KeysTable,
) -> None:
    key = table.create_key(tokens_per_day=2)
    upstream = ScriptedUpstream(answer_events(ANSWER))
    app = app_with_keys(table, upstream)
    crossing = call(app, json_body=PROMPT, headers=bearer(key))
    assert (crossing.status_code, crossing.text) == (200, "one two three")
    refused = call(app, json_body=PROMPT, headers=bearer(key))
    assert refused.status_code == 429
    assert refused.json()["type"] == "quota_exceeded"
    assert "per day" in refused.json()["error"]
    assert "retry-after" not in refused.headers
    assert len(upstream.bodies) == 1


def test_the_environments_monthly_budget_applies_to_keys_without_their_own(
    table: KeysTable,
) -> None:
    key = table.create_key()
    app = app_with_keys(table, ScriptedUpstream(answer_events(ANSWER)), key_tokens_per_month=1)
    assert call(app, json_body=PROMPT, headers=bearer(key)).status_code == 200
    refused = call(app, json_body=PROMPT, headers=bearer(key))
    assert (refused.status_code, refused.json()["type"]) == (429, "quota_exceeded")
    assert "per month" in refused.json()["error"]


# --- What each key used -------------------------------------------------------------------------


def test_usage_counts_each_request_and_the_tokens_generated(table: KeysTable) -> None:
    key = table.create_key()
    app = app_with_keys(table, ScriptedUpstream(answer_events(ANSWER)))
    for _ in range(2):
        assert call(app, json_body=PROMPT, headers=bearer(key)).status_code == 200
    # The scripted final event says 4 tokens were generated (three texts and the end) for a
    # prompt of 4 (TGI 2.3 and later report it).
    assert usage_today(table, key) == {"requests": 2, "prompt_tokens": 8, "output_tokens": 8}


def test_a_whole_document_that_fails_after_text_still_counts_the_text_generated(
    table: KeysTable,
) -> None:
    """`stream: false` holds the text until the end; a model error then is a 502, and the tokens
    the model did generate are still the key's usage."""
    key = table.create_key()
    script = [token_event("one"), token_event(" two"), error_event("boom", "generation")]
    app = app_with_keys(table, ScriptedUpstream(script))
    body = {"model": "m", "prompt": "Hello", "stream": False}
    response = call(app, "POST", "/v1/completions", json_body=body, headers=bearer(key))
    assert response.status_code == 502
    assert usage_today(table, key)["output_tokens"] == 2


def test_a_request_refused_after_the_door_still_counts_as_a_request(table: KeysTable) -> None:
    key = table.create_key()
    app = app_with_keys(table, ScriptedUpstream(answer_events(ANSWER)))
    assert call(app, content=b"{not json", headers=bearer(key)).status_code == 400
    assert usage_today(table, key) == {"requests": 1, "prompt_tokens": 0, "output_tokens": 0}


def test_the_log_line_names_the_key_by_id_and_never_holds_its_secret(table: KeysTable) -> None:
    key = table.create_key()
    log = CapturedLog()
    app = app_with_keys(table, ScriptedUpstream(answer_events(ANSWER)), log)
    call(app, json_body=PROMPT, headers=bearer(key))
    call(app, json_body=PROMPT, headers={"authorization": f"Bearer {key.text}x"})
    lines = log.request_lines()
    assert lines[0]["key_id"] == key.key_id
    assert lines[0]["output_tokens"] == 4
    assert "key_id" not in lines[1]
    everything = log.stream.getvalue()
    assert key.secret not in everything
    assert secret_digest(key.secret) not in everything


def test_refusals_at_the_door_count_as_refused_whatever_the_method(table: KeysTable) -> None:
    log = CapturedLog()
    app = app_with_keys(table, ScriptedUpstream(), log)
    call(app, "GET", "/v1/models")
    (line,) = log.request_lines()
    directives = line["_aws"]["CloudWatchMetrics"]
    assert [metric["Name"] for d in directives for metric in d["Metrics"]] == ["Refused"]
    assert line["ErrorType"] == "unauthorized"


# --- Malformed credentials ----------------------------------------------------------------------

_header_values = st.one_of(
    st.just(b""),
    st.just(b"Bearer"),
    st.just(b"Bearer "),
    st.binary(min_size=0, max_size=64).filter(lambda v: b"\r" not in v and b"\n" not in v),
    st.builds(lambda n: b"Bearer " + b"A" * n, st.integers(0, 8000)),
    st.text(min_size=1, max_size=40).map(lambda t: ("Bearer " + t).encode("utf-8")),
)


@hypothesis_settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(values=st.lists(_header_values, min_size=1, max_size=4), x_api_key=st.booleans())
def test_no_malformed_credentials_get_a_5xx_or_reach_sagemaker(
    table: KeysTable, values: list[bytes], x_api_key: bool
) -> None:
    upstream = ScriptedUpstream(answer_events(ANSWER))
    app = app_with_keys(table, upstream)
    name = b"x-api-key" if x_api_key else b"authorization"
    headers = [(name, value.strip(b" \t")) for value in values]
    response = _raw_call(app, headers)
    assert response[0] == 401, response
    assert json.loads(response[1])["type"] == "unauthorized"
    assert upstream.bodies == []


def _raw_call(app: Any, headers: list[tuple[bytes, bytes]]) -> tuple[int, bytes]:
    """POST / with exactly these header bytes, straight through ASGI."""
    status = 0
    chunks: list[bytes] = []

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    asgi_post(app, json.dumps(PROMPT).encode(), send, headers=headers)
    return status, b"".join(chunks)
