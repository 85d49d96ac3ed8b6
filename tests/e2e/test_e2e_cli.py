"""`python -m jumpstream demo` and `local`, run as a person runs them, in a subprocess.

`local` is checked the way its user relies on it: it comes up, it serves, and Ctrl-C or SIGTERM
leaves no process behind; a child that dies takes it down with a clear line.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx
import pytest
from streamer.prompt_template import Message, PromptTemplate

from jumpstream import demo
from jumpstream.demo import DEMO_PROMPT
from jumpstream.local import DEFAULT_MODEL_ID, REPO_ROOT
from stacks.catalog import load_catalog
from tests.e2e.support import HANG_GUARD_SECONDS, chat_turn, expected_answer, generate_body
from tests.processes import wait_until_gone

_RELAY_LINE = re.compile(r"relay \(lambda/streamer/run\.sh\)\s+(http://\S+)/\s+\(pid (\d+)\)")
_READY = "Press Ctrl-C to stop."


def jumpstream(*args: str) -> list[str]:
    return [sys.executable, "-m", "jumpstream", *args]


def child_pids(parent: int) -> set[int]:
    """Processes whose parent is ``parent``, from /proc."""
    children = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == parent:
            children.add(int(stat.parent.name))
    return children


@dataclass(slots=True)
class RunningLocal:
    process: subprocess.Popen[str]
    lines: queue.Queue[str]
    relay_url: str
    relay_pid: int
    children: set[int]
    #: What it printed until it was ready.
    ready: list[str]


def _pump(stream: IO[str], lines: queue.Queue[str]) -> None:
    for line in stream:
        lines.put(line.rstrip("\n"))


def _read_until(lines: queue.Queue[str], wanted: str) -> list[str]:
    seen: list[str] = []
    deadline = time.monotonic() + HANG_GUARD_SECONDS
    while not seen or seen[-1] != wanted:
        seen.append(lines.get(timeout=max(0.0, deadline - time.monotonic())))
    return seen


@contextlib.contextmanager
def start_local(*extra: str) -> Iterator[RunningLocal]:
    """`python -m jumpstream local` on free ports, up and serving."""
    process = subprocess.Popen(
        jumpstream("local", "--port", "0", "--tokens-per-second", "0", *extra),
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    threading.Thread(target=_pump, args=(process.stdout, lines), daemon=True).start()
    try:
        seen = _read_until(lines, _READY)
        match = next(m for m in map(_RELAY_LINE.search, seen) if m is not None)
        yield RunningLocal(
            process=process,
            lines=lines,
            relay_url=match[1],
            relay_pid=int(match[2]),
            children=child_pids(process.pid),
            ready=seen,
        )
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=HANG_GUARD_SECONDS)
        assert process.stderr is not None
        process.stderr.close()


@pytest.fixture
def running_local() -> Iterator[RunningLocal]:
    with start_local() as running:
        yield running


def test_demo_streams_an_answer_and_exits_0() -> None:
    result = subprocess.run(
        jumpstream("demo"),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    # The demo asks as a chat: the model answers the prompt laid out in its own format.
    template = PromptTemplate.from_json(load_catalog().get(DEFAULT_MODEL_ID).prompt_template)
    prompt = template.render([Message("user", DEMO_PROMPT)])
    answer = chat_turn(expected_answer(prompt, {"max_new_tokens": 128}))
    assert answer in result.stdout
    assert re.search(r"-- first token after \d+\.\d\d s, \d+ tokens in \d+\.\d\d s", result.stdout)
    # It says the answer is a stand-in's, and what to run next.
    assert "stand-in for huggingface-llm-mistral-7b-instruct" in result.stdout
    assert result.stdout.rstrip().endswith(demo.NEXT_STEPS.strip().splitlines()[-1])
    for command in ("make local", "make test", "make synth ENV=dev"):
        assert f"  {command} " in result.stdout


def test_demo_fails_with_a_clear_message_when_the_answer_breaks() -> None:
    result = subprocess.run(
        jumpstream("demo", "--prompt", "Hi [[fault:stream_broken@2]]", "--tokens-per-second", "0"),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert "jumpstream demo failed: the answer broke off" in result.stderr


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_local_serves_then_stops_both_children_on_a_signal(
    running_local: RunningLocal, signum: signal.Signals
) -> None:
    assert running_local.relay_pid in running_local.children
    assert len(running_local.children) == 2  # the relay and the emulator, nothing else
    with httpx.Client(base_url=running_local.relay_url, timeout=HANG_GUARD_SECONDS) as client:
        response = client.post("/", json=generate_body("Hello from a test."))
    assert response.status_code == 200
    assert response.text == expected_answer("Hello from a test.")

    running_local.process.send_signal(signum)
    assert running_local.process.wait(timeout=HANG_GUARD_SECONDS) == 0
    assert wait_until_gone(running_local.children, guard_seconds=HANG_GUARD_SECONDS)
    assert running_local.process.stderr is not None
    stderr = running_local.process.stderr.read()
    assert f"jumpstream local: {signum.name}, stopped the relay and the emulator" in stderr
    assert "[relay] " in stderr  # the children's output went through, tagged


def test_local_exits_1_when_a_child_dies(running_local: RunningLocal) -> None:
    os.kill(running_local.relay_pid, signal.SIGKILL)
    assert running_local.process.wait(timeout=HANG_GUARD_SECONDS) == 1
    assert wait_until_gone(running_local.children, guard_seconds=HANG_GUARD_SECONDS)
    assert running_local.process.stderr is not None
    stderr = running_local.process.stderr.read()
    assert "jumpstream local: the relay exited unexpectedly with status -9; stopping" in stderr


def test_local_refuses_a_port_in_use() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            jumpstream("local", "--port", str(port)),
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is in use" in result.stderr
    assert result.stdout == ""


def test_local_with_api_keys_prints_a_key_that_works_and_commands_that_use_it() -> None:
    with start_local("--api-keys") as running:
        ready = "\n".join(running.ready)
        key = re.search(r"^  (jsk_\S+)$", ready, re.MULTILINE)
        assert key is not None, ready
        assert len(running.children) == 3  # the relay, the emulator, the keys' server
        with httpx.Client(base_url=running.relay_url, timeout=HANG_GUARD_SECONDS) as client:
            body = generate_body("Hello", max_new_tokens=5)
            assert client.post("/", json=body).status_code == 401
            answer = client.post("/", json=body, headers={"x-api-key": key[1]})
            assert answer.status_code == 200
            assert answer.text == expected_answer("Hello", {"max_new_tokens": 5})
        # The printed commands, run as printed: the openai snippet, then keys usage.
        commands = [line.strip() for line in running.ready if line.startswith("  python ")]
        assert len(commands) == 3, ready
        for command in (commands[0], commands[2]):
            done = subprocess.run(  # noqa: S602 (the test runs what the user is told to run)
                command.replace("python ", f"{sys.executable} ", 1),
                shell=True,
                cwd=REPO_ROOT,
                capture_output=True,
                text=True,
                timeout=HANG_GUARD_SECONDS,
            )
            assert done.returncode == 0, done.stderr
        # Usage: the key made for this run ("local"), its two answered requests.
        key_id = key[1].split("_")[1]
        assert re.search(rf"^\S+\s+{key_id}\s+local\s+2\s", done.stdout, re.MULTILINE), done.stdout
        running.process.send_signal(signal.SIGINT)
        assert running.process.wait(timeout=HANG_GUARD_SECONDS) == 0
        assert wait_until_gone(running.children, guard_seconds=HANG_GUARD_SECONDS)
