"""Child processes of the local stack: each in its own process group, its output relayed by line.

Why a process group per child: stopping a child must also stop anything it started (``run.sh``
execs Python today, but a shell script may fork tomorrow), and a group is what one signal reaches
as a whole. A new session also keeps the terminal's Ctrl-C away from the children, so the parent
decides the order in which things stop.

Why reader threads: a child whose pipe nobody drains blocks once the pipe is full, and reading
line by line lets the parent both show the output (each line tagged with the child's name) and
wait for a line such as ``emulator listening on http://...``.
"""

from __future__ import annotations

import collections
import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, TextIO

__all__ = [
    "Child",
    "ChildExited",
    "LineBuffer",
    "LineSink",
    "PrefixedWriter",
    "StartupTimeout",
]

#: Receives each line a child writes: (child name, line without its line break).
LineSink = Callable[[str, str], None]

#: How long a child may take to stop after SIGTERM before its group gets SIGKILL.
DEFAULT_STOP_GRACE_SECONDS = 5.0
#: Lines kept for :meth:`Child.wait_for_line`; startup lines come first, so a few are plenty.
_WATCHED_LINES = 200
_POLL_SECONDS = 0.05
_READER_JOIN_SECONDS = 2.0


class ChildExited(RuntimeError):
    """A child ended while the parent still needed it."""

    def __init__(self, name: str, returncode: int) -> None:
        super().__init__(f"the {name} exited with status {returncode}")
        self.name = name
        self.returncode = returncode


class StartupTimeout(RuntimeError):
    """A child did not become ready in time."""


class PrefixedWriter:
    """A sink that writes ``[name] line`` to a stream; one lock keeps lines whole."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def __call__(self, name: str, line: str) -> None:
        stream = self._stream if self._stream is not None else sys.stderr
        with self._lock, contextlib.suppress(OSError, ValueError):
            stream.write(f"[{name}] {line}\n")
            stream.flush()


class LineBuffer:
    """A sink that keeps the last lines of every child, to show them only if something fails.

    ``echo`` (another sink) also receives every line, for a ``--verbose`` mode.
    """

    def __init__(self, *, keep: int = 200, echo: LineSink | None = None) -> None:
        self._lines: collections.deque[tuple[str, str]] = collections.deque(maxlen=keep)
        self._echo = echo
        self._lock = threading.Lock()

    def __call__(self, name: str, line: str) -> None:
        with self._lock:
            self._lines.append((name, line))
        if self._echo is not None:
            self._echo(name, line)

    def lines(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self._lines)

    def render(self) -> str:
        """The kept lines as ``[name] line`` text, for an error report."""
        return "".join(f"[{name}] {line}\n" for name, line in self.lines())


class Child:
    """One running child process, started in a new session (its own process group)."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        sink: LineSink,
    ) -> None:
        self.name = name
        self._sink = sink
        self._seen: collections.deque[str] = collections.deque(maxlen=_WATCHED_LINES)
        self._seen_changed = threading.Condition()
        self._process = subprocess.Popen(  # noqa: S603 - argv is built by this package
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self._readers = [
            self._start_reader(self._process.stdout, "stdout"),
            self._start_reader(self._process.stderr, "stderr"),
        ]

    @property
    def pid(self) -> int:
        return self._process.pid

    def poll(self) -> int | None:
        """The exit status, or None while the child runs."""
        return self._process.poll()

    def wait_for_line(self, pattern: re.Pattern[str], *, timeout: float) -> re.Match[str]:
        """Block until the child writes a line matching ``pattern`` (from its start on).

        Raises ChildExited if it ends first and StartupTimeout after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        with self._seen_changed:
            while True:
                for line in self._seen:
                    match = pattern.search(line)
                    if match is not None:
                        return match
                returncode = self._process.poll()
                if returncode is not None and not self._readers_alive():
                    raise ChildExited(self.name, returncode)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise StartupTimeout(
                        f"the {self.name} did not print {pattern.pattern!r} within {timeout:g} s"
                    )
                self._seen_changed.wait(min(remaining, _POLL_SECONDS))

    def stop(self, *, grace: float = DEFAULT_STOP_GRACE_SECONDS) -> int:
        """SIGTERM the child's group, SIGKILL it after ``grace`` seconds; return the status.

        The group is signalled even when the child itself has already exited: something it
        started may still be running in it.
        """
        self._signal_group(signal.SIGTERM)
        try:
            returncode = self._process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)
            returncode = self._process.wait()
        else:
            # The leader is gone; anything left in its group gets no second chance.
            self._signal_group(signal.SIGKILL)
        for reader in self._readers:
            reader.join(timeout=_READER_JOIN_SECONDS)
        return returncode

    def _signal_group(self, signum: signal.Signals) -> None:
        # The child called setsid(), so its pid is its process group id.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._process.pid, signum)

    def _readers_alive(self) -> bool:
        return any(reader.is_alive() for reader in self._readers)

    def _start_reader(self, pipe: IO[bytes] | None, stream_name: str) -> threading.Thread:
        assert pipe is not None
        thread = threading.Thread(
            target=self._pump,
            args=(pipe,),
            name=f"{self.name}-{stream_name}",
            daemon=True,
        )
        thread.start()
        return thread

    def _pump(self, pipe: IO[bytes]) -> None:
        with pipe:
            for raw in iter(pipe.readline, b""):
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                with self._seen_changed:
                    self._seen.append(line)
                    self._seen_changed.notify_all()
                self._sink(self.name, line)
        with self._seen_changed:
            self._seen_changed.notify_all()
