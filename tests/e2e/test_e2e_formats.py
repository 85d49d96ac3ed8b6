"""Whole answers through the real relay, in each format, event by event.

The emulator's stand-in model decides the answer; `expected_tokens` computes the same answer from
the same model, so every test compares the relay's output with what the model produced, token by
token where the format shows tokens.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from jumpstream.emulator.directives import parse_directives
from tests.e2e.support import (
    EOS_TEXTS,
    expected_answer,
    expected_tokens,
    generate_body,
    parse_ndjson,
    parse_sse,
)

ENGLISH = "Tell me why streaming matters."
JAPANESE = "ストリーミングについて日本語で説明してください。"
SSE = {"accept": "text/event-stream"}
NDJSON = {"accept": "application/x-ndjson"}
TORTURE = ["[[split:1]]", "[[split:random]]", "[[crlf]]", "[[nospace]]", "[[keepalive]]"]
#: One-byte parts cost a botocore event each: a short answer still cuts every event and character.
TORTURE_TOKENS = 16


def visible(tokens: list[str]) -> list[str]:
    """The relay sends no event for an empty token (TGI's held-back half character)."""
    return [token for token in tokens if token]


def sse_answer(client: httpx.Client, body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    response = client.post("/", json=body, headers=SSE)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    return parse_sse(response.content)


@pytest.mark.parametrize("prompt", [ENGLISH, JAPANESE])
def test_plain_text_is_exactly_the_model_answer(relay: httpx.Client, prompt: str) -> None:
    response = relay.post("/", json=generate_body(prompt))
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["x-request-id"]
    assert response.content.decode("utf-8") == expected_answer(prompt)


def test_plain_text_is_the_default_for_curl(relay: httpx.Client) -> None:
    response = relay.post("/", json=generate_body(ENGLISH), headers={"accept": "*/*"})
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.text == expected_answer(ENGLISH)


@pytest.mark.parametrize("prompt", [ENGLISH, JAPANESE])
def test_sse_sends_one_token_event_per_token_then_done(relay: httpx.Client, prompt: str) -> None:
    events = sse_answer(relay, generate_body(prompt))
    tokens = expected_tokens(prompt)
    assert events[:-1] == [("token", {"text": text}) for text in visible(tokens)]
    # generated_tokens counts every token the model produced, its EOS included.
    assert events[-1] == (
        "done",
        {"finish_reason": "eos_token", "generated_tokens": len(tokens) + 1},
    )


@pytest.mark.parametrize("prompt", [ENGLISH, JAPANESE])
def test_ndjson_sends_one_object_per_token_then_done(relay: httpx.Client, prompt: str) -> None:
    response = relay.post("/", json=generate_body(prompt), headers=NDJSON)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-ndjson"
    lines = parse_ndjson(response.content)
    tokens = expected_tokens(prompt)
    assert lines[:-1] == [{"event": "token", "text": text} for text in visible(tokens)]
    assert lines[-1] == {
        "event": "done",
        "finish_reason": "eos_token",
        "generated_tokens": len(tokens) + 1,
    }


def test_max_new_tokens_cuts_the_answer_with_finish_reason_length(relay: httpx.Client) -> None:
    events = sse_answer(relay, generate_body(ENGLISH, max_new_tokens=5))
    tokens = expected_tokens(ENGLISH, {"max_new_tokens": 5})
    assert len(tokens) == 5
    assert events == [
        *(("token", {"text": text}) for text in tokens),
        ("done", {"finish_reason": "length", "generated_tokens": 5}),
    ]


def test_stop_sequence_ends_the_answer(relay: httpx.Client) -> None:
    stop = expected_tokens(ENGLISH)[3]
    events = sse_answer(relay, generate_body(ENGLISH, stop=[stop]))
    assert events[-1] == ("done", {"finish_reason": "stop_sequence", "generated_tokens": 4})
    assert "".join(data["text"] for _, data in events[:-1]).endswith(stop)


def test_japanese_characters_arrive_whole_in_every_format(relay: httpx.Client) -> None:
    answer = expected_answer(JAPANESE)
    assert any("\u3040" <= char <= "\u30ff" for char in answer)  # kana: the answer is Japanese
    plain = relay.post("/", json=generate_body(JAPANESE)).content.decode("utf-8")
    sse = "".join(data.get("text", "") for _, data in sse_answer(relay, generate_body(JAPANESE)))
    ndjson_body = relay.post("/", json=generate_body(JAPANESE), headers=NDJSON).content
    ndjson = "".join(line.get("text", "") for line in parse_ndjson(ndjson_body))
    assert plain == sse == ndjson == answer
    assert "\ufffd" not in plain


@pytest.mark.parametrize("prompt", [ENGLISH, JAPANESE])
def test_the_eos_special_token_never_reaches_the_caller(relay: httpx.Client, prompt: str) -> None:
    for headers in ({}, SSE, NDJSON):
        body = relay.post("/", json=generate_body(prompt), headers=headers).content.decode()
        assert not any(eos in body for eos in EOS_TEXTS)


@pytest.mark.parametrize("directive", TORTURE)
@pytest.mark.parametrize("base", [ENGLISH, JAPANESE])
def test_part_boundary_torture_gives_the_same_events(
    relay: httpx.Client, directive: str, base: str
) -> None:
    tortured = f"{base} {directive}"
    prompt, _ = parse_directives(tortured)  # what the model sees once the directive is stripped
    limit = {"max_new_tokens": TORTURE_TOKENS}
    text = relay.post("/", json=generate_body(tortured, **limit)).text
    assert text == expected_answer(prompt, limit)
    normal = sse_answer(relay, generate_body(prompt, **limit))
    assert sse_answer(relay, generate_body(tortured, **limit)) == normal
    assert normal[-1] == ("done", {"finish_reason": "length", "generated_tokens": TORTURE_TOKENS})


def test_all_torture_directives_at_once(relay: httpx.Client) -> None:
    tortured = f"{JAPANESE} [[split:1]] [[crlf]] [[nospace]] [[keepalive]]"
    prompt, _ = parse_directives(tortured)
    limit = {"max_new_tokens": TORTURE_TOKENS}
    response = relay.post("/", json=generate_body(tortured, **limit), headers=NDJSON)
    texts = [line["text"] for line in parse_ndjson(response.content) if line["event"] == "token"]
    assert texts == visible(expected_tokens(prompt, limit))


def test_a_long_answer_streams_whole(relay: httpx.Client) -> None:
    prompt = f"{ENGLISH} [[length:1500]]"
    response = relay.post("/", json=generate_body(prompt, max_new_tokens=1024), headers=NDJSON)
    lines = parse_ndjson(response.content)
    assert len(lines) == 1024 + 1
    assert lines[-1] == {"event": "done", "finish_reason": "length", "generated_tokens": 1024}
