"""The decoder (``decoder_tps``, ``sdk_lineiterator_tps``, ``naive_split_tps``, ``decoder_peak_*``).

The same TGI bytes, cut into PayloadParts as a container sends them (one per event, every tenth
cut in two), read by the relay's StreamDecoder, by sagemaker-core's ``LineIterator`` with
``json.loads`` (what AWS's examples do), and by a naive ``split(b"\\n\\n")``. All three must find
the same texts.

Method: CPU time of this process (``time.process_time``), not wall time: on a shared machine wall
time also counts the time the process waited for a core, which has nothing to do with the code.
Each reader's best of several rounds, the readers interleaved round by round so that a busy
spell hurts them alike. ``decoder_peak_kib_*``: tracemalloc's peak while decoding the token
events of a 1k and a 100k-token answer. (The final event is left out: TGI repeats the whole answer
in it, so it is as long as the answer by design, and bounded by the relay's line limit.)
"""

from __future__ import annotations

import json
import time
import tracemalloc
from collections.abc import Callable, Sequence
from typing import Final

from jumpstream.bench.clients import max_new_tokens_for
from jumpstream.bench.plan import BenchFailed, Plan
from jumpstream.bench.relay_code import decoder_texts, new_stream_decoder
from jumpstream.local import DEFAULT_MODEL_ID

__all__ = [
    "decoder_peak_kib",
    "measure_decoder",
    "naive_texts",
    "payload_parts",
    "sdk_texts",
    "tgi_events",
]

#: Every tenth event is cut in two, as SageMaker may cut anywhere.
_CUT_EVERY: Final = 10
_KIB: Final = 1024


def tgi_events(tokens: int, model_id: str = DEFAULT_MODEL_ID) -> list[bytes]:
    """The ``data:`` events a TGI container sends for an answer of ``tokens`` tokens."""
    from jumpstream.emulator.model import StandInModel, stream_events
    from jumpstream.emulator.request import GenerateRequest
    from jumpstream.emulator.sse import data_event

    request = GenerateRequest(
        inputs="Benchmark the decoder.",
        stream=True,
        max_new_tokens=max_new_tokens_for(tokens),
        details=True,
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


def sdk_texts(parts: Sequence[bytes]) -> list[str]:
    """What AWS's examples do: sagemaker-core's LineIterator, then json.loads per data line."""
    from sagemaker.core.iterators import LineIterator

    texts: list[str] = []
    for line in LineIterator(iter([{"PayloadPart": {"Bytes": part}} for part in parts])):
        if line.startswith(b"data:"):
            token = json.loads(line[5:]).get("token") or {}
            if not token.get("special") and token.get("text"):
                texts.append(token["text"])
    return texts


def naive_texts(parts: Sequence[bytes]) -> list[str]:
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


def _cpu_seconds(run: Callable[[], object]) -> float:
    started = time.process_time()
    run()
    return time.process_time() - started


def measure_decoder(plan: Plan, model_id: str = DEFAULT_MODEL_ID) -> dict[str, float]:
    """Three readers on the same parts, interleaved round by round; texts must agree."""
    parts = payload_parts(tgi_events(plan.decoder_tokens, model_id))
    ours, tokens = decoder_texts(parts)
    if not (ours == sdk_texts(parts) == naive_texts(parts)):
        raise BenchFailed("the decoder, LineIterator and the naive split read different texts")
    readers = {
        "decoder_tps": lambda: decoder_texts(parts),
        "sdk_lineiterator_tps": lambda: sdk_texts(parts),
        "naive_split_tps": lambda: naive_texts(parts),
    }
    best = dict.fromkeys(readers, float("inf"))
    for _ in range(plan.decoder_rounds):
        for name, reader in readers.items():
            best[name] = min(best[name], _cpu_seconds(reader))
    result = {name: tokens / seconds for name, seconds in best.items()}
    result["decoder_speedup_vs_sdk"] = result["decoder_tps"] / result["sdk_lineiterator_tps"]
    return result


def decoder_peak_kib(tokens: int, model_id: str = DEFAULT_MODEL_ID) -> float:
    """tracemalloc's peak while the decoder reads the token events of a ``tokens`` answer."""
    parts = payload_parts(tgi_events(tokens, model_id)[:-1])
    decoder = new_stream_decoder()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        for part in parts:
            decoder.feed(part)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / _KIB
