"""``python -m jumpstream.emulator``: the options it reads, and the process that listens on the
port it prints and stops on a signal even while a stream stalls."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from jumpstream.emulator.__main__ import parse_args, settings_from
from tests.jumpstream.emulator.emulator_harness import (
    POLL_TIMEOUT_SECONDS,
    REPO_ROOT,
    emulator_process,
    invoke,
    sagemaker_client,
)


def test_cold_start_is_read_with_a_component() -> None:
    args = parse_args(["--inference-component", "ic", "--cold-start", "2.5"])
    settings = settings_from(args)
    assert (settings.inference_component, settings.cold_start) == ("ic", 2.5)


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--cold-start", "2"], "--cold-start needs --inference-component"),
        (["--inference-component", "ic", "--cold-start", "-1"], "0 or more seconds"),
    ],
)
def test_a_cold_start_that_cannot_be_is_refused(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        parse_args(argv)
    assert caught.value.code == 2
    assert says in capsys.readouterr().err


def test_the_cli_refuses_a_port_in_use(url: str) -> None:
    port = url.rsplit(":", 1)[1]
    result = subprocess.run(
        [sys.executable, "-m", "jumpstream.emulator", "--port", port],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode != 0
    assert "emulator listening" not in result.stdout


def test_sigterm_stops_the_emulator_even_while_a_stream_stalls() -> None:
    with emulator_process() as (process, url):
        response = invoke(sagemaker_client(url), "hi[[fault:stall@1]]")
        next(iter(response["Body"]))
        process.terminate()
        # uvicorn shuts down, then re-raises the signal it caught: -SIGTERM is a clean stop.
        assert process.wait(timeout=POLL_TIMEOUT_SECONDS) in (0, -signal.SIGTERM)


def test_the_engine_is_the_catalogs_unless_chosen() -> None:
    assert settings_from(parse_args([])).served_by == "tgi"
    chosen = settings_from(parse_args(["--engine", "vllm"]))
    assert (chosen.engine, chosen.served_by) == ("vllm", "vllm")


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--engine", "sglang"], "unknown engine 'sglang'; choose one of: tgi, lmi, vllm"),
        (
            ["--engine", "lmi", "--tgi-url", "http://127.0.0.1:3000"],
            "--tgi-url forwards to a TGI server, but the model is served by lmi",
        ),
    ],
)
def test_an_engine_that_cannot_be_is_refused(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        parse_args(argv)
    assert caught.value.code == 2
    assert says in capsys.readouterr().err
