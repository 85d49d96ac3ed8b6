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

from jumpstream.ask import AskOptions, describe_error, request_body, run_ask
from jumpstream.local import REPO_ROOT, LocalStack, free_port, start_stack
from jumpstream.procs import LineBuffer
from tests.e2e.support import expected_answer, fast_config

PROMPT = "Tell me why streaming matters."
JAPANESE = "日本語で説明してください。"


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with start_stack(fast_config(), sink=LineBuffer()) as running:
        yield running


def ask(stack: LocalStack, prompt: str, **options: object) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    status = run_ask(
        AskOptions(url=stack.relay_url + "/", prompt=prompt, sign=False, **options),  # type: ignore[arg-type]
        stdout=stdout,
        stderr=stderr,
    )
    return status, stdout.getvalue(), stderr.getvalue()


@pytest.mark.parametrize("prompt", [PROMPT, JAPANESE])
def test_text_answer_goes_to_stdout_exactly(stack: LocalStack, prompt: str) -> None:
    assert ask(stack, prompt) == (0, expected_answer(prompt), "")


@pytest.mark.parametrize("output_format", ["sse", "ndjson"])
def test_event_formats_print_the_text_and_report_done(
    stack: LocalStack, output_format: str
) -> None:
    status, stdout, stderr = ask(stack, PROMPT, output_format=output_format, max_new_tokens=6)
    assert status == 0
    assert stdout == expected_answer(PROMPT, {"max_new_tokens": 6})
    assert stderr == "[done: finish_reason=length, generated_tokens=6]\n"


def test_request_body_sends_only_the_parameters_given() -> None:
    assert json.loads(request_body("日本")) == {"inputs": "日本"}
    assert json.loads(request_body("x", max_new_tokens=3, temperature=0.5)) == {
        "inputs": "x",
        "parameters": {"max_new_tokens": 3, "temperature": 0.5},
    }
    assert "日本".encode() in request_body("日本")  # raw UTF-8, as a person would write it


@pytest.mark.parametrize("output_format", ["text", "sse", "ndjson"])
def test_http_errors_print_the_relays_sentence_and_exit_1(
    stack: LocalStack, output_format: str
) -> None:
    status, stdout, stderr = ask(
        stack, f"{PROMPT} [[fault:unavailable]]", output_format=output_format
    )
    assert status == 1
    assert stdout == ""
    assert stderr.startswith(
        "error: SageMaker is temporarily unavailable; try again shortly. "
        "(unavailable, HTTP 503, retry after 2 s, request id "
    )
    assert stderr.count("\n") == 1


@pytest.mark.parametrize("output_format", ["text", "sse", "ndjson"])
def test_a_mid_stream_error_keeps_the_text_and_exits_1(
    stack: LocalStack, output_format: str
) -> None:
    prompt = f"{PROMPT} [[fault:stream_broken@4]]"
    status, stdout, stderr = ask(stack, prompt, output_format=output_format)
    assert status == 1
    # Plain text ends its text with a line break before the error line; that is all it adds.
    assert stdout.rstrip("\n") == expected_answer(prompt, {"max_new_tokens": 4})
    assert stderr == (
        "[stream error] The stream between SageMaker and the model broke before the answer "
        "ended. (upstream_error)\n"
    )


def test_an_unreachable_url_exits_1_with_one_line() -> None:
    stdout, stderr = io.StringIO(), io.StringIO()
    options = AskOptions(url=f"http://127.0.0.1:{free_port()}/", prompt="x", sign=False)
    assert run_ask(options, stdout=stdout, stderr=stderr) == 1
    assert stderr.getvalue().startswith("error: cannot reach 127.0.0.1:")
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
