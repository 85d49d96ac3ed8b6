"""API keys end to end: the real relay (run.sh) with a keys table served over HTTP, called by the
official `openai` package and by raw HTTP, and two relay processes sharing one table.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import httpx
import openai
import pytest
from streamer.contract import API_KEYS_TABLE, ApiKey, KeyTable, new_api_key, secret_digest
from streamer.prompt_template import Message, PromptTemplate

from jumpstream.client import API_KEY_VARIABLE
from jumpstream.emulator.tokenizer import estimate_input_tokens
from jumpstream.local import DEFAULT_MODEL_ID, LocalStack, start_stack
from jumpstream.procs import LineBuffer
from stacks.catalog import load_catalog
from tests.e2e.conftest import needs_chromium
from tests.e2e.support import (
    HANG_GUARD_SECONDS,
    POLL_GUARD_SECONDS,
    PROMPT,
    expected_answer,
    expected_tokens,
    fast_config,
)
from tests.table_server import KeysTable

QUESTION = [{"role": "user", "content": PROMPT}]


@dataclass(frozen=True)
class Relays:
    """`jumpstream local --api-keys` (its relay, emulator and keys server), a second relay with
    its own emulator reading the same table, and everything the children wrote."""

    first: LocalStack
    second: LocalStack
    table: KeysTable
    output: LineBuffer


@pytest.fixture(scope="module")
def relays() -> Iterator[Relays]:
    output = LineBuffer(keep=5000)
    try:
        with start_stack(replace(fast_config(), api_keys=True), sink=output) as first:
            assert first.keys_table is not None
            table = KeysTable(
                endpoint_url=first.keys_table.endpoint_url, name=first.keys_table.table_name
            )
            shared = {
                API_KEYS_TABLE.name: table.name,
                "AWS_ENDPOINT_URL_DYNAMODB": table.endpoint_url,
            }
            with start_stack(fast_config(**shared), sink=output) as second:
                yield Relays(first=first, second=second, table=table, output=output)
    except Exception:
        print(output.render())
        raise


@pytest.fixture(scope="module")
def stacks(relays: Relays) -> tuple[LocalStack, LocalStack]:
    return relays.first, relays.second


@pytest.fixture(scope="module")
def table(relays: Relays) -> KeysTable:
    return relays.table


@pytest.fixture(scope="module")
def stack(stacks: tuple[LocalStack, LocalStack]) -> LocalStack:
    return stacks[0]


def openai_client(stack: LocalStack, key: str) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{stack.relay_url}/v1", api_key=key, max_retries=0, timeout=HANG_GUARD_SECONDS
    )


def streams_served(stack: LocalStack) -> int:
    return len(httpx.get(f"{stack.emulator_url}/_emulator/streams", timeout=10).json())


def usage_today(table: KeysTable, key: ApiKey, *, requests: int = 1) -> dict[str, int]:
    """The key's usage today, once it counts `requests` requests (or the poll guard ends).

    The relay writes usage before the response's last byte, but a client may stop reading at the
    end of the answer it understands (OpenAI's `[DONE]`), a moment before that byte.
    """
    day = time.strftime("%Y-%m-%d", time.gmtime())
    names = (KeyTable.REQUESTS, KeyTable.PROMPT_TOKENS, KeyTable.OUTPUT_TOKENS)
    deadline = time.monotonic() + POLL_GUARD_SECONDS
    while True:
        reply = table.client().get_item(
            TableName=table.name,
            Key={"pk": {"S": key.key_id}, "sk": {"S": KeyTable.day(day)}},
            ConsistentRead=True,
        )
        item = reply.get("Item", {})
        used = {name: int(item[name]["N"]) for name in names if name in item}
        if used.get(KeyTable.REQUESTS, 0) >= requests or time.monotonic() > deadline:
            return used
        time.sleep(0.05)


def test_the_openai_package_with_a_key_gets_answers_with_integer_usage(
    stack: LocalStack, table: KeysTable
) -> None:
    key = table.create_key()
    with openai_client(stack, key.text) as client:
        whole = client.chat.completions.create(model="any", messages=QUESTION, max_tokens=8)  # type: ignore[arg-type]
        stream = client.chat.completions.create(
            model="any",
            messages=QUESTION,  # type: ignore[arg-type]
            max_tokens=8,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
    assert whole.choices[0].message.content
    assert whole.usage is not None
    assert isinstance(whole.usage.prompt_tokens, int)
    assert isinstance(whole.usage.completion_tokens, int)
    streamed_usage = chunks[-1].usage
    assert streamed_usage is not None
    assert isinstance(streamed_usage.prompt_tokens, int)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    used = usage_today(table, key, requests=2)
    assert used[KeyTable.REQUESTS] == 2
    assert used[KeyTable.OUTPUT_TOKENS] == (
        whole.usage.completion_tokens + streamed_usage.completion_tokens
    )
    assert used[KeyTable.PROMPT_TOKENS] == whole.usage.prompt_tokens + streamed_usage.prompt_tokens


@pytest.mark.parametrize("which", ["wrong", "revoked", "expired"])
def test_a_wrong_revoked_or_expired_key_gets_401_and_sagemaker_sees_no_call(
    stack: LocalStack, table: KeysTable, which: str
) -> None:
    key = {
        "wrong": lambda: new_api_key(),
        "revoked": lambda: table.create_key(revoked=True),
        "expired": lambda: table.create_key(expired=True),
    }[which]()
    served = streams_served(stack)
    with openai_client(stack, key.text) as client:
        with pytest.raises(openai.AuthenticationError) as refused:
            client.chat.completions.create(model="any", messages=QUESTION, max_tokens=8)  # type: ignore[arg-type]
        with pytest.raises(openai.AuthenticationError):
            list(
                client.chat.completions.create(
                    model="any",
                    messages=QUESTION,  # type: ignore[arg-type]
                    max_tokens=8,
                    stream=True,
                )
            )
    assert refused.value.status_code == 401
    assert refused.value.code == "unauthorized"
    assert streams_served(stack) == served


def _start_of_a_minute() -> None:
    """Wait, if need be, so the next few seconds fall in one UTC minute."""
    if time.time() % 60 > 50:
        time.sleep(60 - time.time() % 60 + 0.2)


def test_the_rate_holds_across_two_relays_under_concurrent_requests(
    stacks: tuple[LocalStack, LocalStack], table: KeysTable
) -> None:
    key = table.create_key(requests_per_minute=5)
    urls = [stack.relay_url for stack in stacks] * 6  # 12 requests, half to each relay
    _start_of_a_minute()

    def post(url: str) -> int:
        response = httpx.post(
            f"{url}/",
            json={"inputs": PROMPT, "parameters": {"max_new_tokens": 4}},
            headers={"authorization": f"Bearer {key.text}"},
            timeout=HANG_GUARD_SECONDS,
        )
        return response.status_code

    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = list(pool.map(post, urls))
    assert sorted(statuses) == [200] * 5 + [429] * 7, statuses


def test_a_daily_budget_spent_through_one_relay_is_spent_for_the_other(
    stacks: tuple[LocalStack, LocalStack], table: KeysTable
) -> None:
    first, second = stacks
    key = table.create_key(tokens_per_day=5)
    headers = {"authorization": f"Bearer {key.text}"}
    body = {"inputs": PROMPT, "parameters": {"max_new_tokens": 8}}
    spent = httpx.post(f"{first.relay_url}/", json=body, headers=headers, timeout=30)
    assert spent.status_code == 200  # crossing the budget: allowed to finish
    refused = httpx.post(f"{second.relay_url}/", json=body, headers=headers, timeout=30)
    assert refused.status_code == 429
    assert refused.json()["type"] == "quota_exceeded"


def test_usage_counts_what_a_stream_cut_off_by_a_fault_delivered(
    stack: LocalStack, table: KeysTable
) -> None:
    key = table.create_key()
    inputs = f"{PROMPT} [[fault:stream_broken@3]]"
    response = httpx.post(
        f"{stack.relay_url}/",
        json={"inputs": inputs, "parameters": {"max_new_tokens": 20}},
        headers={"authorization": f"Bearer {key.text}", "accept": "application/x-ndjson"},
        timeout=HANG_GUARD_SECONDS,
    )
    events = [json.loads(line)["event"] for line in response.text.splitlines()]
    assert events == ["token"] * 3 + ["error"]
    # The model's TGI (Mistral 7B Instruct's) does not report prompt tokens, and a cut stream has
    # no final event anyway: the relay counts the prompt it sent (directive and all).
    prompt_tokens = estimate_input_tokens(inputs)
    assert usage_today(table, key) == {
        "requests": 1,
        "prompt_tokens": prompt_tokens,
        "output_tokens": 3,
    }


def test_usage_counts_what_was_sent_to_a_client_that_left(
    stack: LocalStack, table: KeysTable
) -> None:
    key = table.create_key()
    # A long answer, held after 5 tokens so the client can leave in the middle of it.
    inputs = f"{PROMPT} [[length:400]] [[hold@5]]"
    body = json.dumps({"inputs": inputs, "parameters": {"max_new_tokens": 400}}).encode()
    host, port = stack.relay_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=HANG_GUARD_SECONDS) as connection:
        connection.sendall(
            b"POST / HTTP/1.1\r\nHost: relay\r\nContent-Type: application/json\r\n"
            b"Accept: application/x-ndjson\r\n"
            + f"Authorization: Bearer {key.text}\r\n".encode()
            + b"Content-Length: %d\r\n\r\n" % len(body)
            + body
        )
        received = b""
        while received.count(b'"event": "token"') < 5:
            chunk = connection.recv(65536)
            assert chunk, received  # the relay must not end the answer here
            received += chunk
    # The client is gone; the relay notices, stops, and writes the usage.
    used = usage_today(table, key)
    httpx.post(f"{stack.emulator_url}/_emulator/release", timeout=10)
    assert used[KeyTable.REQUESTS] == 1
    assert used[KeyTable.OUTPUT_TOKENS] == 5
    assert used[KeyTable.PROMPT_TOKENS] == estimate_input_tokens(inputs)
    assert len(expected_tokens(inputs)) > 5  # the answer had more to say


@needs_chromium
def test_the_chat_page_asks_for_a_key_and_keeps_it_for_the_tab_only(
    browser: object, stack: LocalStack, table: KeysTable
) -> None:
    key = table.create_key()
    page = browser.new_page()  # type: ignore[attr-defined]
    page.set_default_timeout(15_000)
    try:
        page.goto(f"{stack.relay_url}/chat")
        assert page.is_hidden("#key")
        page.fill("#prompt", PROMPT)
        page.press("#prompt", "Enter")
        page.wait_for_selector("#key", state="visible")
        assert "unauthorized" in page.inner_text("#error")
        page.fill("#api-key", key.text)
        page.press("#api-key", "Enter")
        assert page.is_hidden("#key")
        assert page.input_value("#prompt") == PROMPT  # ready to send again
        page.press("#prompt", "Enter")
        answer = page.locator('.assistant[data-state="done"]')
        answer.wait_for()
        # The page sends `messages`: the model answers the prompt the catalog lays out, and the
        # page renders it as Markdown (the same words, however it lays out white space).
        rendered = PromptTemplate.from_json(
            load_catalog().get(DEFAULT_MODEL_ID).prompt_template
        ).render([Message("user", PROMPT)])
        shown = answer.locator(".content").inner_text()
        assert shown.split() == expected_answer(rendered).split()
        stored = page.evaluate(
            "[sessionStorage.getItem('jumpstream.apiKey'), localStorage.length, document.cookie]"
        )
        assert stored == [key.text, 0, ""]
    finally:
        page.close()


def test_no_key_secret_reaches_any_line_the_relays_write(relays: Relays) -> None:
    key = relays.table.create_key()
    wrong = ApiKey(key.key_id, new_api_key().secret)
    for headers in (
        {"authorization": f"Bearer {key.text}"},
        {"x-api-key": key.text},
        {"authorization": f"Bearer {wrong.text}"},
        {"authorization": f"Bearer {key.text}{key.text}"},
    ):
        httpx.post(
            f"{relays.first.relay_url}/",
            json={"inputs": PROMPT, "parameters": {"max_new_tokens": 2}},
            headers=headers,
            timeout=HANG_GUARD_SECONDS,
        )
    written = relays.output.render()
    assert key.key_id in written  # the lines are there, by key id
    for secret in (key.secret, wrong.secret, secret_digest(key.secret)):
        assert secret not in written


def test_ask_sends_the_key_from_the_environment_and_says_where_one_goes_without(
    stack: LocalStack, table: KeysTable
) -> None:
    key = table.create_key()
    command = [sys.executable, "-m", "jumpstream", "ask", "--url", stack.relay_url, PROMPT]
    base = {name: value for name, value in os.environ.items() if name != API_KEY_VARIABLE}
    answered = subprocess.run(
        command,
        env={**base, API_KEY_VARIABLE: key.text},
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_SECONDS,
    )
    assert (answered.returncode, answered.stdout) == (0, expected_answer(PROMPT))
    refused = subprocess.run(
        command, env=base, capture_output=True, text=True, timeout=HANG_GUARD_SECONDS
    )
    assert refused.returncode == 1
    assert refused.stdout == ""
    assert f"set {API_KEY_VARIABLE}" in refused.stderr
