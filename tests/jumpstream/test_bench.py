"""`bench --quick`: every figure the issue lists is written, and every text matched.

Timings are never checked here (the machine decides them); what is checked is that the run
worked: exit status 0 (the bench fails on any error or differing text), the exact keys, finite
numbers where numbers belong, and ratios that agree with the figures they are made of.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jumpstream.bench import KEYS, TARGETS, render_table
from jumpstream.bench.paced import paced_figures
from jumpstream.bench.plan import QUICK
from jumpstream.local import REPO_ROOT

#: Each ratio of the document and the two figures it divides.
RATIOS = {
    "throughput_ratio": ("throughput_relay_tps", "throughput_direct_tps"),
    "relay_cpu_over_direct": ("relay_cpu_us_per_token", "direct_cpu_us_per_token"),
    "decoder_speedup_vs_sdk": ("decoder_tps", "sdk_lineiterator_tps"),
    "cold_start_ratio": ("cold_start_ms_p50", "fastapi_cold_start_ms_p50"),
}
#: Work done costs CPU time: these can only be positive.
CPU_FIGURES = (
    "relay_cpu_us_per_token",
    "direct_cpu_us_per_token",
    "relay_cpu_ms_per_request",
    "relay_cpu_us_per_paced_token",
    "relay_cpu_us_per_paced_token_max",
    "pipe_cpu_us_per_paced_token",
    "fastapi_cpu_us_per_paced_token",
)


def test_quick_bench_writes_every_key_and_the_texts_matched(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "jumpstream", "bench", "--quick", "--output-dir", str(tmp_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "all texts matched" in result.stdout
    latest = tmp_path / "latest.json"
    assert str(latest) in result.stdout
    document = json.loads(latest.read_text())
    assert list(document) == list(KEYS)
    for key in KEYS:
        if key == "machine":
            continue
        value = document[key]
        assert isinstance(value, int | float), key
        assert not isinstance(value, bool), key
        assert math.isfinite(value), key
        assert key in result.stdout  # the table shows every figure
    for ratio, (numerator, denominator) in RATIOS.items():
        assert document[ratio] == pytest.approx(document[numerator] / document[denominator])
    for key in CPU_FIGURES:
        assert document[key] > 0, key
    # The costliest of the rounds costs at least their mean.
    assert document["relay_cpu_us_per_paced_token_max"] >= document["relay_cpu_us_per_paced_token"]
    assert document["concurrent_streams"] == 64
    for key in ("concurrent_streams_max", "fastapi_concurrent_streams_max"):
        assert document[key] in (0, *QUICK.capacity_steps), key
    assert document["machine"]["cpus"] == os.cpu_count()
    assert len(list(tmp_path.glob("bench-*.json"))) == 1


def test_the_table_marks_targets_without_failing() -> None:
    document = dict.fromkeys(KEYS, 1.0)
    document["machine"] = {"platform": "p", "cpus": 2, "python": "3", "load_average_1_5_15": []}
    document["ttft_added_ms_p50"] = 5.0
    table = render_table(document)
    assert "ttft_added_ms_p50" in table
    assert "MISSED" in table
    assert "met" in table


@pytest.mark.parametrize(
    ("key", "value", "verdict"),
    [
        ("relay_cpu_over_direct", 1.5, "<= 1.5  met"),
        ("relay_cpu_over_direct", 2.7, "<= 1.5  MISSED"),
        ("relay_cpu_ms_per_request", 0.8, "<= 1  met"),
        ("relay_cpu_ms_per_request", 2.4, "<= 1  MISSED"),
        ("cold_start_ratio", 0.59, "<= 0.6  met"),
        ("cold_start_ratio", 0.8, "<= 0.6  MISSED"),
    ],
)
def test_the_issues_cpu_and_cold_start_targets_are_shown(
    key: str, value: float, verdict: str
) -> None:
    document = dict.fromkeys(KEYS, 1.0)
    document["machine"] = {"platform": "p", "cpus": 2, "python": "3", "load_average_1_5_15": []}
    document[key] = value
    row = next(line for line in render_table(document).splitlines() if line.startswith(key))
    assert row.endswith(verdict)
    assert key in TARGETS


def test_the_paced_figures_are_all_the_rounds_cpu_over_all_their_tokens() -> None:
    # CPU adds up: a costly round counts in full (a median of these rounds would say 50 µs).
    figures = paced_figures(
        [0.050, 0.040, 0.090], [0.030, 0.036], [0.3, 0.2], tokens_per_round=1000
    )
    assert figures["relay_cpu_us_per_paced_token"] == pytest.approx(60.0)
    assert figures["relay_cpu_us_per_paced_token_max"] == pytest.approx(90.0)
    assert figures["pipe_cpu_us_per_paced_token"] == pytest.approx(33.0)
    assert figures["fastapi_cpu_us_per_paced_token"] == pytest.approx(250.0)


def test_without_proc_the_paced_figures_are_nan() -> None:
    for rounds in ([[], [0.030], [0.2]], [[0.05], [], [0.2]], [[0.05], [0.030], []]):
        figures = paced_figures(*rounds, tokens_per_round=1000)
        assert all(math.isnan(value) for value in figures.values())
        assert set(figures) == set(paced_figures([0.05], [0.03], [0.2], tokens_per_round=1000))
