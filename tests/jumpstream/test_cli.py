"""The command line: help that reads well, options that map onto the work, bad values refused."""

from __future__ import annotations

import io
import subprocess
import sys
from typing import Any

import pytest

from jumpstream import ask, bench, cli, demo, local
from jumpstream.cli import build_parser, main


def help_text(*args: str, capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args([*args, "--help"])
    assert exited.value.code == 0
    return capsys.readouterr().out


def test_top_level_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    text = help_text(capsys=capsys)
    assert text.startswith("usage: python -m jumpstream")
    for command in ("local", "demo", "ask", "bench"):
        assert f"    {command} " in text
    assert "python -m jumpstream demo" in text  # examples


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ("local", ["--port", "--emulator-port", "--tokens-per-second", "--tgi-url", "--model-id"]),
        ("demo", ["--prompt", "--max-new-tokens", "--tokens-per-second", "--verbose"]),
        (
            "ask",
            [
                "--url",
                "--env",
                "--chat",
                "--system",
                "--max-new-tokens",
                "--temperature",
                "--region",
                "--sign",
                "--no-sign",
            ],
        ),
        ("bench", ["--quick", "--output-dir"]),
    ],
)
def test_each_command_documents_its_options(
    command: str, options: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    text = help_text(command, capsys=capsys)
    for option in options:
        assert option in text


def test_local_help_shows_a_curl_line_to_paste(capsys: pytest.CaptureFixture[str]) -> None:
    assert local.curl_example("http://127.0.0.1:8080") in help_text("local", capsys=capsys)


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["nope"],
        ["local", "--port", "70000"],
        ["local", "--port", "eighty"],
        ["local", "--tokens-per-second", "-1"],
        ["local", "--tokens-per-second", "nan"],
        ["local", "--tgi-url", "localhost:8000"],
        ["demo", "--max-new-tokens", "0"],
        ["ask", "hello"],
        ["ask", "--url", "ftp://x/", "hello"],
        ["ask", "--url", "http://x/", "--env", "dev", "hello"],
        ["ask", "--url", "http://x/", "--sign", "--no-sign", "hello"],
        ["ask", "--url", "http://x/", "--temperature", "0", "hello"],
        ["ask", "--url", "http://x/"],
        ["bench", "--quick", "yes"],
        ["bench", "--sizes", "8"],
    ],
)
def test_bad_command_lines_exit_2_with_a_message(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert "error:" in capsys.readouterr().err


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Replace each command's worker with one that records what it was given."""
    calls: dict[str, Any] = {}

    def recorder(name: str, status: int) -> Any:
        def record(options: Any, *, stdout: Any, stderr: Any) -> int:
            calls[name] = options
            return status

        return record

    monkeypatch.setattr(local, "run_local", recorder("local", 0))
    monkeypatch.setattr(demo, "run_demo", recorder("demo", 0))
    monkeypatch.setattr(ask, "run_ask", recorder("ask", 1))
    monkeypatch.setattr(bench, "run_bench", recorder("bench", 0))
    return calls


def test_local_defaults(captured: dict[str, Any]) -> None:
    assert main(["local"]) == 0
    assert captured["local"] == local.StackConfig(
        relay_port=8080,
        emulator_port=0,
        model_id="huggingface-llm-mistral-7b-instruct",
        tokens_per_second=25.0,
        first_token_delay=None,
        tgi_url=None,
    )


def test_local_options(captured: dict[str, Any]) -> None:
    argv = [
        "local",
        "--port",
        "9000",
        "--emulator-port",
        "9001",
        "--tokens-per-second",
        "0",
        "--tgi-url",
        "http://127.0.0.1:3000",
        "--model-id",
        "huggingface-llm-falcon-7b-instruct-bf16",
        "--first-token-delay",
        "0.5",
        "--inference-component",
        "ic",
        "--cold-start",
        "30",
    ]
    assert main(argv) == 0
    config = captured["local"]
    assert (config.inference_component, config.cold_start) == ("ic", 30.0)
    assert (config.relay_port, config.emulator_port) == (9000, 9001)
    assert config.tokens_per_second == 0
    assert config.tgi_url == "http://127.0.0.1:3000"
    assert config.model_id == "huggingface-llm-falcon-7b-instruct-bf16"
    assert config.first_token_delay == 0.5


def test_local_refuses_a_cold_start_without_a_component(
    captured: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["local", "--cold-start", "5"]) == 2
    assert "local" not in captured
    assert "--cold-start needs --inference-component" in capsys.readouterr().err


def test_ask_options_and_exit_status(captured: dict[str, Any]) -> None:
    argv = ["ask", "--url", "http://127.0.0.1:8080/", "--chat", "--system", "Be kind.", "--no-sign"]
    argv += ["--max-new-tokens", "12", "--temperature", "0.7", "--region", "eu-west-1", "Hi"]
    assert main(argv) == 1  # whatever run_ask returns is the exit status
    assert captured["ask"] == ask.AskOptions(
        url="http://127.0.0.1:8080/",
        prompt="Hi",
        chat=True,
        system="Be kind.",
        max_new_tokens=12,
        temperature=0.7,
        region="eu-west-1",
        sign=False,
        timeout=300.0,
    )


def test_ask_reads_the_prompt_from_stdin_for_a_dash(
    captured: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("日本語の質問\n"))
    main(["ask", "--url", "https://a.lambda-url.us-east-1.on.aws/", "-"])
    assert captured["ask"].prompt == "日本語の質問\n"
    assert captured["ask"].sign is None  # decided by the URL: a function URL is signed


def test_demo_and_bench_options(captured: dict[str, Any]) -> None:
    main(["demo", "--prompt", "Why?", "--tokens-per-second", "100", "--verbose"])
    assert captured["demo"] == demo.DemoOptions(
        prompt="Why?", max_new_tokens=128, tokens_per_second=100.0, verbose=True
    )
    main(["bench", "--quick", "--output-dir", "out"])
    assert captured["bench"] == bench.BenchOptions(quick=True, output_dir="out")
    main(["bench"])
    assert captured["bench"].quick is False


def test_ctrl_c_in_a_command_exits_130(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(options: Any, *, stdout: Any, stderr: Any) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(demo, "run_demo", interrupted)
    stderr = io.StringIO()
    assert main(["demo"], stderr=stderr) == cli.EXIT_INTERRUPTED
    assert stderr.getvalue() == "interrupted\n"


def test_the_command_line_does_not_start_the_cdk_runtime() -> None:
    # aws_cdk starts a Node.js process at import: `local`, `ask` and `proxy` must not pay for
    # it (nor leave a third child next to the relay and the emulator).
    code = "import sys, jumpstream.cli; print(sorted(m for m in sys.modules if 'jsii' in m))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("words", "wait", "prompt"),
    [
        # --wait before the prompt, alone: it waits the default time and the word is the prompt.
        (["--wait", "Hello"], cli.DEFAULT_WAIT_SECONDS, "Hello"),
        (["Hello", "--wait"], cli.DEFAULT_WAIT_SECONDS, "Hello"),
        (["--wait", "120", "Hello"], 120.0, "Hello"),
        (["Hello", "--wait", "120"], 120.0, "Hello"),
        (["--wait=30", "Hello"], 30.0, "Hello"),
        (["--wait", "--chat", "Hello"], cli.DEFAULT_WAIT_SECONDS, "Hello"),
        (["Hello"], 0.0, "Hello"),
        # After "--" everything is the prompt, even what looks like a number.
        (["--wait", "--", "42"], cli.DEFAULT_WAIT_SECONDS, "42"),
    ],
)
def test_ask_wait_goes_before_or_after_the_prompt(
    words: list[str], wait: float, prompt: str
) -> None:
    args = build_parser().parse_args(["ask", "--url", "http://127.0.0.1:8080", *words])
    assert (args.wait, args.prompt) == (wait, prompt)


def test_ask_wait_refuses_a_number_out_of_range_rather_than_asking_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["ask", "--url", "http://127.0.0.1:8080", "--wait", "-5", "Hi"])
    assert exited.value.code == 2
    assert "argument --wait: must be 0 or more (got -5)" in capsys.readouterr().err
