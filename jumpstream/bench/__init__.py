"""``python -m jumpstream bench`` (``make bench``): what the relay costs, side by side.

Every figure is measured next to the alternative a user would pick, on the same machine, through
the local stack (the emulator and the relay started as Lambda starts it, ``run.sh``). One module
per measurement, each saying how it measures:

- ttft.py: time to first token, relay and direct (boto3), back to back;
- throughput.py: one long unpaced answer, read whole;
- cpu.py: the relay's CPU per token and per request, next to a direct boto3 reader's;
- decoder.py: the relay's decoder next to sagemaker-core's LineIterator and a naive split;
- cold_start.py: the CPU time the relay takes to become ready next to the FastAPI shape of the
  Web Adapter's example (baseline_app/), each on a bare interpreter with only its packages
  (packages.py);
- concurrency.py: 64 paced streams through one relay process;
- capacity.py: the most paced streams one relay process holds within the issue's limits;
- paced.py: the relay's CPU per paced token, in rounds of the first capacity step, each next to
  the same streams through a raw asyncio byte pipe (pipe_floor.py), the floor under a paced token;
- pool.py: the upstream pool's work per request with 16 to 512 connections open, the relay's
  next to httpcore's (http_peer.py is the loopback server it holds them on).

Around them: clients.py reads an answer both ways (the adapter-like HTTP client, boto3),
relay_code.py is where the relay's code runs in the bench's process, proc.py reads /proc,
report.py writes the table and the JSON, run.py runs it all. Targets are reported (met or
MISSED), never enforced: the bench fails only when something did not work, an error or a text
that differs.
"""

from __future__ import annotations

from jumpstream.bench.plan import BenchOptions
from jumpstream.bench.report import KEYS, TARGETS, render_table
from jumpstream.bench.run import run_bench

__all__ = ["KEYS", "TARGETS", "BenchOptions", "render_table", "run_bench"]
