"""``python -m jumpstream bench`` (``make bench``): what the relay costs, side by side.

Every figure is measured next to the alternative a user would pick, on the same machine, through
the local stack (the emulator and the relay started as Lambda starts it, ``run.sh``):

- **Time to first token** (``ttft_*``): requests sent back to back on one kept-alive connection
  as the Web Adapter sends invocations (each request in one write, as it does), to the relay,
  then the same prompts back to back to the emulator directly with boto3. The emulator is paced
  (a first-token delay, then 25 tokens/s). ``ttft_added_*`` are the percentiles of each
  prompt's difference (relay minus direct).
- **Throughput** (``throughput_*``): one unpaced answer of 2,000 tokens read whole, directly
  with boto3 and through the relay.
- **Decoder** (``decoder_tps``, ``sdk_lineiterator_tps``, ``naive_split_tps``): the same TGI
  bytes cut into PayloadParts as a container sends them (one per event, every tenth cut in two),
  through the relay's StreamDecoder, sagemaker-core's ``LineIterator`` with ``json.loads`` (what
  AWS's examples do), and a naive ``split(b"\\n\\n")``, in CPU time (best of several rounds,
  interleaved). All three must produce the same texts.
  ``decoder_peak_kib_*``: tracemalloc's peak while decoding the token events of a 1k and a
  100k-token answer. (The final event is left out: TGI repeats the whole answer in it, so it is
  as long as the answer by design, and bounded by the relay's line limit.)
- **Cold start** (``cold_start_ms_p50``, ``fastapi_cold_start_ms_p50``): process start to the first
  ``/health`` 200, median of 10, against a minimal FastAPI + uvicorn app that creates a boto3
  sagemaker-runtime client at import (the Web Adapter's FastAPI example). Each runs on a bare
  interpreter with only its own packages on the path (for the relay: the asset's, and boto3 as
  Lambda's runtime provides it), linked from this environment. ``rss_ready_mib``: the relay's
  resident memory at that moment.
- **Concurrency** (``concurrent_*``): 64 paced streams at once through one relay process; the
  p99 gap between two pieces of one answer, minus the pace.

Nothing here is a threshold: the results go to a table and to ``bench-results/latest.json``.
The bench fails (exit status 1) only when something did not work: an error, a text that differs.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import itertools
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TextIO
from urllib.parse import urlsplit

import anyio
import h11
import httpx

from jumpstream.ask import request_body
from jumpstream.local import (
    DEFAULT_MODEL_ID,
    DUMMY_CREDENTIAL,
    ENDPOINT_NAME,
    LOOPBACK,
    RELAY_ROOT,
    LocalStack,
    StackConfig,
    free_port,
    relay_command,
    relay_environment,
    start_stack,
)
from jumpstream.procs import ChildExited, LineBuffer, StartupTimeout

__all__ = [
    "KEYS",
    "BenchFailed",
    "BenchOptions",
    "Plan",
    "RelayMemory",
    "decoder_texts",
    "relay_memory",
    "render_table",
    "run_bench",
]

#: The keys of ``latest.json``, in the order the table shows them.
KEYS: Final = (
    "ttft_direct_ms_p50",
    "ttft_relay_ms_p50",
    "ttft_added_ms_p50",
    "ttft_added_ms_p95",
    "throughput_direct_tps",
    "throughput_relay_tps",
    "throughput_ratio",
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
    "machine",
)
#: What the issue asks of each figure: (comparison, bound). Reported, never enforced.
TARGETS: Final = {
    "ttft_added_ms_p50": ("<=", 1.0),
    "throughput_ratio": (">=", 0.9),
    "decoder_speedup_vs_sdk": (">=", 2.0),
    "cold_start_ratio": ("<=", 0.6),
    "rss_ready_mib": ("<=", 60.0),
    "concurrent_p99_added_gap_ms": ("<=", 10.0),
}
#: The paced emulator: a first token after this long, then this many tokens per second.
FIRST_TOKEN_DELAY_SECONDS: Final = 0.05
PACE_TOKENS_PER_SECOND: Final = 25.0
_MAX_NEW_TOKENS_LIMIT: Final = 4096
_REQUEST_TIMEOUT_SECONDS: Final = 120.0
_HEALTH_POLL_SECONDS: Final = 0.002
_READ_BYTES: Final = 64 * 1024
_KIB: Final = 1024
_MIB: Final = 1024 * 1024
#: Every tenth event is cut in two, as SageMaker may cut anywhere.
_CUT_EVERY: Final = 10


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """How much of each measurement to do."""

    ttft_pairs: int
    ttft_answer_tokens: int
    throughput_tokens: int
    throughput_repeats: int
    decoder_tokens: int
    decoder_rounds: int
    cold_starts: int
    concurrent_streams: int
    concurrent_answer_tokens: int


FULL: Final = Plan(
    ttft_pairs=30,
    ttft_answer_tokens=4,
    throughput_tokens=2000,
    throughput_repeats=3,
    decoder_tokens=20_000,
    decoder_rounds=9,
    cold_starts=10,
    concurrent_streams=64,
    concurrent_answer_tokens=75,
)
QUICK: Final = Plan(
    ttft_pairs=10,
    ttft_answer_tokens=2,
    throughput_tokens=2000,
    throughput_repeats=1,
    decoder_tokens=5_000,
    decoder_rounds=3,
    cold_starts=3,
    concurrent_streams=64,
    concurrent_answer_tokens=25,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class BenchOptions:
    """What to measure and where to write it."""

    quick: bool = False
    output_dir: str | Path = "bench-results"
    model_id: str = DEFAULT_MODEL_ID

    @property
    def plan(self) -> Plan:
        return QUICK if self.quick else FULL


class BenchFailed(Exception):
    """Something did not work as it should; the numbers would be meaningless."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RelayMemory:
    """``VmRSS`` (now) and ``VmHWM`` (the peak so far) of a process, in KiB."""

    rss_kib: int
    peak_kib: int


def relay_memory(pid: int) -> RelayMemory | None:
    """Memory of ``pid`` from ``/proc/PID/status``; None where there is no /proc (not Linux)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    fields: dict[str, int] = {}
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    if "VmRSS" not in fields:
        return None
    return RelayMemory(rss_kib=fields["VmRSS"], peak_kib=fields.get("VmHWM", fields["VmRSS"]))


# --- Helpers ---------------------------------------------------------------------------------


def _percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile: a value that was measured, no interpolation."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.5)))
    return ordered[rank - 1]


def _prompt(tokens: int, tag: str) -> str:
    """A prompt whose answer is exactly ``tokens`` tokens before the EOS token."""
    return f"Benchmark the relay ({tag}), please. [[length:{tokens}]]"


def _upstream_body(prompt: str, max_new_tokens: int) -> bytes:
    """The body the relay sends SageMaker for ``request_body(prompt, ...)``: the direct calls
    send the same, so both sides get the same answer."""
    body = {
        "inputs": prompt,
        "parameters": {
            "details": True,
            "max_new_tokens": max_new_tokens,
            "return_full_text": False,
        },
        "stream": True,
    }
    return json.dumps(body).encode("utf-8")


def _stream_decoder() -> Any:
    """The relay's decoder, imported when measured: the other figures never load it."""
    from streamer.decoder import StreamDecoder, Token

    return StreamDecoder, Token


def decoder_texts(parts: Sequence[bytes]) -> tuple[list[str], int]:
    """The visible texts the relay's decoder finds in ``parts``, and how many tokens."""
    decoder_type, token_type = _stream_decoder()
    decoder = decoder_type(max_line_bytes=64 * _MIB)
    texts: list[str] = []
    tokens = 0
    for part in parts:
        for event in decoder.feed(part):
            if type(event) is token_type:
                tokens += 1
                if not event.special and event.text:
                    texts.append(event.text)
    for event in decoder.close():
        if type(event) is token_type:
            tokens += 1
            if not event.special and event.text:
                texts.append(event.text)
    return texts, tokens


# --- Direct calls: boto3 against the emulator ------------------------------------------------


def _boto3_client(emulator_url: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "sagemaker-runtime",
        endpoint_url=emulator_url,
        region_name="us-east-1",
        aws_access_key_id=DUMMY_CREDENTIAL,
        aws_secret_access_key=DUMMY_CREDENTIAL,
        config=Config(read_timeout=_REQUEST_TIMEOUT_SECONDS, retries={"total_max_attempts": 1}),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class _Reading:
    """One answer read whole: when its first text came, when it ended, what it said."""

    first_text_ms: float
    total_ms: float
    text: str
    tokens: int


def _read_direct(client: Any, prompt: str, max_new_tokens: int) -> _Reading:
    """InvokeEndpointWithResponseStream with boto3, decoded as it arrives."""
    decoder_type, token_type = _stream_decoder()
    decoder = decoder_type(max_line_bytes=64 * _MIB)
    texts: list[str] = []
    tokens = 0
    first: float | None = None
    started = time.perf_counter()
    response = client.invoke_endpoint_with_response_stream(
        EndpointName=ENDPOINT_NAME,
        Body=_upstream_body(prompt, max_new_tokens),
        ContentType="application/json",
    )
    for event in response["Body"]:
        for decoded in decoder.feed(event["PayloadPart"]["Bytes"]):
            if isinstance(decoded, token_type):
                tokens += 1
                if not decoded.special and decoded.text:
                    texts.append(decoded.text)
                    if first is None:
                        first = time.perf_counter()
    decoder.close()
    ended = time.perf_counter()
    if first is None:
        raise BenchFailed("a direct call to the emulator returned no text")
    return _Reading(
        first_text_ms=(first - started) * 1000,
        total_ms=(ended - started) * 1000,
        text="".join(texts),
        tokens=tokens,
    )


class _AdapterLikeClient:
    """HTTP/1.1 on one kept-alive socket, written and read as the Web Adapter does: each request
    in one write, the answer read as it arrives. (h11 speaks the protocol; the socket is ours.)

    Why not an HTTP client library here: httpx writes a request's body separately from its head
    and http.client reads through a buffered file; either changes when the relay's side gets its
    ACKs, and with them whether Nagle's delay shows. It showed for the adapter.
    """

    def __init__(self, url: str) -> None:
        where = urlsplit(url)
        self._host = f"{where.hostname}:{where.port}"
        self._socket = socket.create_connection(
            (where.hostname or LOOPBACK, where.port or 80), timeout=_REQUEST_TIMEOUT_SECONDS
        )
        self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._connection = h11.Connection(our_role=h11.CLIENT)

    def read(self, prompt: str, max_new_tokens: int) -> _Reading:
        """One request through the relay as plain text."""
        body = request_body(prompt, max_new_tokens=max_new_tokens)
        headers = [
            ("Host", self._host),
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
        ]
        request = h11.Request(method="POST", target="/", headers=headers)
        chunks: list[bytes] = []
        first: float | None = None
        started = time.perf_counter()
        self._socket.sendall(
            self._connection.send(request)
            + self._connection.send(h11.Data(data=body))
            + self._connection.send(h11.EndOfMessage())
        )
        status = 0
        while True:
            event = self._connection.next_event()
            if event is h11.NEED_DATA:
                self._connection.receive_data(self._socket.recv(_READ_BYTES))
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
                if first is None:
                    first = time.perf_counter()
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                break
        ended = time.perf_counter()
        self._connection.start_next_cycle()
        text = b"".join(chunks).decode("utf-8")
        if status != 200 or first is None or "[stream error]" in text:
            raise BenchFailed(f"the relay answered {status}: {text[-200:]!r}")
        return _Reading(
            first_text_ms=(first - started) * 1000,
            total_ms=(ended - started) * 1000,
            text=text,
            tokens=0,
        )

    def close(self) -> None:
        self._socket.close()


# --- The measurements ------------------------------------------------------------------------


def _paired_reads(
    stack: LocalStack, *, tokens: int, count: int, tag: str
) -> list[tuple[_Reading, _Reading]]:
    """``count`` answers of ``tokens`` tokens, sent back to back through the relay on one
    kept-alive connection, then the same prompts back to back to the emulator directly with
    boto3; paired by prompt, the texts must be the same. Not interleaved: a connection that idles
    between requests acknowledges at once, which hides what back-to-back traffic pays. A first
    request each way, not returned, warms connections, imports and caches up."""
    prompts = [_prompt(tokens, f"{tag} {index}") for index in range(count + 1)]
    relay_client = _AdapterLikeClient(stack.relay_url)
    try:
        relay = [relay_client.read(prompt, tokens + 2) for prompt in prompts]
    finally:
        relay_client.close()
    direct_client = _boto3_client(stack.emulator_url)
    direct = [_read_direct(direct_client, prompt, tokens + 2) for prompt in prompts]
    for a, b in zip(direct, relay, strict=True):
        if a.text != b.text:
            raise BenchFailed(f"texts differ: direct {a.text!r}, relay {b.text!r}")
    return list(zip(direct, relay, strict=True))[1:]


def measure_ttft(stack: LocalStack, plan: Plan) -> dict[str, float]:
    """Time to the first text, back to back, through the relay and directly."""
    pairs = _paired_reads(stack, tokens=plan.ttft_answer_tokens, count=plan.ttft_pairs, tag="ttft")
    added = [relay.first_text_ms - direct.first_text_ms for direct, relay in pairs]
    return {
        "ttft_direct_ms_p50": statistics.median(direct.first_text_ms for direct, _ in pairs),
        "ttft_relay_ms_p50": statistics.median(relay.first_text_ms for _, relay in pairs),
        "ttft_added_ms_p50": statistics.median(added),
        "ttft_added_ms_p95": _percentile(added, 0.95),
    }


def measure_throughput(stack: LocalStack, plan: Plan) -> dict[str, float]:
    """One long unpaced answer, read whole, direct and through the relay."""
    pairs = _paired_reads(
        stack, tokens=plan.throughput_tokens, count=plan.throughput_repeats, tag="throughput"
    )
    # The same answer both ways: the token count boto3 decoded holds for the relay's too.
    direct_tps = statistics.median(d.tokens / (d.total_ms / 1000) for d, _ in pairs)
    relay_tps = statistics.median(d.tokens / (r.total_ms / 1000) for d, r in pairs)
    return {
        "throughput_direct_tps": direct_tps,
        "throughput_relay_tps": relay_tps,
        "throughput_ratio": relay_tps / direct_tps,
    }


def tgi_events(tokens: int, model_id: str = DEFAULT_MODEL_ID) -> list[bytes]:
    """The ``data:`` events a TGI container sends for an answer of ``tokens`` tokens."""
    from jumpstream.emulator.model import StandInModel, stream_events
    from jumpstream.emulator.request import GenerateRequest
    from jumpstream.emulator.sse import data_event

    request = GenerateRequest(
        inputs="Benchmark the decoder.", stream=True, max_new_tokens=tokens + 2, details=True
    )
    generation = StandInModel(model_id).generate(request, answer_length=tokens)
    return [data_event(event) for event in stream_events(generation, request)]


def payload_parts(events: Sequence[bytes]) -> list[bytes]:
    """One part per event, as TGI flushes each, with every tenth event cut in two."""
    parts: list[bytes] = []
    for index, event in enumerate(events):
        if index % _CUT_EVERY == _CUT_EVERY - 1:
            middle = len(event) // 2
            parts += [event[:middle], event[middle:]]
        else:
            parts.append(event)
    return parts


def _sdk_texts(parts: Sequence[bytes]) -> list[str]:
    """What AWS's examples do: sagemaker-core's LineIterator, then json.loads per data line."""
    from sagemaker.core.iterators import LineIterator

    texts: list[str] = []
    for line in LineIterator(iter([{"PayloadPart": {"Bytes": part}} for part in parts])):
        if line.startswith(b"data:"):
            token = json.loads(line[5:]).get("token") or {}
            if not token.get("special") and token.get("text"):
                texts.append(token["text"])
    return texts


def _naive_texts(parts: Sequence[bytes]) -> list[str]:
    """A naive reader: join, split at blank lines, json.loads (no CR, no keep-alive care)."""
    texts: list[str] = []
    pending = b""
    for part in parts:
        pending += part
        *events, pending = pending.split(b"\n\n")
        for event in events:
            if event.startswith(b"data:"):
                token = json.loads(event[5:]).get("token") or {}
                if not token.get("special") and token.get("text"):
                    texts.append(token["text"])
    return texts


def _best_seconds(run: Callable[[], object], rounds: int) -> float:
    """The least CPU time `run` took: on a shared machine, wall time also counts the time the
    process waited for a core, which has nothing to do with the code."""
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        run()
        best = min(best, time.process_time() - started)
    return best


def measure_decoder(plan: Plan, model_id: str = DEFAULT_MODEL_ID) -> dict[str, float]:
    """Three readers on the same parts, interleaved round by round; texts must agree."""
    parts = payload_parts(tgi_events(plan.decoder_tokens, model_id))
    ours, tokens = decoder_texts(parts)
    if not (ours == _sdk_texts(parts) == _naive_texts(parts)):
        raise BenchFailed("the decoder, LineIterator and the naive split read different texts")
    readers = {
        "decoder_tps": lambda: decoder_texts(parts),
        "sdk_lineiterator_tps": lambda: _sdk_texts(parts),
        "naive_split_tps": lambda: _naive_texts(parts),
    }
    best = dict.fromkeys(readers, float("inf"))
    for _ in range(plan.decoder_rounds):
        for name, reader in readers.items():
            best[name] = min(best[name], _best_seconds(reader, 1))
    result = {name: tokens / seconds for name, seconds in best.items()}
    result["decoder_speedup_vs_sdk"] = result["decoder_tps"] / result["sdk_lineiterator_tps"]
    return result


def decoder_peak_kib(tokens: int, model_id: str = DEFAULT_MODEL_ID) -> float:
    """tracemalloc's peak while the decoder reads the token events of a ``tokens`` answer."""
    decoder_type, _ = _stream_decoder()
    parts = payload_parts(tgi_events(tokens, model_id)[:-1])
    decoder = decoder_type(max_line_bytes=64 * _MIB)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        for part in parts:
            decoder.feed(part)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / _KIB


_FASTAPI_APP: Final = '''\
"""The FastAPI shape of the Web Adapter's response-streaming example, as a user writes it."""
import boto3
from fastapi import FastAPI

client = boto3.client("sagemaker-runtime")
app = FastAPI()


@app.get("/health")
def health():
    return {"status": "ok"}
'''


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
                if time.perf_counter() - started > 60:
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


#: What the Lambda asset bundles (its requirements) and what Lambda's Python runtime provides.
_RELAY_PACKAGES: Final = ("starlette", "uvicorn", "aws-lambda-powertools", "httpx", "orjson")
_RUNTIME_PACKAGES: Final = ("boto3",)
_FASTAPI_PACKAGES: Final = ("fastapi", "uvicorn", "boto3")


def _requirement_closure(roots: Sequence[str]) -> list[importlib.metadata.Distribution]:
    """The installed distributions ``roots`` need, their requirements followed recursively."""
    from packaging.markers import Marker
    from packaging.requirements import Requirement

    found: dict[str, importlib.metadata.Distribution] = {}
    pending = list(roots)
    while pending:
        name = pending.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in found:
            continue
        distribution = importlib.metadata.distribution(name)
        found[key] = distribution
        for line in distribution.requires or []:
            requirement = Requirement(line)
            marker: Marker | None = requirement.marker
            if marker is None or marker.evaluate({"extra": ""}):
                pending.append(requirement.name)
    return list(found.values())


def _link_packages(roots: Sequence[str], target: Path) -> Path:
    """A directory holding only the packages ``roots`` need, linked from this environment.

    The dev environment holds more (test and lint tools): a package that imports an optional
    one when it is there (httpx imports rich for its command line) would pay for it here and
    not in Lambda, where only the asset and the runtime's boto3 are on the path.
    """
    target.mkdir(parents=True)
    for distribution in _requirement_closure(roots):
        tops = {
            Path(str(file)).parts[0]
            for file in distribution.files or []
            if not Path(str(file)).parts[0].endswith((".dist-info", ".egg-info", ".data"))
            and Path(str(file)).parts[0] not in ("..", "bin", "__pycache__")
        }
        for top in tops:
            source = Path(str(distribution.locate_file(top)))
            if source.exists() and not (target / top).exists():
                (target / top).symlink_to(source)
    return target


def _bare_python(workdir: Path) -> str:
    """An interpreter with no packages of its own (a venv without pip), as Lambda's is."""
    subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-m", "venv", "--without-pip", str(workdir / "venv")],
        check=True,
        timeout=60,
    )
    return str(workdir / "venv" / "bin")


def measure_cold_start(plan: Plan, model_id: str = DEFAULT_MODEL_ID) -> dict[str, float]:
    """The relay as Lambda starts it (run.sh; the asset's packages and the runtime's boto3 on
    the path, nothing else) and the FastAPI baseline (its own packages only), alternately."""
    relay_ms: list[float] = []
    fastapi_ms: list[float] = []
    rss_kib: list[int] = []
    workdir = Path(tempfile.mkdtemp(prefix="jumpstream-bench-"))
    try:
        (workdir / "main.py").write_text(_FASTAPI_APP, encoding="utf-8")
        bare = _bare_python(workdir)
        asset = _link_packages(_RELAY_PACKAGES, workdir / "asset")
        runtime = _link_packages(_RUNTIME_PACKAGES, workdir / "runtime")
        fastapi = _link_packages(_FASTAPI_PACKAGES, workdir / "fastapi")
        config = StackConfig(relay_port=0, model_id=model_id)
        for _ in range(plan.cold_starts):
            port = free_port()
            env = relay_environment(config, emulator_url=f"http://{LOOPBACK}:9", port=port)
            env.update(PATH=f"{bare}:/usr/bin:/bin", PYTHONPATH=str(asset))
            env["LAMBDA_RUNTIME_DIR"] = str(runtime)
            elapsed, rss = _time_to_health(relay_command(), env, port, RELAY_ROOT)
            relay_ms.append(elapsed)
            if rss is not None:
                rss_kib.append(rss)
            port = free_port()
            env.update(PYTHONPATH=str(fastapi))
            del env["LAMBDA_RUNTIME_DIR"]
            command = [f"{bare}/python", "-m", "uvicorn", f"--port={port}", "main:app"]
            elapsed, _ = _time_to_health(command, env, port, workdir)
            fastapi_ms.append(elapsed)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    relay_p50, fastapi_p50 = statistics.median(relay_ms), statistics.median(fastapi_ms)
    return {
        "cold_start_ms_p50": relay_p50,
        "fastapi_cold_start_ms_p50": fastapi_p50,
        "cold_start_ratio": relay_p50 / fastapi_p50,
        "rss_ready_mib": statistics.median(rss_kib) / _KIB if rss_kib else float("nan"),
    }


def measure_concurrency(stack: LocalStack, plan: Plan) -> dict[str, float]:
    """Many paced streams at once through one relay process: how late does a piece come?"""
    tokens = plan.concurrent_answer_tokens
    prompt = _prompt(tokens, "concurrent")
    expected = _read_direct(_boto3_client(stack.emulator_url), prompt, tokens + 2).text
    body = request_body(prompt, max_new_tokens=tokens + 2)
    gaps: list[float] = []
    failures: list[str] = []

    async def one(client: httpx.AsyncClient) -> None:
        arrivals: list[float] = []
        chunks: list[bytes] = []
        async with client.stream(
            "POST",
            stack.relay_url + "/",
            content=body,
            headers={"content-type": "application/json"},
        ) as response:
            if response.status_code != 200:
                failures.append(f"status {response.status_code}")
                return
            async for chunk in response.aiter_raw():
                if chunk:
                    arrivals.append(time.perf_counter())
                    chunks.append(chunk)
        if b"".join(chunks).decode("utf-8") != expected:
            failures.append("a text differed")
            return
        gaps.extend((later - earlier) * 1000 for earlier, later in itertools.pairwise(arrivals))

    async def run() -> None:
        limits = httpx.Limits(max_connections=plan.concurrent_streams)
        async with (
            httpx.AsyncClient(timeout=_REQUEST_TIMEOUT_SECONDS, limits=limits) as client,
            anyio.create_task_group() as group,
        ):
            for _ in range(plan.concurrent_streams):
                group.start_soon(one, client)

    anyio.run(run)
    if failures:
        raise BenchFailed(f"{len(failures)} concurrent streams failed: {failures[:3]}")
    pace_ms = 1000 / PACE_TOKENS_PER_SECOND
    return {
        "concurrent_streams": plan.concurrent_streams,
        "concurrent_p99_added_gap_ms": _percentile(gaps, 0.99) - pace_ms,
    }


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


# --- Running it all --------------------------------------------------------------------------


def _stack_config(model_id: str, *, paced: bool) -> StackConfig:
    return StackConfig(
        relay_port=0,
        model_id=model_id,
        tokens_per_second=PACE_TOKENS_PER_SECOND if paced else 0,
        first_token_delay=FIRST_TOKEN_DELAY_SECONDS if paced else 0,
        relay_env={"MAX_NEW_TOKENS_LIMIT": str(_MAX_NEW_TOKENS_LIMIT)},
    )


def _measure_all(options: BenchOptions, output: LineBuffer, stderr: TextIO) -> dict[str, Any]:
    """Each stack runs only while its measurements do, so nothing else competes for the CPU."""
    plan, model_id = options.plan, options.model_id
    results: dict[str, Any] = {}
    with start_stack(_stack_config(model_id, paced=True), sink=output) as paced:
        _say(stderr, "measuring time to first token (paced emulator, one kept-alive connection)")
        results.update(measure_ttft(paced, plan))
        _say(stderr, f"measuring {plan.concurrent_streams} concurrent paced streams")
        results.update(measure_concurrency(paced, plan))
    with start_stack(_stack_config(model_id, paced=False), sink=output) as unpaced:
        _say(stderr, f"measuring throughput ({plan.throughput_tokens} tokens, unpaced)")
        results.update(measure_throughput(unpaced, plan))
    _say(stderr, "measuring the decoder against LineIterator and a naive split")
    results.update(measure_decoder(plan, model_id))
    results["decoder_peak_kib_1k"] = decoder_peak_kib(1_000, model_id)
    results["decoder_peak_kib_100k"] = decoder_peak_kib(100_000, model_id)
    _say(stderr, f"measuring cold starts ({plan.cold_starts} of each)")
    results.update(measure_cold_start(plan, model_id))
    return results


def run_bench(options: BenchOptions, *, stdout: TextIO, stderr: TextIO) -> int:
    """Run every measurement, print the table, write the JSON; return the exit status."""
    output = LineBuffer()
    started = time.perf_counter()
    before = machine()
    try:
        results = _measure_all(options, output, stderr)
    except (ChildExited, StartupTimeout, OSError, BenchFailed, RuntimeError) as error:
        stderr.write(output.render())
        _say(stderr, f"jumpstream bench failed: {error}")
        return 1
    results["machine"] = {**before, "load_average_after": machine()["load_average_1_5_15"]}
    document = {key: results[key] for key in KEYS}
    _say(stdout, render_table(document))
    _say(
        stdout,
        "all texts matched: relay and direct, decoder, LineIterator and naive split "
        f"({time.perf_counter() - started:.0f} s{', quick' if options.quick else ''})",
    )
    path = _write_json(Path(options.output_dir), document)
    _say(stdout, f"results written to {path}")
    return 0


def render_table(document: dict[str, Any]) -> str:
    """One row per figure, with the issue's target and whether this run met it."""
    lines = [f"{'figure':<30}{'value':>12}  target"]
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
        lines.append(f"{key:<30}{shown:>12}  {verdict}".rstrip())
    box = document["machine"]
    lines.append(
        f"machine: {box['platform']}, {box['cpus']} CPUs, Python {box['python']}, load "
        f"{box['load_average_1_5_15']} before, {box.get('load_average_after')} after"
    )
    return "\n".join(lines)


def _write_json(directory: Path, document: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    stamped = directory / f"bench-{dt.datetime.now(dt.UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    text = json.dumps(document, indent=2) + "\n"
    stamped.write_text(text, encoding="utf-8")
    latest = directory / "latest.json"
    latest.write_text(text, encoding="utf-8")
    return latest


def _say(stream: TextIO, line: str) -> None:
    stream.write(line + "\n")
    stream.flush()
