"""Child processes: output relayed by line, readiness lines awaited, whole groups stopped."""

from __future__ import annotations

import io
import re
import sys
import time
from pathlib import Path

import pytest

from jumpstream.procs import Child, ChildExited, LineBuffer, PrefixedWriter, StartupTimeout
from tests.processes import is_running, wait_until_gone

# A hang guard, not a speed assertion.
GUARD_SECONDS = 20.0


def wait_for_exit(child: Child) -> int | None:
    deadline = time.monotonic() + GUARD_SECONDS
    while child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    return child.poll()


def python_child(code: str, sink: LineBuffer, name: str = "child") -> Child:
    return Child(name, [sys.executable, "-c", code], cwd=Path.cwd(), env={}, sink=sink)


def test_lines_reach_the_sink_tagged_with_the_child_name() -> None:
    sink = LineBuffer()
    child = python_child(
        "import sys; print('out 1', flush=True); print('err 1', file=sys.stderr, flush=True);"
        "print('日本語', flush=True)",
        sink,
        name="emulator",
    )
    child.wait_for_line(re.compile("^日本語$"), timeout=GUARD_SECONDS)
    assert wait_for_exit(child) == 0
    child.stop()  # joins the readers: every line is in the sink now
    assert sorted(sink.lines()) == sorted(
        [("emulator", "out 1"), ("emulator", "err 1"), ("emulator", "日本語")]
    )
    assert "[emulator] err 1\n" in sink.render()


def test_wait_for_line_returns_the_match() -> None:
    sink = LineBuffer()
    child = python_child(
        "import time; print('starting'); print('listening on http://127.0.0.1:1234', flush=True);"
        "time.sleep(60)",
        sink,
    )
    try:
        match = child.wait_for_line(re.compile(r"listening on (\S+)"), timeout=GUARD_SECONDS)
        assert match.group(1) == "http://127.0.0.1:1234"
    finally:
        child.stop()


def test_wait_for_line_reports_a_child_that_exits_first() -> None:
    child = python_child(
        "import sys; print('bad setting', file=sys.stderr); sys.exit(3)", LineBuffer()
    )
    with pytest.raises(ChildExited) as raised:
        child.wait_for_line(re.compile("never"), timeout=GUARD_SECONDS)
    assert raised.value.returncode == 3
    assert "the child exited with status 3" in str(raised.value)
    child.stop()


def test_wait_for_line_gives_up_after_its_timeout() -> None:
    child = python_child("import time; time.sleep(60)", LineBuffer())
    try:
        with pytest.raises(StartupTimeout, match="did not print"):
            child.wait_for_line(re.compile("never"), timeout=0.2)
    finally:
        child.stop()


def test_stop_ends_the_whole_process_group() -> None:
    sink = LineBuffer()
    child = Child(
        "shell",
        ["sh", "-c", "sleep 60 & echo grandchild $!; wait"],
        cwd=Path.cwd(),
        env={"PATH": "/usr/bin:/bin"},
        sink=sink,
    )
    grandchild = int(child.wait_for_line(re.compile(r"grandchild (\d+)"), timeout=GUARD_SECONDS)[1])
    assert is_running(grandchild)
    child.stop()
    assert child.poll() is not None
    assert wait_until_gone([grandchild], guard_seconds=GUARD_SECONDS)


def test_stop_kills_a_child_that_ignores_sigterm() -> None:
    child = python_child(
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
        "print('ready', flush=True); time.sleep(60)",
        LineBuffer(),
    )
    child.wait_for_line(re.compile("ready"), timeout=GUARD_SECONDS)
    assert child.stop(grace=0.2) == -9
    assert not is_running(child.pid)


def test_stop_after_the_child_exited_returns_its_status() -> None:
    child = python_child("raise SystemExit(4)", LineBuffer())
    assert wait_for_exit(child) == 4
    assert child.stop() == 4


def test_line_buffer_keeps_the_last_lines_and_echoes() -> None:
    echoed: list[tuple[str, str]] = []
    buffer = LineBuffer(keep=2, echo=lambda name, line: echoed.append((name, line)))
    for number in range(3):
        buffer("relay", f"line {number}")
    assert buffer.lines() == [("relay", "line 1"), ("relay", "line 2")]
    assert len(echoed) == 3


def test_prefixed_writer_tags_each_line() -> None:
    stream = io.StringIO()
    writer = PrefixedWriter(stream)
    writer("relay", "hello")
    writer("emulator", "world")
    assert stream.getvalue() == "[relay] hello\n[emulator] world\n"
