"""The npm clients against the relay (jumpstream local): the `openai` package and the Vercel AI
SDK (`ai` + `@ai-sdk/openai`), pinned in package.json, run by Node scripts under tests/e2e/node.

Each script calls the relay as a Node app would and prints one JSON object; the test checks it
against the emulator's stand-in model's answer to the prompt the relay must have rendered, so a
pass means each client's requests were understood and its parser took every answer whole.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from jumpstream.local import LocalStack
from tests.e2e.support import (
    HANG_GUARD_SECONDS,
    PROMPT,
    chat_turn,
    expected_answer,
    expected_tokens,
)
from tests.e2e.test_e2e_openai import expected_counts, rendered

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = Path(__file__).resolve().parent / "node"
NODE = shutil.which("node")
FOLLOW_UP = "And why does latency matter?"
FAILING = f"{PROMPT} [[fault:generation@3]]"
SYSTEM = {"role": "system", "content": "Be brief."}

pytestmark = [
    pytest.mark.skipif(
        NODE is None, reason="no `node` here: install Node 20 to run the npm clients' tests"
    ),
    pytest.mark.skipif(
        not (ROOT / "node_modules" / "@ai-sdk" / "openai").is_dir(),
        reason="the npm clients are not installed: `npm ci` (make setup does) installs them",
    ),
]


def _run(script: str, *args: str) -> dict[str, Any]:
    assert NODE is not None
    done = subprocess.run(
        [NODE, str(SCRIPTS / script), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=4 * HANG_GUARD_SECONDS,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def test_the_openai_npm_package_chats_and_converses_through_both_apis(
    stack: LocalStack,
) -> None:
    result = _run("openai_npm.mjs", f"{stack.relay_url}/v1", PROMPT, FOLLOW_UP)

    chat = result["chat"]
    first = [_user(PROMPT)]
    assert (chat["object"], chat["finishReason"]) == ("chat.completion", "stop")
    assert chat["text"] == chat_turn(expected_answer(rendered(first)))
    prompt_tokens, completion_tokens = expected_counts(rendered(first), {})
    assert chat["usage"] == {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    second = [*first, {"role": "assistant", "content": chat["text"]}, _user(FOLLOW_UP)]
    streamed = result["chatSecondTurnStreamed"]
    assert len([d for d in streamed["deltas"] if d]) > 1
    assert "".join(streamed["deltas"]) == chat_turn(expected_answer(rendered(second)))
    assert streamed["usage"]["completion_tokens"] == expected_counts(rendered(second), {})[1]

    response = result["responses"]
    first = [SYSTEM, _user(PROMPT)]
    assert (response["object"], response["status"]) == ("response", "completed")
    assert response["text"] == chat_turn(expected_answer(rendered(first)))
    assert response["usage"]["input_tokens"] == expected_counts(rendered(first), {})[0]
    second = [*first, {"role": "assistant", "content": response["text"]}, _user(FOLLOW_UP)]
    streamed = result["responsesSecondTurnStreamed"]
    assert streamed["types"][:2] == ["response.created", "response.in_progress"]
    assert streamed["types"][-1] == "response.completed"
    assert "".join(streamed["deltas"]) == chat_turn(expected_answer(rendered(second)))
    assert streamed["finalText"] == "".join(streamed["deltas"])
    assert streamed["usage"]["output_tokens"] == expected_counts(rendered(second), {})[1]


@pytest.fixture(scope="module")
def ai_sdk(stack: LocalStack) -> dict[str, Any]:
    """What the AI SDK script saw (one run serves the tests below)."""
    return _run("ai_sdk.mjs", f"{stack.relay_url}/v1", PROMPT, FOLLOW_UP, FAILING)


def test_the_ai_sdk_generates_and_streams_through_responses_and_chat(
    ai_sdk: dict[str, Any],
) -> None:
    result = ai_sdk
    first = [SYSTEM, _user(PROMPT)]
    input_tokens, output_tokens = expected_counts(rendered(first), {})
    for api in ("responses", "chat"):  # openai("any") and openai.chat("any")
        outcome = result[api]
        assert outcome["text"] == chat_turn(expected_answer(rendered(first))), api
        assert outcome["finishReason"] == "stop", api
        assert outcome["usage"] == {"input": input_tokens, "output": output_tokens}, api
        second = [*first, {"role": "assistant", "content": outcome["text"]}, _user(FOLLOW_UP)]
        turn = outcome["secondTurn"]
        assert len([d for d in turn["deltas"] if d]) > 1, api
        assert (
            turn["text"] == "".join(turn["deltas"]) == chat_turn(expected_answer(rendered(second)))
        ), api
        assert turn["finishReason"] == "stop", api
        assert turn["output"] == expected_counts(rendered(second), {})[1], api
        # A failure mid-stream reaches the app as an error after the text that came before it.
        failure = outcome["failure"]
        texts = [part["text"] for part in failure if part["type"] == "text-delta"]
        assert "".join(texts) == chat_turn(
            "".join(expected_tokens(rendered([_user(FAILING)]))[:3])
        ), api
        errors = [part for part in failure if part["type"] == "error"]
        assert errors, api
        assert "generation" in errors[0]["message"].lower(), api
        assert failure[-1]["type"] == "error", api


def test_the_ai_sdks_stored_item_references_are_refused_with_the_way_out(
    ai_sdk: dict[str, Any],
) -> None:
    reference = ai_sdk["storedReference"]
    assert reference["refused"] is True
    assert reference["status"] == 400
    assert "item_reference" in reference["message"]
    assert "keeps no responses" in reference["message"]
    assert "store: false" in reference["message"]
