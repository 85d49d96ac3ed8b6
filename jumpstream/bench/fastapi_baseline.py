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

from jumpstream.bench.plan import START_TIMEOUT_SECONDS
from jumpstream.local import (
    LOOPBACK,
    LocalStack,
    StackConfig,
    free_port,
    healthy_child,
    relay_environment,
)
from jumpstream.procs import LineSink

__all__ = [
    "FASTAPI_APP_DIR",
    "StreamingBaseline",
    "streaming_baseline",
    "uvicorn_command",
]

#: The baseline's app directory, given to uvicorn as ``--app-dir``.
FASTAPI_APP_DIR: Final = Path(__file__).with_name("baseline_app")


def uvicorn_command(python: Path | str, port: int, app: str) -> list[str]:
    """How a user's ``run.sh`` starts the app: uvicorn's defaults, the port the adapter calls."""
    return [str(python), "-m", "uvicorn", f"--port={port}", f"--app-dir={FASTAPI_APP_DIR}", app]


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
        "fastapi",
        command,
        env=env,
        cwd=FASTAPI_APP_DIR,
        port=port,
        sink=sink,
        timeout=START_TIMEOUT_SECONDS,
    ) as child:
        yield StreamingBaseline(url=f"http://{LOOPBACK}:{port}", pid=child.pid)
