"""Cold start (``cold_start_ms_p50``, ``fastapi_cold_start_ms_p50``, ``rss_ready_mib``).

What it takes to get from process start to the first ``/health`` 200, median of several, the
relay and the baseline started alternately: the relay as Lambda starts it (``run.sh``), against the
FastAPI + uvicorn app of ``baseline_app/`` that creates a boto3 sagemaker-runtime client at import
(the Web Adapter's FastAPI example). Each runs on a bare interpreter with only its own packages on
the path (for the relay: the asset's, and boto3 as Lambda's runtime provides it; see packages.py).

Method: the CPU time the process used until it answered (user + system, ``/proc/PID/stat``, read
when the first 200 arrives; ``run.sh`` execs Python, so the pid is the relay's). Starting is
CPU-bound work (imports, the botocore client): on an idle core this is the time to ready, within
a few percent, and unlike wall time a busy machine does not stretch it (wall-time ratios of three
starts swung from 0.44 to 0.84 at a load average of 4 to 5 on two cores). ``rss_ready_mib``: the
relay's resident memory at that moment (``/proc/PID/status``).

Bytecode: both read their compiled modules from one private cache (``PYTHONPYCACHEPREFIX`` in the
bench's temporary directory), filled by one start of each that is not counted, so neither pays
for compiling and ``PYTHONDONTWRITEBYTECODE`` in the caller's environment does not tilt the
comparison (with it, the relay compiled its own modules on every start and the baseline's one
small module hardly cost anything). What is compared is the work each does to start. (In Lambda,
an asset that ships no ``.pyc`` compiles every module it imports on every cold start.)
"""

from __future__ import annotations

import math
import shutil
import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from jumpstream.bench.fastapi_baseline import uvicorn_command
from jumpstream.bench.packages import asset_requirements, bare_interpreter, link_packages
from jumpstream.bench.plan import START_TIMEOUT_SECONDS, Plan
from jumpstream.bench.proc import process_cpu_seconds, relay_memory
from jumpstream.local import (
    DEFAULT_MODEL_ID,
    LOOPBACK,
    RELAY_ROOT,
    StackConfig,
    free_port,
    healthy_child,
    relay_command,
    relay_environment,
)
from jumpstream.procs import LineSink

__all__ = ["measure_cold_start"]

#: What Lambda's Python runtime provides beside the asset.
_RUNTIME_PACKAGES: Final = ("boto3",)
#: What the FastAPI baseline ships.
_FASTAPI_PACKAGES: Final = ("fastapi", "uvicorn", "boto3")
_KIB: Final = 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class _Ready:
    """A started process at its first ``/health`` 200: CPU so far, and resident memory."""

    cpu_ms: float
    rss_kib: int | None


def _start_until_ready(
    name: str, command: list[str], env: dict[str, str], port: int, cwd: Path, sink: LineSink
) -> _Ready:
    """Start ``command``, wait for its first ``/health`` 200, and read /proc then. (Polling
    every 50 ms does not move the figure: it is CPU time, and a ready process waits idle.)"""
    with healthy_child(
        name, command, env=env, cwd=cwd, port=port, sink=sink, timeout=START_TIMEOUT_SECONDS
    ) as child:
        cpu_seconds = process_cpu_seconds(child.pid)
        memory = relay_memory(child.pid)
    return _Ready(
        cpu_ms=math.nan if cpu_seconds is None else cpu_seconds * 1000,
        rss_kib=None if memory is None else memory.rss_kib,
    )


def _bytecode_environment(env: dict[str, str], cache: Path) -> dict[str, str]:
    """Both apps compile into one private cache and read from it (``PYTHONPYCACHEPREFIX``),
    whatever the caller's ``PYTHONDONTWRITEBYTECODE`` says."""
    env = {name: value for name, value in env.items() if name != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(cache)
    return env


def measure_cold_start(
    plan: Plan, sink: LineSink, model_id: str = DEFAULT_MODEL_ID
) -> dict[str, float]:
    """The relay as Lambda starts it and the FastAPI baseline, alternately, after one start of
    each that is not counted (it fills the bytecode cache); their output goes to `sink`."""
    relay_ms: list[float] = []
    fastapi_ms: list[float] = []
    rss_kib: list[int] = []
    workdir = Path(tempfile.mkdtemp(prefix="jumpstream-bench-"))
    try:
        bare = bare_interpreter(workdir)
        asset = link_packages(asset_requirements(), workdir / "asset")
        runtime = link_packages(_RUNTIME_PACKAGES, workdir / "runtime")
        fastapi = link_packages(_FASTAPI_PACKAGES, workdir / "fastapi")
        config = StackConfig(relay_port=0, model_id=model_id)
        bytecode = workdir / "bytecode"

        def start_relay() -> _Ready:
            port = free_port()
            # Nothing listens on port 9: the relay never calls SageMaker to become ready.
            env = relay_environment(config, emulator_url=f"http://{LOOPBACK}:9", port=port)
            env.update(PATH=f"{bare}:/usr/bin:/bin", PYTHONPATH=str(asset))
            env["LAMBDA_RUNTIME_DIR"] = str(runtime)
            env = _bytecode_environment(env, bytecode)
            return _start_until_ready("relay", relay_command(), env, port, RELAY_ROOT, sink)

        def start_fastapi() -> _Ready:
            port = free_port()
            # The same AWS settings as the relay's (region, dummy credentials, no config files).
            env = relay_environment(config, emulator_url=f"http://{LOOPBACK}:9", port=port)
            env.update(PATH=f"{bare}:/usr/bin:/bin", PYTHONPATH=str(fastapi))
            env = _bytecode_environment(env, bytecode)
            command = uvicorn_command(bare / "python", port, "fastapi_app:app")
            return _start_until_ready("fastapi", command, env, port, workdir, sink)

        start_relay()
        start_fastapi()
        for _ in range(plan.cold_starts):
            relay = start_relay()
            relay_ms.append(relay.cpu_ms)
            if relay.rss_kib is not None:
                rss_kib.append(relay.rss_kib)
            fastapi_ms.append(start_fastapi().cpu_ms)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    relay_p50, fastapi_p50 = statistics.median(relay_ms), statistics.median(fastapi_ms)
    return {
        "cold_start_ms_p50": relay_p50,
        "fastapi_cold_start_ms_p50": fastapi_p50,
        "cold_start_ratio": relay_p50 / fastapi_p50,
        "rss_ready_mib": statistics.median(rss_kib) / _KIB if rss_kib else float("nan"),
    }
