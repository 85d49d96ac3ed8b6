"""`dashboard-preview`: a real local run's metric lines, read as CloudWatch reads them, plotted."""

from __future__ import annotations

import io
import json
from pathlib import Path

from jumpstream.preview import PreviewOptions, metric_lines, run_preview


def test_only_lines_with_embedded_metrics_are_read() -> None:
    emf = {"_aws": {"CloudWatchMetrics": []}, "Requests": [1.0]}
    lines = ["INFO: started", json.dumps({"message": "hi"}), json.dumps(emf), '{"_aws": broken']
    assert metric_lines(lines) == [emf]


def test_a_local_run_is_measured_and_plotted(tmp_path: Path) -> None:
    output = tmp_path / "preview.png"
    stdout, stderr = io.StringIO(), io.StringIO()
    options = PreviewOptions(output=output, requests=12, tokens_per_second=0)
    assert run_preview(options, stdout=stdout, stderr=stderr) == 0, stderr.getvalue()
    assert stdout.getvalue().startswith("12 requests measured")
    assert output.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
