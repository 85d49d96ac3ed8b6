"""``python -m jumpstream bench`` (``make bench``): what the relay costs, measured end to end.

The emulated model answers as fast as it can (no pacing, no first-token delay), so every
millisecond measured is the relay's, the emulator's and loopback's, never the model's. For each
answer length (``[[length:N]]``) and format the bench sends a few requests through the real relay
and reports medians: time to first byte (status line and headers in), time to first token (first
answer text decoded), tokens per second over the whole request, and the relay's resident memory
from ``/proc`` after that batch. The relay's decoder is also timed in-process, on the same bytes
a TGI container would send, whole events per part and cut into small parts.

There are no thresholds here: results go to a table and to JSON under ``bench-results/`` (ignored
by git), to compare between commits on the same machine.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final, TextIO

from jumpstream.ask import describe_error, request_body
from jumpstream.http_stream import PreparedRequest, TransportError, send
from jumpstream.local import (
    DEFAULT_MODEL_ID,
    RELAY_ROOT,
    LocalStack,
    StackConfig,
    emulator_streams,
    start_stack,
)
from jumpstream.procs import ChildExited, LineBuffer, StartupTimeout
from jumpstream.reading import (
    ACCEPT,
    FORMATS,
    Failed,
    Finished,
    ReaderError,
    TextChunk,
    read_answer,
    reader_for,
)

__all__ = [
    "BenchFailed",
    "BenchOptions",
    "DecoderMeasurement",
    "RequestMeasurement",
    "decoder_throughput",
    "measure_request",
    "relay_memory",
    "run_bench",
]

#: The stand-in Mistral model's context: prompt plus new tokens must fit in 8192.
MAX_SIZE: Final = 8000
#: Decoder runs cut into parts this small too: the worst SageMaker may do, short of one byte.
SMALL_PART_BYTES: Final = 7
_DECODER_ROUNDS: Final = 3
_REQUEST_TIMEOUT_SECONDS: Final = 120.0
_WARM_UP_SIZE: Final = 16
_KIB: Final = 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class BenchOptions:
    """What to measure and where to write it."""

    sizes: tuple[int, ...] = (64, 512, 2048)
    formats: tuple[str, ...] = FORMATS
    repeats: int = 3
    decoder_tokens: int = 20_000
    output_dir: str | Path = "bench-results"
    model_id: str = DEFAULT_MODEL_ID


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestMeasurement:
    """One request through the relay."""

    output_format: str
    size: int
    ttfb_ms: float
    ttft_ms: float
    duration_ms: float
    #: Tokens the emulated model sent (its EOS included), from the emulator's record.
    tokens: int
    text_chars: int
    body_bytes: int

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / (self.duration_ms / 1000) if self.duration_ms > 0 else 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchSummary:
    """The medians of one size and format, and the relay's memory right after."""

    output_format: str
    size: int
    requests: int
    tokens: int
    ttfb_ms: float
    ttft_ms: float
    duration_ms: float
    tokens_per_second: float
    relay_rss_kib: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class DecoderMeasurement:
    """The relay's StreamDecoder alone, in this process: the best of a few rounds."""

    parts: str
    part_count: int
    events: int
    bytes: int
    seconds: float

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    @property
    def megabytes_per_second(self) -> float:
        return self.bytes / self.seconds / 1e6 if self.seconds > 0 else 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class RelayMemory:
    """``VmRSS`` (now) and ``VmHWM`` (the peak so far) of a process, in KiB."""

    rss_kib: int
    peak_kib: int


@dataclass(slots=True, kw_only=True)
class _Results:
    requests: list[RequestMeasurement] = field(default_factory=list)
    batches: list[BatchSummary] = field(default_factory=list)
    memory: dict[str, RelayMemory | None] = field(default_factory=dict)


class BenchFailed(Exception):
    """A request did not complete as it should; benchmark numbers would be meaningless."""


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


def bench_prompt(size: int) -> str:
    """A prompt whose answer is exactly ``size`` tokens before the EOS token."""
    return f"Benchmark the relay, please. [[length:{size}]]"


def measure_request(stack: LocalStack, *, output_format: str, size: int) -> RequestMeasurement:
    """Send one request through the relay and time it; BenchFailed if it does not complete."""
    streams_before = len(emulator_streams(stack.emulator_url))
    request = PreparedRequest(
        method="POST",
        url=stack.relay_url + "/",
        headers={"Content-Type": "application/json", "Accept": ACCEPT[output_format]},
        # Room for the EOS token after the answer, so it ends as a model's answer ends.
        body=request_body(bench_prompt(size), max_new_tokens=size + 2),
    )
    reader = reader_for(output_format)
    text_chars = 0
    body_bytes = 0
    first_token: float | None = None
    outcome: Finished | Failed | None = None
    started = time.perf_counter()
    try:
        with send(request, timeout=_REQUEST_TIMEOUT_SECONDS) as reply:
            headers_in = time.perf_counter()
            if reply.status != 200:
                message = describe_error(reply.status, reply.reason, reply.read_error_body())
                raise BenchFailed(f"{output_format}, {size} tokens: {message}")
            sizes: list[int] = []
            for event in read_answer(_counted(reply.chunks(), sizes), reader):
                if isinstance(event, TextChunk):
                    if first_token is None:
                        first_token = time.perf_counter()
                    text_chars += len(event.text)
                elif outcome is None:
                    outcome = event
            body_bytes = sum(sizes)
    except (TransportError, ReaderError) as error:
        raise BenchFailed(f"{output_format}, {size} tokens: {error}") from error
    finished = time.perf_counter()
    if isinstance(outcome, Failed):
        raise BenchFailed(f"{output_format}, {size} tokens: {outcome.message} ({outcome.kind})")
    if outcome is None or first_token is None:
        raise BenchFailed(f"{output_format}, {size} tokens: the answer was incomplete")
    return RequestMeasurement(
        output_format=output_format,
        size=size,
        ttfb_ms=(headers_in - started) * 1000,
        ttft_ms=(first_token - started) * 1000,
        duration_ms=(finished - started) * 1000,
        tokens=_tokens_of_new_stream(stack, streams_before),
        text_chars=text_chars,
        body_bytes=body_bytes,
    )


def _tokens_of_new_stream(stack: LocalStack, streams_before: int) -> int:
    records = emulator_streams(stack.emulator_url)
    if len(records) != streams_before + 1:
        raise BenchFailed("the emulator did not record exactly one new stream for the request")
    tokens = records[-1].get("tokens_sent")
    if not isinstance(tokens, int):
        raise BenchFailed("the emulator's stream record has no token count")
    return tokens


def decoder_throughput(
    tokens: int, *, part_bytes: int | None, model_id: str = DEFAULT_MODEL_ID
) -> DecoderMeasurement:
    """Time the relay's StreamDecoder on an answer of ``tokens`` tokens as TGI would stream it.

    ``part_bytes`` None gives one PayloadPart per event (what a TGI container typically
    produces); a number cuts the stream into parts of that many bytes.
    """
    decoder_type = _stream_decoder_type()
    parts = _payload_parts(_tgi_stream(tokens, model_id), part_bytes)
    best: float | None = None
    events = 0
    for _ in range(_DECODER_ROUNDS):
        decoder = decoder_type()
        started = time.perf_counter()
        count = 0
        for part in parts:
            count += len(decoder.feed(part))
        count += len(decoder.close())
        elapsed = time.perf_counter() - started
        events = count
        best = elapsed if best is None else min(best, elapsed)
    assert best is not None
    return DecoderMeasurement(
        parts="one per event" if part_bytes is None else f"{part_bytes}-byte parts",
        part_count=len(parts),
        events=events,
        bytes=sum(len(part) for part in parts),
        seconds=best,
    )


def _stream_decoder_type() -> Any:
    """The relay's decoder. Its package lives in the Lambda asset root, not on sys.path."""
    if str(RELAY_ROOT) not in sys.path:
        sys.path.append(str(RELAY_ROOT))
    from streamer.decoder import StreamDecoder

    return StreamDecoder


def _tgi_stream(tokens: int, model_id: str) -> list[bytes]:
    """The ``data:`` events a TGI container sends for an answer of ``tokens`` tokens."""
    from jumpstream.emulator.model import StandInModel, stream_events
    from jumpstream.emulator.request import GenerateRequest
    from jumpstream.emulator.sse import data_event

    request = GenerateRequest(
        inputs="Benchmark the decoder.", stream=True, max_new_tokens=tokens + 2, details=True
    )
    generation = StandInModel(model_id).generate(request, answer_length=tokens)
    return [data_event(event) for event in stream_events(generation, request)]


def _payload_parts(events: list[bytes], part_bytes: int | None) -> list[bytes]:
    if part_bytes is None:
        return events
    stream = b"".join(events)
    return [stream[start : start + part_bytes] for start in range(0, len(stream), part_bytes)]


def run_bench(options: BenchOptions, *, stdout: TextIO, stderr: TextIO) -> int:
    """Run every measurement, print the tables, write the JSON; return the exit status."""
    too_big = [size for size in options.sizes if size > MAX_SIZE]
    if too_big:
        stderr.write(f"jumpstream bench: sizes must be at most {MAX_SIZE} tokens\n")
        return 2
    output = LineBuffer()
    config = StackConfig(
        relay_port=0,
        model_id=options.model_id,
        tokens_per_second=0,
        first_token_delay=0,
        relay_env={"MAX_NEW_TOKENS_LIMIT": str(max(*options.sizes, _WARM_UP_SIZE) + 2)},
    )
    results = _Results()
    _say(stderr, "Starting the local stack (emulator at full speed, relay via run.sh) ...")
    try:
        with start_stack(config, sink=output) as stack:
            results.memory["idle"] = relay_memory(stack.relay.pid)
            for output_format in options.formats:  # warm up: connections, imports, caches
                measure_request(stack, output_format=output_format, size=_WARM_UP_SIZE)
            for size in options.sizes:
                for output_format in options.formats:
                    _run_batch(stack, options, output_format, size, results)
                    _say(stderr, f"  measured {output_format} x {size} tokens")
            results.memory["end"] = relay_memory(stack.relay.pid)
    except (ChildExited, StartupTimeout, OSError, BenchFailed, RuntimeError) as error:
        stderr.write(output.render())
        _say(stderr, f"jumpstream bench failed: {error}")
        return 1
    decoders = [
        decoder_throughput(options.decoder_tokens, part_bytes=part_bytes, model_id=options.model_id)
        for part_bytes in (None, SMALL_PART_BYTES)
    ]
    _say(stdout, render_tables(results.batches, decoders, results.memory))
    path = _write_json(options, results, decoders)
    _say(stdout, f"\nresults written to {path}")
    return 0


def _run_batch(
    stack: LocalStack,
    options: BenchOptions,
    output_format: str,
    size: int,
    results: _Results,
) -> None:
    batch = [
        measure_request(stack, output_format=output_format, size=size)
        for _ in range(options.repeats)
    ]
    results.requests += batch
    memory = relay_memory(stack.relay.pid)
    results.batches.append(
        BatchSummary(
            output_format=output_format,
            size=size,
            requests=len(batch),
            tokens=int(statistics.median(m.tokens for m in batch)),
            ttfb_ms=statistics.median(m.ttfb_ms for m in batch),
            ttft_ms=statistics.median(m.ttft_ms for m in batch),
            duration_ms=statistics.median(m.duration_ms for m in batch),
            tokens_per_second=statistics.median(m.tokens_per_second for m in batch),
            relay_rss_kib=None if memory is None else memory.rss_kib,
        )
    )


def render_tables(
    batches: Sequence[BatchSummary],
    decoders: Sequence[DecoderMeasurement],
    memory: dict[str, RelayMemory | None],
) -> str:
    """The human-readable report: one row per size and format, then the decoder's rows."""
    lines = [
        "through the relay (medians)",
        f"{'format':<8}{'tokens':>8}{'ttfb ms':>10}{'ttft ms':>10}{'total ms':>11}"
        f"{'tokens/s':>11}{'relay RSS MiB':>15}",
    ]
    for batch in batches:
        rss = "n/a" if batch.relay_rss_kib is None else f"{batch.relay_rss_kib / _KIB:.1f}"
        lines.append(
            f"{batch.output_format:<8}{batch.tokens:>8}{batch.ttfb_ms:>10.1f}"
            f"{batch.ttft_ms:>10.1f}{batch.duration_ms:>11.1f}{batch.tokens_per_second:>11.0f}"
            f"{rss:>15}"
        )
    idle, end = memory.get("idle"), memory.get("end")
    if idle is not None and end is not None:
        lines.append(
            f"relay memory: {idle.rss_kib / _KIB:.1f} MiB idle, {end.rss_kib / _KIB:.1f} MiB "
            f"at the end, peak {end.peak_kib / _KIB:.1f} MiB"
        )
    lines += [
        "",
        "decoder alone (in-process, best of 3)",
        f"{'parts':<18}{'parts n':>9}{'events':>9}{'events/s':>12}{'MB/s':>8}",
    ]
    for decoder in decoders:
        lines.append(
            f"{decoder.parts:<18}{decoder.part_count:>9}{decoder.events:>9}"
            f"{decoder.events_per_second:>12.0f}{decoder.megabytes_per_second:>8.1f}"
        )
    return "\n".join(lines)


def _write_json(
    options: BenchOptions, results: _Results, decoders: Sequence[DecoderMeasurement]
) -> Path:
    now = dt.datetime.now(dt.UTC)
    document = {
        "created": now.isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "options": {
            "sizes": list(options.sizes),
            "formats": list(options.formats),
            "repeats": options.repeats,
            "decoder_tokens": options.decoder_tokens,
            "model_id": options.model_id,
        },
        "batches": [asdict(batch) for batch in results.batches],
        "requests": [
            {**asdict(request), "tokens_per_second": request.tokens_per_second}
            for request in results.requests
        ],
        "relay_memory_kib": {
            name: None if memory is None else asdict(memory)
            for name, memory in results.memory.items()
        },
        "decoder": [
            {
                **asdict(decoder),
                "events_per_second": decoder.events_per_second,
                "megabytes_per_second": decoder.megabytes_per_second,
            }
            for decoder in decoders
        ],
    }
    directory = Path(options.output_dir)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"bench-{now.strftime('%Y%m%dT%H%M%SZ')}-{os.getpid()}.json"
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return path


def _say(stream: TextIO, line: str) -> None:
    stream.write(line + "\n")
    stream.flush()


def _counted(chunks: Iterable[bytes], sizes: list[int]) -> Iterator[bytes]:
    """The chunks, passed on unchanged, with each one's size noted in `sizes`."""
    for chunk in chunks:
        sizes.append(len(chunk))
        yield chunk
