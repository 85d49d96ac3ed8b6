"""The alternative a user would pick, as the bench runs it: a FastAPI + uvicorn app with boto3.

``baseline_app/`` holds its modules (an app directory that uvicorn imports by path, not a package
of the project): ``fastapi_app`` as the Web Adapter's FastAPI example starts (cold_start.py
starts it on a bare interpreter), and ``fastapi_stream_app``, the same app with the route that
streams (this module starts it for paced streams).

The streaming baseline runs in the project's environment, where its packages are: FastAPI,
uvicorn, boto3 and the SageMaker SDK's LineIterator (uvicorn with httptools, as for the relay;
no uvloop in either), on uvicorn's defaults (one process, anyio's 40 worker threads, an access
log line per request, as a user's `run.sh` starts it). It gets the relay's AWS settings (region,
the emulator's URL, dummy credentials) and is sent SageMaker's request body, which it forwards.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from jumpstream.local import (
    LOOPBACK,
    LocalStack,
    StackConfig,
    free_port,
    relay_environment,
    wait_until_healthy,
)
from jumpstream.procs import Child, LineSink

__all__ = [
    "FASTAPI_APP_DIR",
    "StreamingBaseline",
    "healthy_child",
    "streaming_baseline",
    "uvicorn_command",
]

#: The baseline's app directory, given to uvicorn as ``--app-dir``.
FASTAPI_APP_DIR: Final = Path(__file__).with_name("baseline_app")
_READY_WITHIN_SECONDS: Final = 60.0


def uvicorn_command(python: Path | str, port: int, app: str) -> list[str]:
    """How a user's ``run.sh`` starts the app: uvicorn's defaults, the port the adapter calls."""
    return [str(python), "-m", "uvicorn", f"--port={port}", f"--app-dir={FASTAPI_APP_DIR}", app]


@contextlib.contextmanager
def healthy_child(
    name: str, command: list[str], *, env: dict[str, str], cwd: Path, port: int, sink: LineSink
) -> Iterator[Child]:
    """``command`` started and answering its first ``GET /health`` 200 on ``port``; stopped
    (its whole process group) when the block ends."""
    child = Child(name, command, cwd=cwd, env=env, sink=sink)
    try:
        wait_until_healthy(f"http://{LOOPBACK}:{port}", child, timeout=_READY_WITHIN_SECONDS)
        yield child
    finally:
        child.stop()


@dataclass(frozen=True, slots=True)
class StreamingBaseline:
    """The streaming baseline, ready: where it listens, and its process for its CPU time."""

    url: str
    pid: int


@contextlib.contextmanager
def streaming_baseline(
    stack: LocalStack, config: StackConfig, *, sink: LineSink
) -> Iterator[StreamingBaseline]:
    """``fastapi_stream_app`` started on ``stack``'s emulator with ``config``'s AWS settings,
    until the block ends."""
    port = free_port()
    env = relay_environment(config, emulator_url=stack.emulator_url, port=port)
    command = uvicorn_command(sys.executable, port, "fastapi_stream_app:app")
    with healthy_child(
        "fastapi", command, env=env, cwd=FASTAPI_APP_DIR, port=port, sink=sink
    ) as child:
        yield StreamingBaseline(url=f"http://{LOOPBACK}:{port}", pid=child.pid)
