"""How the relay starts from run.sh: bad settings end it at once, the endpoint URL is honoured."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from jumpstream.local import (
    RELAY_ROOT,
    StackConfig,
    free_port,
    healthy_child,
    relay_command,
    relay_environment,
)
from jumpstream.procs import LineBuffer
from tests.e2e.support import HANG_GUARD_SECONDS, expected_answer, generate_body


def run_relay_until_it_exits(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        relay_command(),
        cwd=RELAY_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_SECONDS,
        check=False,
    )


def base_env() -> dict[str, str]:
    return relay_environment(StackConfig(), emulator_url="http://127.0.0.1:9", port=free_port())


@pytest.mark.parametrize(
    ("change", "line_start"),
    [
        ({"ENDPOINT_NAME": None}, "configuration error: ENDPOINT_NAME is not set"),
        ({"ENDPOINT_NAME": "not a valid name!"}, "configuration error: ENDPOINT_NAME must be"),
        ({"AWS_REGION": None}, "configuration error: AWS_REGION is not set"),
        ({"PORT": "http"}, "configuration error: PORT must be"),
        ({"HOST": "bad host"}, "configuration error: HOST must be an IP address"),
        # A documentation address (RFC 5737) this machine does not have: the bind fails.
        ({"HOST": "192.0.2.1"}, "cannot listen on 192.0.2.1 port "),
        ({"MAX_BODY_BYTES": "-1"}, "configuration error: MAX_BODY_BYTES must be"),
        ({"MAX_BODY_BYTES": "a lot"}, "configuration error: MAX_BODY_BYTES must be"),
        (
            {"UPSTREAM_READ_TIMEOUT_SECONDS": "0"},
            "configuration error: UPSTREAM_READ_TIMEOUT_SECONDS must be",
        ),
        (
            {"AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": "not a url"},
            "cannot create the SageMaker client: Invalid endpoint: not a url",
        ),
    ],
)
def test_a_bad_setting_ends_the_relay_with_one_clear_line(
    change: dict[str, str | None], line_start: str
) -> None:
    env = base_env()
    for name, value in change.items():
        if value is None:
            env.pop(name)
        else:
            env[name] = value
    result = run_relay_until_it_exits(env)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"jumpstream-relay: {line_start}"), lines[0]
    assert "Traceback" not in result.stderr


def test_a_port_already_taken_ends_the_relay_with_one_clear_line() -> None:
    env = base_env()
    with socket.create_server(("127.0.0.1", 0)) as taken:
        env["PORT"] = str(taken.getsockname()[1])
        result = run_relay_until_it_exits(env)
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line == (
        f"jumpstream-relay: cannot listen on 127.0.0.1 port {env['PORT']}: Address already in use"
    )


def test_the_relay_calls_the_endpoint_url_it_is_given(
    relay: httpx.Client, emulator: httpx.Client
) -> None:
    before = emulator.get("/_emulator/streams").json()
    response = relay.post("/", json=generate_body("Which endpoint?", max_new_tokens=4))
    after = emulator.get("/_emulator/streams").json()
    assert response.text == expected_answer("Which endpoint?", {"max_new_tokens": 4})
    assert len(after) == len(before) + 1
    assert after[-1]["state"] == "completed"
    assert after[-1]["tokens_sent"] == 4


@contextmanager
def relay_pointed_at(endpoint_url: str) -> Iterator[str]:
    port = free_port()
    output = LineBuffer()
    with healthy_child(
        "relay",
        relay_command(),
        cwd=RELAY_ROOT,
        env=relay_environment(StackConfig(), emulator_url=endpoint_url, port=port),
        port=port,
        sink=output,
        timeout=HANG_GUARD_SECONDS,
    ):
        yield f"http://127.0.0.1:{port}"


def test_a_relay_pointed_at_nothing_answers_502_and_stays_up() -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    with relay_pointed_at(dead) as url, httpx.Client(base_url=url, timeout=HANG_GUARD_SECONDS) as c:
        for _ in range(2):
            response = c.post("/", json=generate_body("Anyone there?"))
            assert response.status_code == 502
            assert response.json()["type"] == "upstream_error"
        assert c.get("/health").status_code == 200
