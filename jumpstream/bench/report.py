"""The results: the keys of ``latest.json`` in order, the issue's targets, the table, the file.

Nothing here is a threshold: a target missed is printed as MISSED, never an error.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
from pathlib import Path
from typing import Any, Final

__all__ = ["KEYS", "TARGETS", "machine", "render_table", "write_json"]

#: The keys of ``latest.json``, in the order the table shows them.
KEYS: Final = (
    "ttft_direct_ms_p50",
    "ttft_relay_ms_p50",
    "ttft_added_ms_p50",
    "ttft_added_ms_p95",
    "throughput_direct_tps",
    "throughput_relay_tps",
    "throughput_ratio",
    "relay_cpu_us_per_token",
    "direct_cpu_us_per_token",
    "relay_cpu_over_direct",
    "relay_cpu_ms_per_request",
    "decoder_tps",
    "sdk_lineiterator_tps",
    "naive_split_tps",
    "decoder_speedup_vs_sdk",
    "decoder_peak_kib_1k",
    "decoder_peak_kib_100k",
    "cold_start_ms_p50",
    "fastapi_cold_start_ms_p50",
    "cold_start_ratio",
    "rss_ready_mib",
    "concurrent_streams",
    "concurrent_p99_added_gap_ms",
    "concurrent_streams_max",
    "fastapi_concurrent_streams_max",
    "relay_cpu_us_per_paced_token",
    "relay_cpu_us_per_paced_token_max",
    "pipe_cpu_us_per_paced_token",
    "fastapi_cpu_us_per_paced_token",
    "pool_calls_per_request_16",
    "pool_calls_per_request_128",
    "pool_calls_per_request_512",
    "pool_cpu_us_per_request_512",
    "httpcore_pool_calls_per_request_16",
    "httpcore_pool_calls_per_request_128",
    "httpcore_pool_calls_per_request_512",
    "httpcore_pool_cpu_us_per_request_512",
    "machine",
)
#: What the issue asks of each figure: (comparison, bound). Reported, never enforced.
TARGETS: Final = {
    "ttft_added_ms_p50": ("<=", 1.0),
    "throughput_ratio": (">=", 0.9),
    "relay_cpu_over_direct": ("<=", 1.5),
    "relay_cpu_ms_per_request": ("<=", 1.0),
    "decoder_speedup_vs_sdk": (">=", 2.0),
    "cold_start_ratio": ("<=", 0.6),
    "rss_ready_mib": ("<=", 60.0),
    "concurrent_p99_added_gap_ms": ("<=", 10.0),
    "concurrent_streams_max": (">=", 512),
    "relay_cpu_us_per_paced_token": ("<=", 60.0),
}
_NAME_WIDTH: Final = 30
_VALUE_WIDTH: Final = 12


def machine() -> dict[str, Any]:
    """Where the figures come from; the load average says how busy the machine was."""
    try:
        load = [round(value, 2) for value in os.getloadavg()]
    except OSError:
        load = []
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average_1_5_15": load,
    }


def render_table(document: dict[str, Any]) -> str:
    """One row per figure, with the issue's target and whether this run met it."""
    lines = [f"{'figure':<{_NAME_WIDTH}}{'value':>{_VALUE_WIDTH}}  target"]
    for key in KEYS:
        if key == "machine":
            continue
        value = document[key]
        shown = f"{value:.0f}" if abs(value) >= 1000 else f"{value:.2f}"
        target = TARGETS.get(key)
        verdict = ""
        if target is not None:
            comparison, bound = target
            met = value <= bound if comparison == "<=" else value >= bound
            verdict = f"{comparison} {bound:g}  {'met' if met else 'MISSED'}"
        lines.append(f"{key:<{_NAME_WIDTH}}{shown:>{_VALUE_WIDTH}}  {verdict}".rstrip())
    box = document["machine"]
    lines.append(
        f"machine: {box['platform']}, {box['cpus']} CPUs, Python {box['python']}, load "
        f"{box['load_average_1_5_15']} before, {box.get('load_average_after')} after"
    )
    return "\n".join(lines)


def write_json(directory: Path, document: dict[str, Any]) -> Path:
    """The run as ``bench-<UTC time>.json`` and as ``latest.json``; returns the latter."""
    directory.mkdir(parents=True, exist_ok=True)
    stamped = directory / f"bench-{dt.datetime.now(dt.UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    text = json.dumps(document, indent=2) + "\n"
    stamped.write_text(text, encoding="utf-8")
    latest = directory / "latest.json"
    latest.write_text(text, encoding="utf-8")
    return latest
