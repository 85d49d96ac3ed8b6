"""`bench`: a smoke run with tiny sizes produces numbers; its pieces measure what they claim."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from jumpstream.bench import decoder_throughput, relay_memory, render_tables
from jumpstream.local import REPO_ROOT

# The stand-in model's answer for [[length:N]] is N tokens, then its EOS token.
SIZE = 8


def test_bench_smoke_run_writes_numbers_for_every_format(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "jumpstream",
            "bench",
            "--sizes",
            str(SIZE),
            "--repeats",
            "1",
            "--decoder-tokens",
            "50",
            "--output-dir",
            str(tmp_path),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "through the relay (medians)" in result.stdout
    (path,) = tmp_path.glob("bench-*.json")
    assert str(path) in result.stdout
    document = json.loads(path.read_text())
    batches = document["batches"]
    assert [batch["output_format"] for batch in batches] == ["text", "sse", "ndjson"]
    for batch in batches:
        assert batch["size"] == SIZE
        assert batch["tokens"] == SIZE + 1
        assert 0 < batch["ttfb_ms"] <= batch["ttft_ms"] <= batch["duration_ms"]
        assert batch["tokens_per_second"] > 0
        assert batch["relay_rss_kib"] > 0
    assert len(document["requests"]) == 3
    assert {request["text_chars"] > 0 for request in document["requests"]} == {True}
    memory = document["relay_memory_kib"]
    assert memory["end"]["peak_kib"] >= memory["end"]["rss_kib"] > 0
    decoders = {run["parts"]: run for run in document["decoder"]}
    assert set(decoders) == {"one per event", "7-byte parts"}
    for run in decoders.values():
        # 50 answer tokens and the EOS token, and the final event's Done.
        assert run["events"] == 50 + 1 + 1
        assert run["events_per_second"] > 0
    assert decoders["one per event"]["part_count"] == 51
    assert decoders["7-byte parts"]["bytes"] == decoders["one per event"]["bytes"]


def test_decoder_throughput_cuts_the_same_bytes_into_small_parts() -> None:
    whole = decoder_throughput(20, part_bytes=None)
    small = decoder_throughput(20, part_bytes=3)
    assert whole.events == small.events == 22
    assert whole.bytes == small.bytes
    assert small.part_count == -(-small.bytes // 3)
    assert whole.seconds > 0
    assert "one per event" in render_tables([], [whole, small], {})


def test_relay_memory_reads_proc_status() -> None:
    memory = relay_memory(os.getpid())
    assert memory is not None
    assert memory.peak_kib >= memory.rss_kib > 0


def test_relay_memory_of_a_missing_process_is_none() -> None:
    assert relay_memory(2**22 + 12345) is None
