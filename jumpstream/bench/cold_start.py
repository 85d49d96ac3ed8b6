"""Cold start (``cold_start_ms_p50``, ``fastapi_cold_start_ms_p50``, ``rss_ready_mib``).

Process start to the first ``/health`` 200, median of several, the relay and the baseline started
alternately: the relay as Lambda starts it (``run.sh``), against the FastAPI + uvicorn app of
``baseline_app/`` that creates a boto3 sagemaker-runtime client at import (the Web Adapter's
FastAPI example). Each runs on a bare interpreter with only its own packages on the path (for the
relay: the asset's, and boto3 as Lambda's runtime provides it; see packages.py).

Method: wall time, because readiness is what the adapter waits for; both are started in turn, so
a busy spell hurts them alike, and the ratio is the figure to read. ``rss_ready_mib``: the relay's
resident memory at that moment (``/proc/PID/status``).

Bytecode: both read their compiled modules from one private cache (``PYTHONPYCACHEPREFIX`` in the
bench's temporary directory), filled by one start of each that is not counted, so neither pays
for compiling and ``PYTHONDONTWRITEBYTECODE`` in the caller's environment does not tilt the
comparison (with it, the relay compiled its own modules on every start and the baseline's one
small module hardly cost anything). What is compared is the work each does to start. (In Lambda,
an asset that ships no ``.pyc`` compiles every module it imports on every cold start.)
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Final

import httpx

from jumpstream.bench.packages import asset_requirements, bare_interpreter, link_packages
from jumpstream.bench.plan import BenchFailed, Plan
from jumpstream.bench.proc import relay_memory
from jumpstream.local import (
    DEFAULT_MODEL_ID,
    LOOPBACK,
    RELAY_ROOT,
    StackConfig,
    free_port,
    relay_command,
    relay_environment,
)

__all__ = ["FASTAPI_APP_DIR", "measure_cold_start"]

#: The baseline's app directory: its one module is imported as ``fastapi_app`` by uvicorn.
FASTAPI_APP_DIR: Final = Path(__file__).with_name("baseline_app")
#: What Lambda's Python runtime provides beside the asset.
_RUNTIME_PACKAGES: Final = ("boto3",)
#: What the FastAPI baseline ships.
_FASTAPI_PACKAGES: Final = ("fastapi", "uvicorn", "boto3")
_HEALTH_POLL_SECONDS: Final = 0.002
_READY_WITHIN_SECONDS: Final = 60.0
_KIB: Final = 1024


def _time_to_health(
    command: list[str], env: dict[str, str], port: int, cwd: Path
) -> tuple[float, int | None]:
    """Milliseconds from starting ``command`` to its first ``/health`` 200, and its RSS then."""
    started = time.perf_counter()
    child = subprocess.Popen(  # noqa: S603 - our own interpreter and scripts
        command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        with httpx.Client(timeout=1.0) as client:
            while True:
                if child.poll() is not None:
                    error = child.stderr.read().decode(errors="replace") if child.stderr else ""
                    raise BenchFailed(f"{command[-1]} exited before it was ready: {error[-500:]}")
                try:
                    if client.get(f"http://{LOOPBACK}:{port}/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.perf_counter() - started > _READY_WITHIN_SECONDS:
                    raise BenchFailed(f"{command[-1]} was not ready within a minute")
                time.sleep(_HEALTH_POLL_SECONDS)
        elapsed = (time.perf_counter() - started) * 1000
        memory = relay_memory(child.pid)
        return elapsed, None if memory is None else memory.rss_kib
    finally:
        child.terminate()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        if child.stderr is not None:
            child.stderr.close()


def _bytecode_environment(env: dict[str, str], cache: Path) -> dict[str, str]:
    """Both apps compile into one private cache and read from it (``PYTHONPYCACHEPREFIX``),
    whatever the caller's ``PYTHONDONTWRITEBYTECODE`` says."""
    env = {name: value for name, value in env.items() if name != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(cache)
    return env


def measure_cold_start(plan: Plan, model_id: str = DEFAULT_MODEL_ID) -> dict[str, float]:
    """The relay as Lambda starts it and the FastAPI baseline, alternately, after one start of
    each that is not counted (it fills the bytecode cache)."""
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

        def start_relay() -> tuple[float, int | None]:
            port = free_port()
            # Nothing listens on port 9: the relay never calls SageMaker to become ready.
            env = relay_environment(config, emulator_url=f"http://{LOOPBACK}:9", port=port)
            env.update(PATH=f"{bare}:/usr/bin:/bin", PYTHONPATH=str(asset))
            env["LAMBDA_RUNTIME_DIR"] = str(runtime)
            env = _bytecode_environment(env, bytecode)
            return _time_to_health(relay_command(), env, port, RELAY_ROOT)

        def start_fastapi() -> tuple[float, int | None]:
            port = free_port()
            # The same AWS settings as the relay's (region, dummy credentials, no config files).
            env = relay_environment(config, emulator_url=f"http://{LOOPBACK}:9", port=port)
            env.update(PATH=f"{bare}:/usr/bin:/bin", PYTHONPATH=str(fastapi))
            env = _bytecode_environment(env, bytecode)
            command = [
                str(bare / "python"),
                "-m",
                "uvicorn",
                f"--port={port}",
                f"--app-dir={FASTAPI_APP_DIR}",
                "fastapi_app:app",
            ]
            return _time_to_health(command, env, port, workdir)

        start_relay()
        start_fastapi()
        for _ in range(plan.cold_starts):
            elapsed, rss = start_relay()
            relay_ms.append(elapsed)
            if rss is not None:
                rss_kib.append(rss)
            fastapi_ms.append(start_fastapi()[0])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    relay_p50, fastapi_p50 = statistics.median(relay_ms), statistics.median(fastapi_ms)
    return {
        "cold_start_ms_p50": relay_p50,
        "fastapi_cold_start_ms_p50": fastapi_p50,
        "cold_start_ratio": relay_p50 / fastapi_p50,
        "rss_ready_mib": statistics.median(rss_kib) / _KIB if rss_kib else float("nan"),
    }
