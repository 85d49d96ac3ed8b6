"""Prompt tokens for a model whose TGI does not report them: counted with its own tokenizer.

The tokenizer file is the emulator's stand-in (a real `tokenizers` tokenizer.json that counts
words and CJK characters), read from moto's S3 as the relay reads the model's artifact, or from
a file as `jumpstream local` hands it over.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import anyio
import boto3
import pytest
from moto import mock_aws
from streamer.prompt_tokens import PromptCounter

from jumpstream.emulator.tokenizer import estimate_input_tokens, stand_in_tokenizer_json
from tests.streamer.engine_streams import lmi_answer, lmi_chat_answer
from tests.streamer.support import (
    HANG_GUARD_SECONDS,
    CapturedLog,
    ScriptedUpstream,
    answer_events,
    call,
    make_app,
)

PROMPT = "How many tokens are in this prompt? 日本語も"
BUCKET = "jumpstart-cache-prod-us-east-1"
KEY = "huggingface-llm/some-model/artifacts/inference-prepack/v1.0.0/tokenizer.json"


@pytest.fixture
def tokenizer_file(tmp_path: Path) -> Path:
    path = tmp_path / "tokenizer.json"
    path.write_text(stand_in_tokenizer_json(), encoding="utf-8")
    return path


@pytest.fixture
def artifact_bucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key=KEY, Body=stand_in_tokenizer_json().encode())
        yield


def count(counter: PromptCounter, text: str, truncate: int | None = None) -> int | None:
    async def run() -> int | None:
        return await counter.count(text, truncate=truncate)

    return anyio.run(run)


def test_the_tokenizer_in_the_models_artifact_counts_as_the_model_does(
    artifact_bucket: None,
) -> None:
    counter = PromptCounter(f"s3://{BUCKET}/{KEY}", region="us-east-1", logger=CapturedLog().logger)
    assert count(counter, PROMPT) == estimate_input_tokens(PROMPT) == 11
    # TGI's `truncate` keeps the prompt's last N tokens: the length it reports is at most N.
    assert count(counter, PROMPT, truncate=4) == 4
    # A long prompt is counted in a worker thread, the same way.
    assert count(counter, "word " * 5000) == 5000


def test_a_count_alongside_the_generation_needs_no_task_once_the_tokenizer_is_loaded(
    tokenizer_file: Path,
) -> None:
    counter = PromptCounter(str(tokenizer_file), region="us-east-1", logger=CapturedLog().logger)

    async def run() -> None:
        loading = counter.counting(PROMPT)
        assert isinstance(loading, asyncio.Task)  # the first loads the file, in a thread
        assert await loading == 11
        short = counter.counting("another prompt", truncate=1)
        assert not isinstance(short, asyncio.Task)
        assert not short.done()  # counted on the loop's next turn, after this step
        assert await short == 1
        long = counter.counting("word " * 5000)
        assert isinstance(long, asyncio.Task)  # in a worker thread
        assert await long == 5000
        given_up = counter.counting("given up on")
        given_up.cancel()
        await asyncio.sleep(0)  # its turn comes and finds it cancelled: nothing raised
        assert given_up.cancelled()

    anyio.run(run)


def test_a_burst_of_requests_at_a_cold_start_loads_the_tokenizer_once_in_one_thread(
    tokenizer_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sixty-four prompts counted at once, before the tokenizer is loaded: one load, in one
    thread, while the event loop goes on; not a worker thread per request, blocked until the
    load ends (anyio's forty, which credentials are then found in too)."""
    import threading

    loads: list[str] = []
    released = threading.Event()
    real_load = PromptCounter._load

    def held_load(self: PromptCounter) -> object:
        """A load that ends only once the event loop has run on after it began: a loop blocked
        by the load (the load on it, or each request waiting on it in the loop's thread) never
        releases it, and the load then fails, which the counts show."""
        loads.append(threading.current_thread().name)
        if not released.wait(HANG_GUARD_SECONDS):
            raise TimeoutError("the event loop did not go on while the tokenizer loaded")
        return real_load(self)

    monkeypatch.setattr(PromptCounter, "_load", held_load)
    counter = PromptCounter(str(tokenizer_file), region="us-east-1", logger=CapturedLog().logger)

    async def run() -> list[int | None]:
        async def release() -> None:
            while not loads:  # the load has begun ...
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.01)  # ... and the loop goes on: timers fire, tasks run
            released.set()

        releasing = asyncio.ensure_future(release())
        counts = await asyncio.gather(*(counter.count(f"{PROMPT} {n}") for n in range(64)))
        await releasing
        return counts

    counts = anyio.run(run)
    assert counts == [12] * 64
    # Loaded once, in a thread of its own: the requests awaited it, none took a worker thread
    # (anyio's have another name) to wait on the load.
    assert loads == ["tokenizer-load"]
    assert count(counter, PROMPT) == 11  # loaded for good: no other load
    assert loads == ["tokenizer-load"]


def test_a_failed_load_is_shared_by_the_requests_that_waited_for_it(
    artifact_bucket: None,
) -> None:
    log = CapturedLog()
    counter = PromptCounter(f"s3://{BUCKET}/missing.json", region="us-east-1", logger=log.logger)

    async def run() -> list[int | None]:
        return list(await asyncio.gather(*(counter.count(PROMPT) for _ in range(8))))

    assert anyio.run(run) == [None] * 8
    # And a request after them, within the minute before a retry, does not try again either.
    assert count(counter, PROMPT) is None
    assert len([line for line in log.lines() if line["level"] == "WARNING"]) == 1


def test_nothing_is_read_before_the_first_count(tokenizer_file: Path) -> None:
    counter = PromptCounter(str(tokenizer_file), region="us-east-1", logger=CapturedLog().logger)
    tokenizer_file.unlink()  # made, not read: a snapshot taken now holds no tokenizer
    assert count(counter, PROMPT) is None


def test_a_tokenizer_out_of_reach_is_logged_and_counts_are_unknown_not_guessed(
    artifact_bucket: None,
) -> None:
    log = CapturedLog()
    counter = PromptCounter(f"s3://{BUCKET}/missing.json", region="us-east-1", logger=log.logger)
    assert count(counter, PROMPT) is None
    assert count(counter, PROMPT) is None
    warnings = [line for line in log.lines() if line["level"] == "WARNING"]
    # Tried once, then not again for a while: no S3 call per request.
    assert len(warnings) == 1
    assert "NoSuchKey" in warnings[0]["error_detail"]


def test_answers_of_a_model_that_does_not_report_carry_the_counted_prompt_tokens(
    tokenizer_file: Path,
) -> None:
    log = CapturedLog()
    upstream = ScriptedUpstream(answer_events(["one", " two"], input_length=None))
    app = make_app(upstream, log, tokenizer_uri=str(tokenizer_file))
    response = call(app, "POST", "/v1/completions", json_body={"model": "m", "prompt": PROMPT})
    assert response.status_code == 200
    assert response.json()["usage"] == {
        "prompt_tokens": 11,
        "completion_tokens": 3,
        "total_tokens": 14,
    }
    (line,) = log.request_lines()
    assert line["prompt_tokens"] == 11


def test_what_tgi_reports_wins_over_the_count(tokenizer_file: Path) -> None:
    log = CapturedLog()
    upstream = ScriptedUpstream(answer_events(["one"], input_length=7))
    app = make_app(upstream, log, tokenizer_uri=str(tokenizer_file))
    call(app, json_body={"inputs": PROMPT})
    (line,) = log.request_lines()
    assert line["prompt_tokens"] == 7


def test_a_prompt_counted_twice_is_encoded_once(
    tokenizer_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before the call (the answer's room) and for usage: one encoding per prompt."""
    import streamer.prompt_tokens as prompt_tokens

    encoded: list[str] = []
    real = prompt_tokens._count

    def counting(tokenizer: object, text: str) -> int:
        encoded.append(text)
        return real(tokenizer, text)

    monkeypatch.setattr(prompt_tokens, "_count", counting)
    counter = PromptCounter(str(tokenizer_file), region="us-east-1", logger=CapturedLog().logger)
    assert count(counter, PROMPT) == count(counter, PROMPT) == 11
    assert count(counter, PROMPT, truncate=3) == 3
    assert count(counter, "another prompt") == 2
    assert encoded == [PROMPT, "another prompt"]


def test_a_tokenizer_slower_than_the_wait_leaves_the_count_unknown_and_the_answer_whole(
    tokenizer_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first request of a process loads the tokenizer; if that outlasts the wait, the
    answer still ends cleanly (no cancellation escapes the app) with the count unknown."""
    import time

    import streamer.streaming as streaming

    monkeypatch.setattr(streaming, "_COUNT_WAIT_SECONDS", 0.2)
    real_load = PromptCounter._load

    def slow_load(self: PromptCounter) -> object:
        time.sleep(1.0)
        return real_load(self)

    monkeypatch.setattr(PromptCounter, "_load", slow_load)
    log = CapturedLog()
    upstream = ScriptedUpstream(answer_events(["one"], input_length=None))
    app = make_app(upstream, log, tokenizer_uri=str(tokenizer_file))
    response = call(app, "POST", "/v1/completions", json_body={"model": "m", "prompt": PROMPT})
    assert response.status_code == 200
    assert response.json()["usage"]["prompt_tokens"] is None
    (line,) = log.request_lines()
    assert "prompt_tokens" not in line
    assert "error_type" not in line


def test_an_lmi_prompt_without_a_reported_length_is_counted(tokenizer_file: Path) -> None:
    """LMI's rolling batch reports no prompt length: the relay counts `inputs`, as for TGI."""
    log = CapturedLog()
    upstream = ScriptedUpstream(lmi_answer(["one", " two"]))
    app = make_app(upstream, log, serving_engine="lmi", tokenizer_uri=str(tokenizer_file))
    response = call(app, "POST", "/v1/completions", json_body={"model": "m", "prompt": PROMPT})
    assert response.json()["usage"] == {
        "prompt_tokens": 11,
        "completion_tokens": 3,
        "total_tokens": 14,
    }


def test_a_chat_the_engine_lays_out_is_never_counted_by_the_relay(tokenizer_file: Path) -> None:
    """The engine's template adds tokens the relay cannot see: a count of the messages would be
    wrong, so the prompt's tokens are the engine's to report, or unknown."""
    log = CapturedLog()
    upstream = ScriptedUpstream(lmi_chat_answer(["one", " two"]))
    app = make_app(
        upstream,
        log,
        serving_engine="lmi",
        engine_chat_template=True,
        tokenizer_uri=str(tokenizer_file),
    )
    chat = {"model": "m", "messages": [{"role": "user", "content": PROMPT}]}
    response = call(app, "POST", "/v1/chat/completions", json_body=chat)
    assert response.status_code == 200
    usage = response.json()["usage"]
    assert usage["prompt_tokens"] is None
    assert usage["completion_tokens"] == 2  # rolling batch's chunks, one per token
    assert usage["total_tokens"] is None  # no total without the prompt's share
    (line,) = log.request_lines()
    assert line.get("prompt_tokens") is None


def test_a_prompt_the_tokenizer_fails_on_is_logged_and_its_count_unknown(
    tokenizer_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Either way of counting: a count is for usage and the log, never a request's failure."""
    import streamer.prompt_tokens as prompt_tokens

    real = prompt_tokens._count

    def failing_on_bad(tokenizer: object, text: str) -> int:
        if text.startswith("bad"):
            raise ValueError("cannot encode")
        return real(tokenizer, text)

    monkeypatch.setattr(prompt_tokens, "_count", failing_on_bad)
    log = CapturedLog()
    counter = PromptCounter(str(tokenizer_file), region="us-east-1", logger=log.logger)

    async def run() -> list[int | None]:
        return [
            await counter.count("bad one"),  # loads the tokenizer, then fails on the prompt
            await counter.counting("bad two"),  # the callback's way
            await counter.counting("good one"),
        ]

    assert anyio.run(run) == [None, None, 2]
    failures = [line for line in log.lines() if line["level"] == "WARNING"]
    message = "the prompt's tokens could not be counted"
    assert [line["message"] for line in failures] == [message, message]
    assert "cannot encode" in failures[0]["error_detail"]
