"""Tests for the sans-I/O decoder of OpenAI chunks: vLLM's chat and completions streams (SSE, then
a usage chunk and `[DONE]`) and LMI's chat streams (JSON lines, no end marker).

The standard of test_decoder.py: each stream fed whole, byte by byte and cut at every position,
and hypothesis checking that any split of a generated stream gives the same events (TGI's, so
every writer works unchanged), within the memory of its longest line.
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any, NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from streamer import lmi_errors, vllm_errors
from streamer.lmi_errors import LmiError
from streamer.openai_decoder import OpenAIChunkDecoder
from streamer.stream_lines import GenerationEnd, StreamProtocolError, Token
from streamer.vllm_errors import VllmError

from tests.streamer.decoding import (
    assert_buffer_bounded,
    assert_decodes_everywhere,
    decode_parts,
    decode_until_refused,
    split_at,
)
from tests.streamer.engine_streams import (
    DONE,
    chat_chunk,
    completion_chunk,
    json_line,
    lmi_chat_answer,
    sse,
    usage_chunk,
    vllm_chat_answer,
    vllm_completion_answer,
    vllm_error,
)

VLLM = partial(OpenAIChunkDecoder, errors=vllm_errors)
LMI = partial(OpenAIChunkDecoder, errors=lmi_errors)


def decode(stream: bytes, *, make: Any = VLLM, **kwargs: Any) -> list[Any]:
    return decode_parts(make, [stream], **kwargs)


def text(texts: str) -> Token:
    return Token(text=texts, special=False)


def end(reason: str, completion: int | None = None, prompt: int | None = None) -> GenerationEnd:
    return GenerationEnd(
        generated_text=None,
        finish_reason=reason,
        generated_tokens=completion,
        input_length=prompt,
    )


# --- vLLM's streams -----------------------------------------------------------------------------


def test_a_vllm_chat_stream_is_its_texts_then_the_end_with_usage() -> None:
    stream = b"".join(vllm_chat_answer(["Deep", " learning", " 日本"], prompt_tokens=9))
    assert_decodes_everywhere(
        VLLM, stream, [text("Deep"), text(" learning"), text(" 日本"), end("eos_token", 3, 9)]
    )


def test_a_vllm_completion_stream_is_its_texts_then_the_end_with_usage() -> None:
    stream = b"".join(vllm_completion_answer(["Once", " upon"], finish_reason="length"))
    assert_decodes_everywhere(VLLM, stream, [text("Once"), text(" upon"), end("length", 2, 5)])


@pytest.mark.parametrize(
    ("reason", "stop_reason", "expected"),
    [
        ("stop", None, "eos_token"),  # the end of the text
        ("stop", 128009, "eos_token"),  # a stop token's id
        ("stop", "\nUser:", "stop_sequence"),  # the stop string the caller gave
        ("length", None, "length"),
        # LMI's rolling batch already speaks TGI's words.
        ("eos_token", None, "eos_token"),
        ("stop_sequence", None, "stop_sequence"),
    ],
)
def test_the_finish_reason_is_tgis(reason: str, stop_reason: Any, expected: str) -> None:
    stream = sse(chat_chunk("a", finish_reason=reason, stop_reason=stop_reason)) + DONE
    assert decode(stream) == [text("a"), end(expected)]


def test_the_text_of_the_chunk_that_finishes_is_kept() -> None:
    stream = sse(completion_chunk("end.", finish_reason="length")) + DONE
    assert decode(stream) == [text("end."), end("length")]


def test_the_roles_empty_text_and_empty_deltas_are_no_tokens() -> None:
    stream = sse(chat_chunk("", role=True)) + sse(chat_chunk()) + sse(chat_chunk(None, role=True))
    assert decode(stream) == []


def test_nothing_ends_before_the_finish_reason() -> None:
    decoder = VLLM()
    assert decoder.feed(sse(chat_chunk("a"))) == [text("a")]
    assert decoder.feed(sse(chat_chunk(finish_reason="stop"))) == []
    assert not decoder.finished  # the usage chunk may still come
    assert decoder.feed(sse(usage_chunk(3, 1))) == [end("eos_token", 1, 3)]
    assert decoder.finished
    assert decoder.feed(DONE) == []
    assert decoder.close() == []


def test_without_a_usage_chunk_the_end_comes_at_done_without_counts() -> None:
    stream = sse(chat_chunk("a")) + sse(chat_chunk(finish_reason="length")) + DONE
    assert_decodes_everywhere(VLLM, stream, [text("a"), end("length")])


def test_usage_on_every_chunk_is_the_last_ones() -> None:
    """vLLM's continuous usage statistics: every chunk carries the counts so far."""
    chunks = [chat_chunk("a"), chat_chunk("b", finish_reason="stop")]
    for position, chunk in enumerate(chunks, 1):
        chunk["usage"] = {"prompt_tokens": 4, "completion_tokens": position, "total_tokens": 0}
    stream = b"".join(sse(chunk) for chunk in chunks) + DONE
    assert decode(stream) == [text("a"), text("b"), end("eos_token", 2, 4)]


@pytest.mark.parametrize(
    ("stream", "expected"),
    [
        (sse(chat_chunk("a")) + sse(chat_chunk("b")), [text("a"), text("b")]),
        (sse(chat_chunk("a")) + DONE, [text("a")]),
        (sse(chat_chunk("a")) + sse(usage_chunk(3, 1)) + DONE, [text("a")]),  # no finish_reason
        (json_line(chat_chunk("a")) + json_line(chat_chunk("b")), [text("a"), text("b")]),
    ],
    ids=["no-end", "done-without-finish", "usage-without-finish", "json-lines-without-finish"],
)
def test_a_stream_cut_off_before_its_finish_reason_has_no_end(
    stream: bytes, expected: list[Any]
) -> None:
    """The pump then says the answer is incomplete: no end is made up."""
    decoder = VLLM()
    assert decoder.feed(stream) + decoder.close() == expected
    assert not decoder.finished


def test_keep_alive_comments_event_and_id_lines_are_ignored() -> None:
    stream = b": ping\n\nevent: chunk\nid: 4\n" + b"".join(vllm_chat_answer(["a"]))
    assert decode(stream) == [text("a"), end("eos_token", 1, 7)]


@pytest.mark.parametrize("prefix", [b"data: ", b"data:"])
def test_both_data_spacings_and_either_done_spelling_decode_the_same(prefix: bytes) -> None:
    stream = (
        prefix
        + json.dumps(chat_chunk("a", finish_reason="length")).encode()
        + b"\n\n"
        + prefix
        + b"[DONE]\n\n"
    )
    assert_decodes_everywhere(VLLM, stream, [text("a"), end("length")])


def test_nothing_after_done_is_read() -> None:
    stream = sse(chat_chunk("a", finish_reason="stop")) + DONE + sse(chat_chunk("b")) + b"junk\n"
    assert decode(stream) == [text("a"), end("eos_token")]


def test_japanese_text_split_mid_character_decodes_whole() -> None:
    chunk = sse(chat_chunk("こんにちは、世界"))
    start = chunk.index("こ".encode())
    parts = split_at(chunk + DONE, [start + 1, start + 2, start + 4])
    with pytest.raises(UnicodeDecodeError):
        parts[1].decode()
    assert decode_parts(VLLM, parts) == [text("こんにちは、世界")]


# --- LMI's chat streams: JSON lines, no usage, no [DONE] --------------------------------------


def test_an_lmi_chat_stream_ends_at_the_end_of_input_after_its_finish_reason() -> None:
    stream = b"".join(lmi_chat_answer(["Deep", " learning"], finish_reason="eos_token"))
    assert b"data:" not in stream
    decoder = LMI()
    assert decoder.feed(stream) == [text("Deep"), text(" learning")]
    assert not decoder.finished  # JSON lines have no end marker: the end of input is it
    assert decoder.close() == [end("eos_token")]
    assert decoder.finished
    assert_decodes_everywhere(LMI, stream, [text("Deep"), text(" learning"), end("eos_token")])


def test_rolling_batch_chunks_count_the_tokens_generated_where_no_usage_comes() -> None:
    """LMI 10 and 11 write one chunk per token, the end-of-sequence token's with empty text."""
    stream = b"".join(lmi_chat_answer(["Deep", " learning", ""], finish_reason="eos_token"))
    per_token = partial(LMI, chunk_per_token=True)
    expected = [text("Deep"), text(" learning"), end("eos_token", 3)]
    assert_decodes_everywhere(per_token, stream, expected)
    # A usage chunk (LMI's async mode) says it instead of the count.
    counted = stream + json_line(usage_chunk(6, 2))
    assert decode(counted, make=per_token) == [*expected[:2], end("eos_token", 2, 6)]


def test_lmis_async_chat_stream_ends_at_its_usage_chunk() -> None:
    """The async mode passes vLLM's chunks on as JSON lines, `[DONE]` as an empty line."""
    stream = (
        json_line(chat_chunk("a"))
        + json_line(chat_chunk(finish_reason="stop"))
        + json_line(usage_chunk(6, 1))
        + b"\n"
    )
    assert_decodes_everywhere(LMI, stream, [text("a"), end("eos_token", 1, 6)])


# --- Failures -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            vllm_error("max_tokens is too large", code=400),
            VllmError(message="max_tokens is too large", error_type="BadRequestError", status=400),
        ),
        (
            {"object": "error", "message": "overloaded", "type": "ServiceUnavailable", "code": 503},
            VllmError(message="overloaded", error_type="ServiceUnavailable", status=503),
        ),
        (
            {"error": {"object": "error", "message": "boom", "type": "InternalServerError"}},
            VllmError(message="boom", error_type="InternalServerError", status=None),
        ),
        ({"error": "plain words"}, VllmError(message="plain words", error_type=None, status=None)),
    ],
    ids=["vllm", "older-vllm", "older-vllm-nested", "a-string"],
)
def test_vllms_errors_after_text_are_its_error_event(error: Any, expected: VllmError) -> None:
    stream = sse(chat_chunk("a")) + sse(error) + DONE
    assert_decodes_everywhere(VLLM, stream, [text("a"), expected])


def test_an_error_before_any_text_is_the_only_event_and_finishes() -> None:
    decoder = VLLM()
    assert decoder.feed(sse(vllm_error("bad", code=422)) + DONE) == [
        VllmError(message="bad", error_type="BadRequestError", status=422)
    ]
    assert decoder.finished
    assert decoder.close() == []


@pytest.mark.parametrize("reason", ["error", "abort"])
def test_a_finish_reason_that_says_it_failed_is_the_engines_error(reason: str) -> None:
    vllm = sse(chat_chunk("a")) + sse(chat_chunk(finish_reason=reason)) + DONE
    assert decode(vllm) == [text("a"), vllm_errors.stopped(reason)]
    lmi = json_line(chat_chunk("a")) + json_line(chat_chunk("", finish_reason=reason))
    assert decode(lmi, make=LMI) == [text("a"), lmi_errors.stopped(reason)]


def test_an_lmi_chat_streams_errors_are_lmis() -> None:
    stream = json_line(chat_chunk("a")) + json_line({"error": "Input parsing failed", "code": 424})
    assert decode(stream, make=LMI) == [
        text("a"),
        LmiError(message="Input parsing failed", status=424),
    ]
    passed_through = json_line(vllm_error("too long", code=400))
    assert decode(passed_through, make=LMI) == [LmiError(message="too long", status=400)]


# --- Memory and protocol errors ------------------------------------------------------------------


def test_memory_is_bounded_by_the_longest_line_not_by_the_answer() -> None:
    events = [sse(chat_chunk("語")) for _ in range(2000)]
    longest = max(len(event) for event in events) - 2
    stream = b"".join(events)
    decoder = VLLM(max_line_bytes=longest)
    decoded: list[Any] = []
    high_water = 0
    for part in split_at(stream, range(37, len(stream), 37)):
        decoded += decoder.feed(part)
        high_water = max(high_water, decoder.buffered_bytes)
    decoded += decoder.close()
    assert len(stream) > 1000 * longest
    assert len(decoded) == 2000
    assert 0 < high_water <= longest
    assert decoder.buffered_bytes == 0


def test_a_line_longer_than_the_limit_is_refused() -> None:
    line = sse(chat_chunk("a"))
    assert decode(line, max_line_bytes=len(line) - 2) == [text("a")]
    with pytest.raises(StreamProtocolError, match=r"max_line_bytes.*OpenAI chunk stream"):
        decode(line, max_line_bytes=len(line) - 3)


BAD_LINES = {
    "not-json": (b"data: hello", "not JSON"),
    "bare-garbage": (b"garbage", "not JSON"),
    "array": (b"data: [1, 2]", "not a JSON object"),
    "no-choices": (b'data: {"id": "x"}', "no 'choices' list"),
    "tgi-token-event": (
        b'data: {"token": {"id": 1, "text": "a", "special": false}}',
        "no 'choices' list",
    ),
    "choice-string": (b'data: {"choices": ["a"]}', "a choice is not an object"),
    "second-choice": (
        b'data: {"choices": [{"index": 1, "delta": {"content": "a"}}]}',
        "index 1",
    ),
    "delta-string": (b'data: {"choices": [{"index": 0, "delta": "a"}]}', "delta"),
    "content-number": (b'data: {"choices": [{"index": 0, "delta": {"content": 5}}]}', "text"),
    "text-list": (b'data: {"choices": [{"index": 0, "text": ["a"]}]}', "text"),
    "finish-number": (b'data: {"choices": [{"index": 0, "finish_reason": 1}]}', "finish_reason"),
    "usage-string": (b'data: {"choices": [], "usage": "x"}', "usage"),
    "usage-count-string": (
        b'data: {"choices": [], "usage": {"completion_tokens": "3"}}',
        "completion_tokens",
    ),
    "error-number": (b'data: {"error": 5}', "neither a string nor an object"),
    "error-without-message": (b'data: {"error": {"code": 400}}', "message"),
    "error-type-number": (b'data: {"error": {"message": "m", "type": 1}}', "type"),
    "invalid-utf8": (b'data: {"choices": [{"index": 0, "text": "\xe3\x81"}]}', "not valid UTF-8"),
}


@pytest.mark.parametrize("name", sorted(BAD_LINES))
def test_anything_but_an_openai_chunk_is_a_protocol_error(name: str) -> None:
    line, message = BAD_LINES[name]
    with pytest.raises(StreamProtocolError, match=message):
        decode(line + b"\n\n")


def test_events_decoded_before_a_protocol_error_are_returned_first() -> None:
    decoder = VLLM()
    assert decoder.feed(sse(chat_chunk("a")) + b"data: {oops\n\n" + sse(chat_chunk("b"))) == [
        text("a")
    ]
    with pytest.raises(StreamProtocolError, match="not JSON"):
        decoder.close()
    assert decoder.close() == []


# --- Properties -----------------------------------------------------------------------------------

piece_texts = st.one_of(
    st.text(max_size=6),
    st.sampled_from(["", " time", "日本語", "😀", "👩‍💻", "\u2028", "\r\n", "data:", "[DONE]"]),
)


class Generated(NamedTuple):
    stream: bytes
    expected: list[Any]
    longest: int
    #: `[DONE]` ends it: nothing after it is read.
    done: bool


@st.composite
def openai_streams(draw: st.DrawFn) -> Generated:
    """An OpenAI stream as vLLM or LMI could write it, its events, and its longest line."""
    framing = draw(st.sampled_from(["sse", "json-lines"]))
    chat = draw(st.booleans())
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    pieces = draw(st.lists(piece_texts, max_size=10))
    ending = draw(st.sampled_from(["usage", "done", "end-of-input", "error", "abort", "cut"]))

    chunks: list[dict[str, Any] | str] = []
    if chat:
        chunks.append(chat_chunk("", role=True))
    chunks += [chat_chunk(piece) if chat else completion_chunk(piece) for piece in pieces]
    expected: list[Any] = [text(piece) for piece in pieces if piece]
    finish: dict[str, Any] = (
        chat_chunk(finish_reason="length") if chat else completion_chunk("", finish_reason="length")
    )
    if ending == "usage":
        chunks += [finish, usage_chunk(3, len(pieces), chat=chat), "[DONE]"]
        expected.append(end("length", len(pieces), 3))
    elif ending in ("done", "end-of-input"):
        chunks.append(finish)
        if ending == "done":
            chunks.append("[DONE]")
        expected.append(end("length"))
    elif ending == "error":
        chunks += [vllm_error("Engine died: ✗", code=500, error_type="InternalServerError")]
        chunks.append("[DONE]")
        expected.append(
            VllmError(message="Engine died: ✗", error_type="InternalServerError", status=500)
        )
    elif ending == "abort":
        chunks.append(chat_chunk(finish_reason="abort"))
        expected.append(vllm_errors.stopped("abort"))
    payloads = [c if isinstance(c, str) else json.dumps(c, ensure_ascii=False) for c in chunks]
    if framing == "json-lines":
        lines = payloads
    else:
        lines = [line for payload in payloads for line in ("data: " + payload, "")]
    stream = newline.join(lines) + (newline if lines else "")
    longest = max((len(line.encode()) for line in lines), default=0)
    return Generated(stream.encode(), expected, longest, done="[DONE]" in chunks)


@settings(max_examples=200)
@given(openai_streams(), st.data())
def test_property_any_split_into_parts_decodes_to_the_same_events(
    generated: Generated, data: st.DataObject
) -> None:
    stream = generated.stream
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=24), label="cuts")
    assert decode_parts(VLLM, split_at(stream, cuts)) == decode(stream) == generated.expected


@settings(max_examples=200)
@given(openai_streams(), st.data())
def test_property_the_buffer_never_exceeds_the_longest_line(
    generated: Generated, data: st.DataObject
) -> None:
    stream = generated.stream
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=24), label="cuts")
    assert_buffer_bounded(VLLM, split_at(stream, cuts), generated.longest)


@settings(max_examples=100)
@given(openai_streams().filter(lambda generated: not generated.done), st.data())
def test_property_events_before_garbage_do_not_depend_on_the_split(
    generated: Generated, data: st.DataObject
) -> None:
    """(After `[DONE]` nothing is read, garbage included: tested above.)"""
    bad = generated.stream + b"\ndata: {not json}\n\n" + sse(chat_chunk("x"))
    cuts = data.draw(st.lists(st.integers(0, len(bad)), max_size=24), label="cuts")
    received, error = decode_until_refused(VLLM, split_at(bad, cuts))
    assert error is not None
    assert "not JSON" in str(error)
    # A stream without an end marker ends at the end of input, which the garbage kept away.
    assert received == [e for e in generated.expected if not isinstance(e, GenerationEnd)]


def test_not_even_invalid_utf8_after_done_is_read() -> None:
    assert decode(sse(chat_chunk("a", finish_reason="stop")) + DONE + b"\xff\xfe\n") == [
        text("a"),
        end("eos_token"),
    ]
