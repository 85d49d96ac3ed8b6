"""AnswerPump: upstream bytes in, the pieces a caller sees out, with no HTTP and no threads."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from streamer.decoder import TgiError
from streamer.engines import LMI, TGI, VLLM, engine_named
from streamer.errors import UpstreamError
from streamer.http_types import MustAwait
from streamer.model_text import MarkerRewriter, PassThrough
from streamer.pump import (
    DRAIN_MAX_BYTES,
    AnswerPump,
    EndPiece,
    ErrorPiece,
    Piece,
    TextPiece,
    max_line_bytes_for,
)
from streamer.settings import Settings
from streamer.tgi_errors import error_in_stream as tgi_error

from tests.streamer.support import (
    ScriptedStream,
    answer_events,
    error_event,
    final_event,
    token_event,
)

# What the relay derives from its default settings (TGI's stream, the default engine's).
TGI_STREAM = TGI.prompt.stream
DEFAULTS = Settings(endpoint_name="e", region="us-east-1")
LINE_LIMIT = max_line_bytes_for(
    max_body_bytes=DEFAULTS.max_body_bytes, max_new_tokens_limit=DEFAULTS.max_new_tokens_limit
)


def pump_of(stream: ScriptedStream, *, max_line_bytes: int = LINE_LIMIT) -> AnswerPump:
    return AnswerPump(
        stream, transform=PassThrough(), stream_format=TGI_STREAM, max_line_bytes=max_line_bytes
    )


def pull(pump: AnswerPump) -> list[Piece]:
    """One `pull`, on an event loop of its own (the pump's stream here never waits)."""
    return anyio.run(pump.pull)


def drained(pump: AnswerPump) -> bool:
    return anyio.run(pump.drain)


def close(pump: AnswerPump) -> None:
    anyio.run(pump.aclose)


def pull_all(pump: AnswerPump) -> list[Piece]:
    pieces: list[Piece] = []
    while not pump.finished:
        pieces.extend(pull(pump))
    return pieces


def drain(script: list[bytes | BaseException], *, rinna: bool = False) -> list[Piece]:
    transform = MarkerRewriter("<NL>", "\n") if rinna else PassThrough()
    pump = AnswerPump(
        ScriptedStream(script),
        transform=transform,
        stream_format=TGI_STREAM,
        max_line_bytes=LINE_LIMIT,
    )
    pieces: list[Piece] = []
    for _ in range(len(script) + 2):
        pieces.extend(pull(pump))
        if pump.finished:
            break
    assert pump.finished
    assert pull(pump) == []
    return pieces


def texts(pieces: list[Piece]) -> str:
    return "".join(piece.text for piece in pieces if isinstance(piece, TextPiece))


def test_a_whole_answer_is_its_texts_then_the_end() -> None:
    pieces = drain(answer_events(["Hello", ",", " world"]))
    assert pieces == [
        TextPiece(text="Hello"),
        TextPiece(text=","),
        TextPiece(text=" world"),
        EndPiece(finish_reason="eos_token", generated_tokens=4, input_length=4),
    ]


def test_special_and_empty_tokens_are_never_shown() -> None:
    script = [
        token_event("<s>", special=True),
        token_event(""),
        token_event("猫"),
        token_event("<|endoftext|>", special=True),
        final_event("</s>", generated_text="猫", special=True),
    ]
    assert drain(script) == [
        TextPiece(text="猫"),
        EndPiece(finish_reason="eos_token", generated_tokens=3, input_length=4),
    ]


def test_a_visible_final_token_is_shown_before_the_end() -> None:
    script = [token_event("a"), final_event("b", generated_text="ab", special=False)]
    assert texts(drain(script)) == "ab"


def test_missing_details_give_an_end_without_reason() -> None:
    script = [
        token_event("a"),
        final_event("</s>", generated_text="a", finish_reason=None, generated_tokens=None),
    ]
    assert drain(script)[-1] == EndPiece(finish_reason=None, generated_tokens=None)


def test_parts_cut_anywhere_give_the_same_pieces() -> None:
    whole = b"".join(answer_events(["日本", "語", "です"]))
    one_byte_parts: list[bytes | BaseException] = [whole[i : i + 1] for i in range(len(whole))]
    assert texts(drain(one_byte_parts)) == "日本語です"
    assert drain(one_byte_parts)[-1] == drain([whole])[-1]


@settings(max_examples=100)
@given(
    words=st.lists(st.text(min_size=1, max_size=5), min_size=1, max_size=6),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=12),
)
def test_any_cut_of_the_bytes_gives_the_same_text(words: list[str], cuts: list[int]) -> None:
    whole = b"".join(answer_events(words))
    bounds = sorted({0, len(whole), *(cut for cut in cuts if cut < len(whole))})
    parts: list[bytes | BaseException] = [whole[a:b] for a, b in itertools.pairwise(bounds)]
    pieces = drain(parts)
    assert texts(pieces) == "".join(words)
    assert isinstance(pieces[-1], EndPiece)


def test_rinna_newlines_split_across_tokens() -> None:
    pieces = drain(answer_events(["一行目<N", "L>二行目<", "NL>"]), rinna=True)
    assert texts(pieces) == "一行目\n二行目\n"


def test_a_held_back_marker_prefix_is_flushed_at_the_end() -> None:
    pieces = drain(answer_events(["ends with <N"]), rinna=True)
    assert texts(pieces) == "ends with <N"
    assert isinstance(pieces[-1], EndPiece)


@pytest.mark.parametrize(
    ("error_type", "kind", "status"),
    [
        ("validation", "validation", 422),
        ("overloaded", "overloaded", 503),
        ("generation", "model_error", 502),
        ("incomplete_generation", "model_error", 502),
        (None, "model_error", 502),
    ],
)
def test_tgi_errors_end_the_answer(error_type: str | None, kind: str, status: int) -> None:
    pieces = drain([token_event("partial"), error_event("it broke", error_type)])
    assert pieces[0] == TextPiece(text="partial")
    failure = pieces[-1]
    assert isinstance(failure, ErrorPiece)
    assert (failure.error.kind, failure.error.status) == (kind, status)


def test_a_validation_message_reaches_the_caller_and_others_stay_in_the_log() -> None:
    validation = tgi_error(
        TgiError(message="Input validation error: `inputs` too long", error_type="validation")
    )
    assert "`inputs` too long" in validation.message
    generation = tgi_error(
        TgiError(message="CUDA out of memory at 0x7f00", error_type="generation")
    )
    assert "CUDA" not in generation.message
    assert "CUDA" in (generation.detail or "")
    assert tgi_error(TgiError(message="x", error_type="overloaded")).retry_after


def test_an_upstream_error_mid_stream_keeps_the_text_before_it() -> None:
    error = UpstreamError(kind="upstream_error", message="broken")
    pieces = drain([token_event("one"), error])
    assert pieces == [TextPiece(text="one"), ErrorPiece(error=error)]


def test_held_back_text_is_sent_before_a_failure() -> None:
    error = UpstreamError(kind="upstream_timeout", message="slow")
    pieces = drain([token_event("a<N"), error], rinna=True)
    assert pieces == [TextPiece(text="a"), TextPiece(text="<N"), ErrorPiece(error=error)]


def test_a_stream_that_stops_without_a_final_event_is_incomplete() -> None:
    pieces = drain([token_event("so far")])
    assert pieces[0] == TextPiece(text="so far")
    failure = pieces[-1]
    assert isinstance(failure, ErrorPiece)
    assert (failure.error.kind, failure.error.status) == ("incomplete_stream", 502)


def test_an_empty_stream_is_incomplete() -> None:
    (failure,) = drain([])
    assert isinstance(failure, ErrorPiece)
    assert failure.error.kind == "incomplete_stream"


@pytest.mark.parametrize(
    "garbage",
    [
        b"data: {not json}\n\n",
        b"data: [1, 2]\n\n",
        b'data: {"something": "else"}\n\n',
        b"data: \xff\xfe\n\n",
    ],
)
def test_bytes_that_are_not_a_tgi_stream_are_an_upstream_error(garbage: bytes) -> None:
    pieces = drain([token_event("ok"), garbage])
    failure = pieces[-1]
    assert isinstance(failure, ErrorPiece)
    assert (failure.error.kind, failure.error.status) == ("upstream_error", 502)
    # The decoder's own words quote the payload: they go to the log, not to the caller.
    assert "not json" not in failure.error.message
    assert failure.error.detail


def test_a_protocol_error_in_the_last_unterminated_line_is_an_upstream_error() -> None:
    failure = drain([token_event("ok"), b"data: {broken"])[-1]
    assert isinstance(failure, ErrorPiece)
    assert failure.error.kind == "upstream_error"


def test_pull_reads_nothing_after_the_end_and_drain_reads_the_rest() -> None:
    """Bytes after the final event are not the answer; reading them only frees the connection."""
    stream = ScriptedStream([*answer_events(["a"]), token_event("after the end")])
    pump = pump_of(stream)
    assert texts(pull_all(pump)) == "a"
    assert pump.ended
    assert pull(pump) == []
    assert not stream.exhausted.is_set()
    assert drained(pump) is True
    assert stream.exhausted.is_set()


def test_a_complete_answer_whose_stream_just_ends_drains_at_once() -> None:
    stream = ScriptedStream(answer_events(["a", "b"]))
    pump = pump_of(stream)
    pull_all(pump)
    assert drained(pump) is True
    assert stream.exhausted.is_set()


def test_drain_reads_a_bounded_amount() -> None:
    chunk = b":" + b" " * 1023 + b"\n"  # keep-alive comments that never end
    endless = [chunk] * (2 * DRAIN_MAX_BYTES // len(chunk))
    stream = ScriptedStream([*answer_events(["a"]), *endless])
    pump = pump_of(stream)
    pull_all(pump)
    assert drained(pump) is False
    assert not stream.exhausted.is_set()
    assert stream.reads < len(answer_events(["a"])) + len(endless)


def test_drain_stops_at_an_upstream_error() -> None:
    error = UpstreamError(kind="upstream_error", message="broken")
    stream = ScriptedStream([*answer_events(["a"]), error, token_event("unreachable")])
    pump = pump_of(stream)
    pull_all(pump)
    assert drained(pump) is False
    assert next(stream) == token_event("unreachable")


@pytest.mark.parametrize(
    "script",
    [
        [token_event("cut"), UpstreamError(kind="upstream_error", message="m.")],
        [token_event("cut"), error_event("Model is overloaded", "overloaded"), b"more"],
        [token_event("cut"), b"data: {broken}\n\n", b"more"],
    ],
)
def test_a_failed_answer_is_never_drained(script: list[bytes | BaseException]) -> None:
    stream = ScriptedStream(script)
    pump = pump_of(stream)
    pieces = pull_all(pump)
    assert isinstance(pieces[-1], ErrorPiece)
    assert not pump.ended
    reads = stream.reads
    assert drained(pump) is False
    assert stream.reads == reads


def test_an_unfinished_answer_is_never_drained() -> None:
    stream = ScriptedStream([token_event("one"), token_event("two")])
    pump = pump_of(stream)
    pull(pump)
    assert drained(pump) is False
    assert stream.reads == 1


def test_a_closed_stream_is_not_drained() -> None:
    stream = ScriptedStream([*answer_events(["a"]), b"rest"])
    pump = pump_of(stream)
    pull_all(pump)
    close(pump)
    assert drained(pump) is False
    assert not stream.exhausted.is_set()


def test_close_closes_the_stream_once() -> None:
    closes: list[None] = []

    class CountingStream(ScriptedStream):
        async def aclose(self) -> None:
            closes.append(None)

    pump = pump_of(CountingStream([]))
    close(pump)
    close(pump)
    assert len(closes) == 1


# --- The longest line: a final event that repeats a large prompt ---------------------------------


def final_event_repeating(prompt: str, answer: list[str]) -> list[bytes]:
    """TGI with return_full_text: the final generated_text is the prompt, then the answer."""
    events = [token_event(text) for text in answer]
    events.append(final_event("</s>", generated_text=prompt + "".join(answer)))
    return events


def final_line(generated_text_json: str) -> bytes:
    """TGI's final event with its generated_text already written as JSON."""
    return (
        'data: {"index": 3, "token": {"id": 2, "text": "</s>", "logprob": -0.1, "special": true},'
        f' "generated_text": {generated_text_json},'
        ' "details": {"finish_reason": "eos_token", "generated_tokens": 3, "seed": null}}\n\n'
    ).encode()


def every_character_escaped(text: str) -> str:
    return '"' + "".join(f"\\u{ord(character):04x}" for character in text) + '"'


@pytest.mark.parametrize("escape", [json.dumps, every_character_escaped])
def test_the_final_event_of_the_largest_prompt_still_ends_the_answer(
    escape: Callable[[str], str],
) -> None:
    """With return_full_text (SageMaker's default) TGI repeats the prompt in the final event. The
    largest body the relay takes carries a prompt of nearly as many bytes, and an upstream that
    writes each character as a `\\uXXXX` escape makes that line six times as long: the answer
    must still end, not fail at a fixed limit (it was 1 MiB)."""
    prompt = "x" * (DEFAULTS.max_body_bytes - len(json.dumps({"inputs": ""})))
    final = final_line(escape(prompt + "ok!"))
    assert len(final) > 1024 * 1024
    stream = ScriptedStream([token_event("ok"), token_event("!"), final])
    assert pull_all(pump_of(stream)) == [
        TextPiece(text="ok"),
        TextPiece(text="!"),
        EndPiece(finish_reason="eos_token", generated_tokens=3),
    ]


def test_a_line_beyond_the_limit_is_still_refused() -> None:
    """The limit still bounds memory: a line longer than any valid request causes is an error."""
    limit = max_line_bytes_for(max_body_bytes=100, max_new_tokens_limit=1)
    events = final_event_repeating("x" * (limit + 1), ["ok"])
    failure = pull_all(pump_of(ScriptedStream(events), max_line_bytes=limit))[-1]
    assert isinstance(failure, ErrorPiece)
    assert failure.error.kind == "upstream_error"
    assert "max_line_bytes" in (failure.error.detail or "")


def test_abandon_returns_the_text_held_back_and_ends_the_answer() -> None:
    stream = ScriptedStream([token_event("abc<"), token_event("NL>more")])
    pump = AnswerPump(
        stream,
        transform=MarkerRewriter("<NL>", "\n"),
        stream_format=TGI_STREAM,
        max_line_bytes=LINE_LIMIT,
    )
    assert pull(pump) == [TextPiece(text="abc")]  # "<" may start "<NL>": held back
    assert pump.abandon() == "<"
    assert pump.finished
    assert not stream.closed.is_set()  # closing is the relay's, when the response ends
    # A read that was under way when the relay gave up turns into nothing.
    assert pull(pump) == []
    assert pump.abandon() == ""


def test_a_read_that_returns_after_abandon_yields_nothing() -> None:
    pump_ref: list[AnswerPump] = []

    class AbandonedWhileReading(ScriptedStream):
        def __next__(self) -> bytes:
            data = super().__next__()
            if self.reads == 2:
                pump_ref[0].abandon()  # as the deadline does while a read is under way
            return data

    stream = AbandonedWhileReading(answer_events(["one", " two"]))
    pump = AnswerPump(
        stream, transform=PassThrough(), stream_format=TGI_STREAM, max_line_bytes=LINE_LIMIT
    )
    pump_ref.append(pump)
    assert pull(pump) == [TextPiece(text="one")]
    assert pull(pump) == []
    assert pump.finished


# --- Other engines' streams ---------------------------------------------------------------------


@pytest.mark.parametrize("escape", [json.dumps, every_character_escaped])
def test_lmis_last_line_with_the_largest_prompt_still_ends_the_answer(
    escape: Callable[[str], str],
) -> None:
    """LMI's last line repeats the prompt in `details.inputs` (the relay never asks it for the
    full text): within the same bound as TGI's, however the prompt comes back escaped."""
    prompt = "x" * (DEFAULTS.max_body_bytes - len(json.dumps({"inputs": ""})))
    answer = "ok!" * (DEFAULTS.max_new_tokens_limit // 2)
    final = (
        '{"token": {"id": 2, "text": "", "log_prob": -0.1}, '
        f'"generated_text": {escape(answer)}, "details": {{"finish_reason": "length", '
        f'"generated_tokens": 3, "inputs": {escape(prompt)}}}}}\n'
    ).encode()
    assert len(final) > 1024 * 1024
    stream = ScriptedStream([b'{"token": {"id": 1, "text": "ok", "log_prob": -0.1}}\n', final])
    pump = AnswerPump(
        stream,
        transform=PassThrough(),
        stream_format=LMI.prompt.stream,
        max_line_bytes=LINE_LIMIT,
    )
    assert pull_all(pump) == [
        TextPiece(text="ok"),
        EndPiece(finish_reason="length", generated_tokens=3),
    ]


@pytest.mark.parametrize(
    ("engine", "name"),
    [("lmi", "LMI token stream"), ("vllm", "stream of vLLM's chunks")],
)
def test_bytes_that_are_not_the_engines_stream_say_whose_it_is_not(engine: str, name: str) -> None:
    stream_format = engine_named(engine).prompt.stream
    pump = AnswerPump(
        ScriptedStream([b"data: {not json}\n\n"]),
        transform=PassThrough(),
        stream_format=stream_format,
        max_line_bytes=LINE_LIMIT,
    )
    (failure,) = pull_all(pump)
    assert isinstance(failure, ErrorPiece)
    assert failure.error.kind == "upstream_error"
    assert (
        failure.error.message == f"The model's stream could not be read: it was not a valid {name}."
    )
    assert "not json" in (failure.error.detail or "")


def test_an_engines_error_event_is_read_by_that_engine() -> None:
    vllm_failure = (
        b'data: {"error": {"message": "too long", "type": "BadRequestError", "code": 400}}\n\n'
    )
    pump = AnswerPump(
        ScriptedStream([b'data: {"choices": [{"index": 0, "text": "a"}]}\n\n', vllm_failure]),
        transform=PassThrough(),
        stream_format=VLLM.prompt.stream,
        max_line_bytes=LINE_LIMIT,
    )
    pieces = pull_all(pump)
    assert pieces[0] == TextPiece(text="a")
    failure = pieces[-1]
    assert isinstance(failure, ErrorPiece)
    assert (failure.error.kind, failure.error.status) == ("validation", 422)
    assert "too long" in failure.error.message


class ArrivedStream(ScriptedStream):
    """A script of which the first `arrived` steps are at hand without waiting (as a network
    connection's received bytes are): `next_nowait` takes them (raising its exceptions), says
    None after them, and MustAwait where the next step is the script's end."""

    def __init__(self, script: list[bytes | BaseException], *, arrived: int | None = None) -> None:
        super().__init__(script)
        self._left = list(script)
        self._at_hand = len(script) if arrived is None else arrived

    def next_nowait(self) -> bytes | None:
        if not self._left:
            raise MustAwait
        if self._at_hand == 0:
            return None
        self._at_hand -= 1
        self._left.pop(0)
        return next(self)


def test_the_end_of_a_complete_answer_is_at_hand_once_it_has_arrived() -> None:
    """`end_at_hand` lets the response close a finished stream without bounding or shielding
    the wait: true only where nothing is left to wait for."""
    events = [*answer_events(["a"]), token_event("after the end")]
    arrived = ArrivedStream(events)
    pump = pump_of(arrived)
    assert not pump.end_at_hand()  # the answer is not complete yet
    while not pump.finished:
        pump.pull_nowait()
    assert pump.end_at_hand()  # what followed the final event is read and dropped
    assert drained(pump) is True
    assert arrived.exhausted.is_set()

    waiting = ArrivedStream(events, arrived=len(answer_events(["a"])))
    pump = pump_of(waiting)
    while not pump.finished:
        pump.pull_nowait()
    assert not pump.end_at_hand()  # the rest is still to come
    assert not pump_of(ScriptedStream(events)).end_at_hand()  # a stream that cannot tell


def test_a_failure_after_the_final_event_closes_the_stream_rather_than_draining_it() -> None:
    """As `drain` alone does: the failure `end_at_hand` met is not read past."""
    failing = ArrivedStream([*answer_events(["a"]), UpstreamError.bad_gateway("gone", "x")])
    pump = pump_of(failing)
    while not pump.finished:
        pump.pull_nowait()
    assert not pump.end_at_hand()
    assert drained(pump) is False
