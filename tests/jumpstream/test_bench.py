"""`bench --quick`: every figure the issue lists is written, and every text matched.

Timings are never checked here (the machine decides them); what is checked is that the run
worked: exit status 0 (the bench fails on any error or differing text), the exact keys, numbers
where numbers belong, and the pieces that decide what "the same texts" means.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

from jumpstream.bench import (
    KEYS,
    _naive_texts,
    _sdk_texts,
    decoder_peak_kib,
    decoder_texts,
    payload_parts,
    relay_memory,
    render_table,
    tgi_events,
)
from jumpstream.local import REPO_ROOT


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
    assert document["concurrent_streams"] == 64
    assert document["machine"]["cpus"] == os.cpu_count()
    assert len(list(tmp_path.glob("bench-*.json"))) == 1


def test_every_reader_gets_the_same_texts_from_cut_parts() -> None:
    events = tgi_events(40)
    parts = payload_parts(events)
    assert len(parts) > len(events)  # some events were cut in two
    assert b"".join(parts) == b"".join(events)
    texts, tokens = decoder_texts(parts)
    assert tokens == 41  # the answer and the EOS token
    assert texts == _sdk_texts(parts) == _naive_texts(parts)
    assert "".join(texts).strip()


def test_decoder_memory_is_measured_in_kib() -> None:
    assert 0 < decoder_peak_kib(50) < 1024


def test_the_table_marks_targets_without_failing() -> None:
    document = dict.fromkeys(KEYS, 1.0)
    document["machine"] = {"platform": "p", "cpus": 2, "python": "3", "load_average_1_5_15": []}
    document["ttft_added_ms_p50"] = 5.0
    table = render_table(document)
    assert "ttft_added_ms_p50" in table
    assert "MISSED" in table
    assert "met" in table


def test_relay_memory_reads_proc_status() -> None:
    memory = relay_memory(os.getpid())
    assert memory is not None
    assert memory.peak_kib >= memory.rss_kib > 0


def test_relay_memory_of_a_missing_process_is_none() -> None:
    assert relay_memory(2**22 + 12345) is None
