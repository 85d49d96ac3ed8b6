"""``python -m jumpstream dashboard-preview``: what the dashboard will show, from a local run.

Runs the local stack with a paced model, sends a mix of requests (some long, some short, a few
that fail on purpose through the emulator's fault directives, a few the relay refuses), collects
the relay's own request log lines, reads the embedded-metric-format figures in them exactly as
CloudWatch would, and plots the dashboard's relay panels to a PNG. So a reader sees the metrics
before deploying, and the picture in docs/monitoring.md is made by the code that makes the metrics.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TextIO

import httpx
from streamer.contract import Dimension, Metric

from jumpstream.local import StackConfig, start_stack
from jumpstream.procs import LineBuffer

__all__ = ["PreviewOptions", "metric_lines", "run_preview"]

_PROMPTS: Final = (
    "Tell me why streaming matters.",
    "Explain time to first token.",
    "日本語で説明してください。",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class PreviewOptions:
    output: Path = Path("docs/dashboard-preview.png")
    requests: int = 60
    concurrency: int = 6
    tokens_per_second: float = 40.0
    seed: int = 7


def metric_lines(lines: list[str]) -> list[dict[str, Any]]:
    """The relay's log lines that carry embedded metrics, parsed."""
    found = []
    for line in lines:
        if '"_aws"' not in line:
            continue
        try:
            document = json.loads(line)
        except ValueError:
            continue
        if isinstance(document, dict) and "_aws" in document:
            found.append(document)
    return found


def _request(index: int, rng: random.Random) -> dict[str, Any]:
    prompt = rng.choice(_PROMPTS)
    roll = rng.random()
    if roll < 0.06:
        prompt += " [[fault:generation@5]]"
    elif roll < 0.09:
        prompt += " [[fault:throttling]]"
    elif roll < 0.12:
        return {"inputs": ""}  # refused by the relay before SageMaker: a 422
    length = rng.choice((16, 32, 64, 96))
    return {"inputs": f"{prompt} [[length:{length}]]", "parameters": {"max_new_tokens": 128}}


def run_preview(options: PreviewOptions, *, stdout: TextIO, stderr: TextIO) -> int:
    """Run the requests, plot the figures, write the PNG; exit status 1 if nothing was measured."""
    sink = LineBuffer(keep=100_000)
    config = StackConfig(relay_port=0, emulator_port=0, tokens_per_second=options.tokens_per_second)
    rng = random.Random(options.seed)  # noqa: S311 - a repeatable mix of requests, no secret
    bodies = [_request(i, rng) for i in range(options.requests)]
    with (
        start_stack(config, sink=sink) as stack,
        httpx.Client(base_url=stack.relay_url, timeout=120) as client,
    ):

        def send(body: dict[str, Any]) -> int:
            return client.post("/", json=body).status_code

        with ThreadPoolExecutor(options.concurrency) as pool:
            statuses = Counter(pool.map(send, bodies))
    documents = metric_lines([line for name, line in sink.lines() if name == "relay"])
    if not documents:
        stderr.write("jumpstream dashboard-preview: the relay wrote no metrics\n")
        return 1
    plot(documents, options.output)
    stdout.write(
        f"{len(documents)} requests measured (statuses {dict(sorted(statuses.items()))}); "
        f"wrote {options.output}\n"
    )
    return 0


def plot(documents: list[dict[str, Any]], output: Path) -> None:
    """The dashboard's relay panels, from the metric documents in request order."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def series(name: str) -> tuple[list[int], list[float]]:
        points = [(i, d[name][0]) for i, d in enumerate(documents) if name in d]
        return [i for i, _ in points], [v for _, v in points]

    figure, axes = plt.subplots(2, 2, figsize=(12, 7), constrained_layout=True)
    figure.suptitle("jumpstream relay metrics (local run, emulated model)")
    ttft = axes[0][0]
    ttft.plot(*series(Metric.TIME_TO_FIRST_TOKEN), ".", label="per request")
    ttft.set_title("Time to first token (ms)")
    ttft.set_xlabel("request")
    speed = axes[0][1]
    speed.plot(*series(Metric.TOKENS_PER_SECOND), ".", color="tab:green")
    speed.set_title("Tokens per second")
    speed.set_xlabel("request")
    gaps = axes[1][0]
    gaps.plot(*series(Metric.INTER_TOKEN_LATENCY_P50), ".", label="p50")
    gaps.plot(*series(Metric.INTER_TOKEN_LATENCY_P99), "x", label="p99")
    gaps.set_title("Gap between tokens (ms)")
    gaps.set_xlabel("request")
    gaps.legend()
    kinds: Counter[str] = Counter()
    for document in documents:
        for name in (Metric.ERRORS, Metric.REFUSED):
            if name in document:
                kinds[f"{name}: {document.get(Dimension.ERROR_TYPE, '?')}"] += 1
    errors = axes[1][1]
    requests = sum(document.get(Metric.REQUESTS, [0])[0] for document in documents)
    labels = [Metric.REQUESTS, *sorted(kinds)]
    values = [requests, *(kinds[label] for label in labels[1:])]
    errors.barh(labels, values, color=["tab:blue", *["tab:red"] * len(kinds)])
    errors.set_title("Requests, errors and refusals by type")
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, dpi=80)
    plt.close(figure)
