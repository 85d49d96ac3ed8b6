"""The bundled asset runs the way Lambda runs it, with nothing from this machine to lean on.

test_bundling.py checks what the asset holds; this test starts it. The asset is bundled for
x86_64 (its wheels are pure Python, so it runs here) and started through its own run.sh, by an
interpreter with no packages at all, with Lambda's variables: the task root is the asset, and
boto3 comes only from a "runtime dir" as Lambda's Python runtime provides it. A dependency the
asset forgot to ship, or a run.sh that finds packages only in a checkout, fails here and not
after a deployment.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from jumpstream.local import (
    ENDPOINT_NAME,
    REPO_ROOT,
    StackConfig,
    emulator_command,
    free_port,
    wait_until_healthy,
)
from jumpstream.procs import Child, LineBuffer
from stacks.bundling import PipLocalBundling
from stacks.relay import STREAMER_SOURCE
from tests.e2e.support import HANG_GUARD_SECONDS, expected_tokens, parse_ndjson

_LISTENING = re.compile(r"^emulator listening on (http://\S+)$")
#: pip downloads and installs here; a guard against hangs, not a statement about speed.
_PIP_GUARD_SECONDS = 600
_REGION = "us-east-1"
_PROMPT = "What does a bundled relay need? [[length:6]]"


def pinned_boto3() -> str:
    """The boto3 the tests pin, standing in for the one Lambda's runtime ships."""
    for line in (REPO_ROOT / "requirements-dev.txt").read_text().splitlines():
        if line.startswith("boto3=="):
            return line.strip()
    raise AssertionError("requirements-dev.txt pins no boto3")


def pip_install(*arguments: str) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            *arguments,
        ],
        check=True,
        timeout=_PIP_GUARD_SECONDS,
    )


@pytest.fixture(scope="module")
def lambda_like(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The bundled asset, a runtime dir holding boto3, and an interpreter with no packages."""
    root = tmp_path_factory.mktemp("lambda")
    bundle = root / "task"
    bundle.mkdir()
    assert PipLocalBundling(STREAMER_SOURCE, architecture="x86_64").try_bundle(str(bundle), None)
    runtime = root / "runtime"
    pip_install("--target", str(runtime), "--only-binary=:all:", pinned_boto3())
    venv = root / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)],
        check=True,
        timeout=HANG_GUARD_SECONDS,
    )
    return {"bundle": bundle, "runtime": runtime, "venv": venv, "root": root}


@pytest.fixture(scope="module")
def emulator_url() -> Iterator[str]:
    config = StackConfig(emulator_port=0, tokens_per_second=0, first_token_delay=0)
    output = LineBuffer()
    child = Child(
        "emulator",
        emulator_command(config),
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        sink=output,
    )
    try:
        yield child.wait_for_line(_LISTENING, timeout=HANG_GUARD_SECONDS).group(1)
    finally:
        child.stop()


def lambda_environment(paths: dict[str, Path], *, emulator_url: str, port: int) -> dict[str, str]:
    """What Lambda and the stack set, and nothing from this machine's environment."""
    return {
        "PATH": f"{paths['venv'] / 'bin'}:/usr/bin:/bin",
        "HOME": str(paths["root"]),
        "LAMBDA_TASK_ROOT": str(paths["bundle"]),
        "LAMBDA_RUNTIME_DIR": str(paths["runtime"]),
        "PORT": str(port),
        "ENDPOINT_NAME": ENDPOINT_NAME,
        "AWS_REGION": _REGION,
        "AWS_DEFAULT_REGION": _REGION,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": emulator_url,
        "PYTHONUNBUFFERED": "1",
    }


def request_lines(output: LineBuffer) -> list[dict[str, Any]]:
    lines = [json.loads(line) for name, line in output.lines() if line.startswith("{")]
    return [line for line in lines if line.get("message") == "request finished"]


def wait_until(condition: Callable[[], bool]) -> bool:
    """Poll until the condition holds or the hang guard passes; whether it held."""
    give_up = time.monotonic() + HANG_GUARD_SECONDS
    while not condition():
        if time.monotonic() > give_up:
            return False
        time.sleep(0.02)
    return True


def test_the_interpreter_alone_cannot_run_the_relay(lambda_like: dict[str, Path]) -> None:
    """What makes the next test mean something: without the asset and the runtime dir on its
    path, this interpreter has neither the relay's dependencies nor boto3."""
    python = lambda_like["venv"] / "bin" / "python"
    for module in ("starlette", "uvicorn", "aws_lambda_powertools", "boto3"):
        result = subprocess.run(
            [str(python), "-c", f"import {module}"],
            capture_output=True,
            env={"PATH": "/usr/bin:/bin"},
            cwd=lambda_like["root"],
            timeout=HANG_GUARD_SECONDS,
            check=False,
        )
        assert result.returncode != 0, module


def test_the_bundled_asset_serves_a_streamed_answer(
    lambda_like: dict[str, Path], emulator_url: str
) -> None:
    bundle = lambda_like["bundle"]
    port = free_port()
    output = LineBuffer()
    relay = Child(
        "relay",
        ["sh", str(bundle / "run.sh")],
        cwd=bundle,  # Lambda starts the handler in the task root
        env=lambda_environment(lambda_like, emulator_url=emulator_url, port=port),
        sink=output,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_until_healthy(url, relay, timeout=HANG_GUARD_SECONDS)
        except Exception:
            print(output.render())
            raise
        with httpx.Client(base_url=url, timeout=HANG_GUARD_SECONDS) as client:
            health = client.get("/health")
            assert (health.status_code, health.json()) == (200, {"status": "ok"})
            response = client.post(
                "/", json={"inputs": _PROMPT}, headers={"accept": "application/x-ndjson"}
            )
        assert response.status_code == 200, response.text
        lines = parse_ndjson(response.content)
        assert [line["text"] for line in lines[:-1]] == expected_tokens(_PROMPT)
        assert lines[-1] == {"event": "done", "finish_reason": "eos_token", "generated_tokens": 7}

        # Powertools, from the asset, writes one line per request once each response ended (the
        # start-up health polls too): wait for the answer's line, which comes last.
        def answer_logged() -> bool:
            lines = request_lines(output)
            return bool(lines) and lines[-1]["method"] == "POST"

        assert wait_until(answer_logged), output.render()
        assert (
            "relay",
            f"jumpstream-relay: listening on {url}, relaying to SageMaker endpoint "
            f"{ENDPOINT_NAME} in {_REGION}",
        ) in output.lines()
        lines = request_lines(output)
        assert [line["path"] for line in lines if line["method"] == "POST"] == ["/"]
        assert {line["status"] for line in lines} == {200}
        assert lines[-1]["generated_tokens"] == 7
    finally:
        relay.stop()
