"""`ask` against the real relay in the local stack (unsigned: the local relay checks no auth).

The answer's text must land on stdout exactly; what the answer ended with goes to stderr; the
exit status says whether the answer is complete.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Iterator

import pytest
from streamer.prompt_template import Message, PromptTemplate

from jumpstream.ask import AskOptions, describe_error, request_body, run_ask
from jumpstream.local import DEFAULT_MODEL_ID, REPO_ROOT, LocalStack, free_port, start_stack
from jumpstream.procs import LineBuffer
from stacks.catalog import load_catalog
from tests.e2e.support import chat_turn, expected_answer, fast_config

PROMPT = "Tell me why streaming matters."
JAPANESE = "日本語で説明してください。"


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with start_stack(fast_config(), sink=LineBuffer()) as running:
        yield running


def ask(stack: LocalStack, prompt: str, **options: object) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    status = run_ask(
        AskOptions(url=stack.relay_url + "/", prompt=prompt, **{"sign": False, **options}),  # type: ignore[arg-type]
        stdout=stdout,
        stderr=stderr,
    )
    return status, stdout.getvalue(), stderr.getvalue()


@pytest.mark.parametrize("prompt", [PROMPT, JAPANESE])
def test_text_answer_goes_to_stdout_exactly(stack: LocalStack, prompt: str) -> None:
    assert ask(stack, prompt) == (0, expected_answer(prompt), "")


def test_chat_sends_the_prompt_as_a_user_message_after_the_system_one(stack: LocalStack) -> None:
    status, stdout, stderr = ask(stack, PROMPT, chat=True, system="Be brief.")
    template = PromptTemplate.from_json(load_catalog().get(DEFAULT_MODEL_ID).prompt_template)
    prompt = template.render([Message("system", "Be brief."), Message("user", PROMPT)])
    assert (status, stdout, stderr) == (0, chat_turn(expected_answer(prompt)), "")


def test_a_loopback_url_is_not_signed_unless_asked(stack: LocalStack) -> None:
    status, _, stderr = ask(stack, PROMPT, sign=True)
    assert status == 1
    assert stderr == (
        "error: cannot tell the function's region from the URL; pass --region "
        "(or --no-sign for a URL without IAM auth)\n"
    )
    assert ask(stack, PROMPT, sign=None)[0] == 0


def test_request_body_sends_only_the_parameters_given() -> None:
    assert json.loads(request_body("日本")) == {"inputs": "日本"}
    assert json.loads(request_body("x", max_new_tokens=3, temperature=0.5)) == {
        "inputs": "x",
        "parameters": {"max_new_tokens": 3, "temperature": 0.5},
    }
    assert "日本".encode() in request_body("日本")  # raw UTF-8, as a person would write it


def test_http_errors_print_the_relays_sentence_and_exit_1(stack: LocalStack) -> None:
    status, stdout, stderr = ask(stack, f"{PROMPT} [[fault:unavailable]]")
    assert status == 1
    assert stdout == ""
    assert stderr.startswith(
        "error: SageMaker is temporarily unavailable; try again shortly. "
        "(unavailable, HTTP 503, retry after 2 s, request id "
    )
    assert stderr.count("\n") == 1


def test_a_mid_stream_error_keeps_the_text_and_exits_1(stack: LocalStack) -> None:
    prompt = f"{PROMPT} [[fault:stream_broken@4]]"
    status, stdout, stderr = ask(stack, prompt)
    assert status == 1
    assert stdout == expected_answer(prompt, {"max_new_tokens": 4})
    assert stderr == (
        "[stream error] The stream between SageMaker and the model broke before the answer "
        "ended. (upstream_error)\n"
    )


def test_an_unreachable_url_exits_1_with_one_line() -> None:
    stdout, stderr = io.StringIO(), io.StringIO()
    options = AskOptions(url=f"http://127.0.0.1:{free_port()}/", prompt="x", sign=False)
    assert run_ask(options, stdout=stdout, stderr=stderr) == 1
    assert stderr.getvalue().startswith("error: the relay at http://127.0.0.1:")
    assert stderr.getvalue().count("\n") == 1


def test_ask_from_the_command_line(stack: LocalStack) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "jumpstream",
            "ask",
            "--no-sign",
            "--url",
            stack.relay_url,
            JAPANESE,
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode("utf-8") == expected_answer(JAPANESE)


@pytest.mark.parametrize(
    ("status", "body", "headers", "line"),
    [
        (
            503,
            b'{"error": "Try later.", "type": "throttled"}',
            {"Retry-After": "2", "X-Request-Id": "r1"},
            "Try later. (throttled, HTTP 503, retry after 2 s, request id r1)",
        ),
        (403, b'{"Message":"Forbidden"}', {}, "Forbidden (HTTP 403)"),
        (502, b"<html>\n  Bad   gateway\n</html>", {}, "<html> Bad gateway </html> (HTTP 502)"),
        (500, b"", {}, "Internal Server Error (HTTP 500)"),
    ],
)
def test_describe_error(status: int, body: bytes, headers: dict[str, str], line: str) -> None:
    reason = "Internal Server Error" if status == 500 else "Whatever"
    assert describe_error(status, reason, body, headers) == line
