"""Tests for the sans-I/O decoder of LMI's token lines (a prompt sent to LMI as `inputs`).

The standard of test_decoder.py: each stream fed whole, byte by byte and cut at every position,
and hypothesis checking that any split of a generated stream (JSON lines or SSE, split UTF-8,
faults before and after text) gives the same events, within the memory of its longest line.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from streamer.lmi_decoder import LmiTokenDecoder
from streamer.lmi_errors import LmiError
from streamer.stream_lines import GenerationEnd, StreamProtocolError, Token

from tests.streamer.decoding import (
    assert_buffer_bounded,
    assert_decodes_everywhere,
    bytewise,
    decode_parts,
    decode_until_refused,
    split_at,
)
from tests.streamer.engine_streams import json_line, lmi_failure, lmi_final, lmi_token, sse

# The design's examples, verbatim.
SPEC_TOKEN_LINE = b'{"token": {"id": 304, "text": "Deep ", "log_prob": -0.05}}\n'
SPEC_TOKEN = Token(text="Deep ", special=False, id=304)
SPEC_FINAL_LINE = (
    b'{"token": {"id": 29889, "text": "learning.", "log_prob": -0.5}, '
    b'"generated_text": "Deep learning.", "details": {"finish_reason": "length", '
    b'"generated_tokens": 2, "inputs": "What is Deep Learning?"}}\n'
)
SPEC_FINAL = [
    Token(text="learning.", special=False, id=29889),
    GenerationEnd(generated_text="Deep learning.", finish_reason="length", generated_tokens=2),
]


def decode(stream: bytes, **kwargs: Any) -> list[Any]:
    return decode_parts(LmiTokenDecoder, [stream], **kwargs)


def everywhere(stream: bytes, expected: list[Any]) -> None:
    assert_decodes_everywhere(LmiTokenDecoder, stream, expected)


# --- LMI's token lines --------------------------------------------------------------------------


def test_the_designs_token_line_is_a_token() -> None:
    everywhere(SPEC_TOKEN_LINE, [SPEC_TOKEN])


def test_the_designs_last_line_is_its_token_then_the_end() -> None:
    everywhere(SPEC_TOKEN_LINE + SPEC_FINAL_LINE, [SPEC_TOKEN, *SPEC_FINAL])


@pytest.mark.parametrize("key", ["log_prob", "logprob"], ids=["rolling-batch", "async-mode"])
def test_both_spellings_of_the_log_probability_are_taken(key: str) -> None:
    assert decode(json_line(lmi_token("a", logprob_key=key))) == [
        Token(text="a", special=False, id=1)
    ]


def test_the_async_modes_index_and_nulls_are_taken() -> None:
    line = json_line(lmi_token("a", token_id=7, index=3))
    assert b'"generated_text": null' in line
    assert decode(line) == [Token(text="a", special=False, id=7, index=3)]


def test_a_token_of_several_ids_has_no_one_id() -> None:
    assert decode(json_line(lmi_token("日本", token_id=[101, 102]))) == [
        Token(text="日本", special=False, id=None)
    ]


@pytest.mark.parametrize("key", ["special_token", "special"])
def test_special_tokens_are_flagged_so_they_never_reach_the_user(key: str) -> None:
    line = json.dumps({"token": {"id": 2, "text": "</s>", "log_prob": -1, key: True}})
    assert decode(line.encode() + b"\n") == [Token(text="</s>", special=True, id=2)]


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ("eos_token", "eos_token"),
        ("length", "length"),
        ("stop_sequence", "stop_sequence"),
        # The async mode speaks vLLM's words, without saying which stop it was.
        ("stop", "eos_token"),
    ],
)
def test_the_finish_reason_is_tgis(given: str, reason: str) -> None:
    events = decode(json_line(lmi_final("!", generated_text="Hi!", finish_reason=given)))
    assert events[-1] == GenerationEnd(
        generated_text="Hi!", finish_reason=reason, generated_tokens=3
    )


def test_the_async_modes_input_length_is_the_prompts_tokens() -> None:
    final = lmi_final("!", generated_text="Hi!", inputs=None, input_length=12)
    assert decode(json_line(final))[-1] == GenerationEnd(
        generated_text="Hi!", finish_reason="eos_token", generated_tokens=3, input_length=12
    )


def test_a_stop_token_id_for_a_finish_reason_is_the_end_of_the_text() -> None:
    final = lmi_final("!", generated_text="Hi!")
    final["details"]["finish_reason"] = 128009
    assert decode(json_line(final))[-1].finish_reason == "eos_token"


def test_a_last_line_without_details_ends_the_answer_without_a_reason() -> None:
    final = lmi_final("</s>", generated_text="Hi", finish_reason=None, special=True)
    assert "details" not in final
    assert decode(json_line(final)) == [
        Token(text="</s>", special=True, id=2),
        GenerationEnd(generated_text="Hi", finish_reason=None, generated_tokens=None),
    ]


def test_the_prompt_in_the_details_is_not_an_event() -> None:
    final = lmi_final("x", generated_text="x", inputs="a long prompt " * 100)
    assert decode(json_line(final))[-1] == GenerationEnd(
        generated_text="x", finish_reason="eos_token", generated_tokens=3
    )


# --- Failures -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (None, LmiError(message="LMI ended the answer with finish_reason 'error'", status=None)),
        ("CUDA out of memory", LmiError(message="CUDA out of memory", status=None)),
        (
            {"error_code": 400, "error_msg": "Input too long"},
            LmiError(message="Input too long", status=400),
        ),
    ],
    ids=["no-words", "a-string", "error-code-and-message"],
)
def test_a_failed_line_is_lmis_error(error: Any, expected: LmiError) -> None:
    stream = json_line(lmi_token("Once")) + json_line(lmi_failure(error))
    everywhere(stream, [Token(text="Once", special=False, id=1), expected])


def test_an_answer_vllm_aborted_is_a_failure_not_a_complete_answer() -> None:
    """djl-serving passes vLLM's `abort` on as the finish reason: the answer was cut off."""
    last = lmi_final(" upon", generated_text="Once upon", finish_reason="abort")
    stream = json_line(lmi_token("Once")) + json_line(last)
    aborted = LmiError(message="LMI ended the answer with finish_reason 'abort'", status=None)
    everywhere(stream, [Token(text="Once", special=False, id=1), aborted])


def test_an_error_before_any_text_is_the_only_event() -> None:
    decoder = LmiTokenDecoder()
    assert decoder.feed(json_line(lmi_failure("busy"))) == [LmiError(message="busy", status=None)]
    assert decoder.finished


@pytest.mark.parametrize(
    "line",
    [
        {"error": "Input parsing failed", "code": 424},
        {"code": 424, "message": "invoke handler failure", "error": "Input parsing failed"},
    ],
)
def test_lmis_error_objects_in_the_stream_are_errors(line: dict[str, Any]) -> None:
    assert decode(json_line(line)) == [LmiError(message="Input parsing failed", status=424)]


def test_vllms_error_passed_through_by_the_async_mode_is_lmis_error() -> None:
    line = {"error": {"message": "max_tokens too large", "type": "BadRequestError", "code": 400}}
    assert decode(json_line(lmi_token("a")) + json_line(line)) == [
        Token(text="a", special=False, id=1),
        LmiError(message="max_tokens too large", status=400),
    ]


def test_a_stream_that_ends_without_its_last_line_is_not_finished() -> None:
    decoder = LmiTokenDecoder()
    events = decoder.feed(SPEC_TOKEN_LINE * 3)
    events += decoder.close()
    assert events == [SPEC_TOKEN] * 3
    assert not decoder.finished


def test_finished_tracks_the_end_and_errors_only() -> None:
    decoder = LmiTokenDecoder()
    decoder.feed(SPEC_TOKEN_LINE)
    assert not decoder.finished
    decoder.feed(SPEC_FINAL_LINE)
    assert decoder.finished


# --- Framing: JSON lines, or SSE from LMI's SSE formatter ---------------------------------------


@pytest.mark.parametrize("prefix", [b"data: ", b"data:"])
def test_the_sse_formatters_events_decode_the_same(prefix: bytes) -> None:
    stream = (
        b": keep-alive\n\n"
        + prefix
        + SPEC_TOKEN_LINE.rstrip(b"\n")
        + b"\n\nevent: message\nid: 2\nretry: 10\n"
        + prefix
        + SPEC_FINAL_LINE.rstrip(b"\n")
        + b"\n\n"
    )
    everywhere(stream, [SPEC_TOKEN, *SPEC_FINAL])


@pytest.mark.parametrize("ending", ["\n", "\r\n", "\r", ""], ids=repr)
def test_the_last_line_is_decoded_however_the_stream_ends(ending: str) -> None:
    stream = SPEC_TOKEN_LINE + SPEC_FINAL_LINE.rstrip(b"\n") + ending.encode()
    everywhere(stream, [SPEC_TOKEN, *SPEC_FINAL])


def test_blank_lines_and_a_byte_order_mark_at_the_start_are_ignored() -> None:
    stream = b"\xef\xbb\xbf\n\n" + SPEC_TOKEN_LINE + b"\n  \n" + SPEC_FINAL_LINE
    everywhere(stream, [SPEC_TOKEN, *SPEC_FINAL])


def test_nothing_after_done_is_read() -> None:
    assert decode(SPEC_TOKEN_LINE + b"data: [DONE]\n\n" + SPEC_TOKEN_LINE + b"garbage\n") == [
        SPEC_TOKEN
    ]


def test_japanese_text_split_mid_character_decodes_whole() -> None:
    text = "こんにちは、世界"
    stream = json_line(lmi_token(text))
    start = stream.index("こ".encode())
    parts = split_at(stream, [start + 1, start + 2, start + 4])
    with pytest.raises(UnicodeDecodeError):
        parts[1].decode()
    assert decode_parts(LmiTokenDecoder, parts) == [Token(text=text, special=False, id=1)]
    everywhere(stream, [Token(text=text, special=False, id=1)])


# --- Memory and protocol errors ------------------------------------------------------------------


def test_memory_is_bounded_by_the_longest_line_not_by_the_answer() -> None:
    lines = [json_line(lmi_token("語", token_id=i)) for i in range(1, 2001)]
    longest = max(len(line) for line in lines) - 1
    stream = b"".join(lines)
    decoder = LmiTokenDecoder(max_line_bytes=longest)
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


def test_a_line_of_exactly_max_line_bytes_is_accepted_and_one_more_is_not() -> None:
    line = SPEC_TOKEN_LINE.rstrip(b"\n")
    assert decode(SPEC_TOKEN_LINE, max_line_bytes=len(line)) == [SPEC_TOKEN]
    assert decode_parts(LmiTokenDecoder, bytewise(SPEC_TOKEN_LINE), max_line_bytes=len(line)) == [
        SPEC_TOKEN
    ]
    with pytest.raises(StreamProtocolError, match=r"longer than max_line_bytes.*LMI token stream"):
        decode(SPEC_TOKEN_LINE, max_line_bytes=len(line) - 1)


def test_an_endless_line_is_rejected_before_buffering_past_the_limit() -> None:
    decoder = LmiTokenDecoder(max_line_bytes=64)
    with pytest.raises(StreamProtocolError, match="max_line_bytes=64"):
        decoder.feed(b"x" * 1_000_000)
    assert decoder.buffered_bytes == 0


BAD_LINES = {
    "not-json": (b"hello", "not JSON"),
    "truncated-json": (b'{"token":', "not JSON"),
    "array": (b"[1, 2]", "not a JSON object"),
    "neither-token-nor-error": (b'{"foo": 1}', "neither 'token' nor 'error'"),
    "openai-chunk": (
        b'{"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"OK"}}]}',
        "neither 'token' nor 'error'",
    ),
    "token-string": (b'{"token": "x"}', "'token' is not an object"),
    "text-number": (b'{"token": {"id": 1, "text": 5}}', "token.text"),
    "special-string": (b'{"token": {"id": 1, "text": "a", "special_token": "yes"}}', "special"),
    "id-string": (b'{"token": {"id": "1", "text": "a"}}', "token.id"),
    "id-list-of-strings": (b'{"token": {"id": ["1"], "text": "a"}}', "token.id"),
    "index-string": (b'{"index": "1", "token": {"id": 1, "text": "a"}}', "index"),
    "generated-text-number": (
        b'{"token": {"id": 1, "text": "a"}, "generated_text": 5}',
        "generated_text",
    ),
    "details-string": (b'{"token": {"id": 1, "text": "a"}, "details": "x"}', "details"),
    "finish-reason-list": (
        b'{"token": {"id": 1, "text": "a"}, "generated_text": "a",'
        b' "details": {"finish_reason": ["x"]}}',
        "finish_reason",
    ),
    "generated-tokens-string": (
        b'{"token": {"id": 1, "text": "a"}, "generated_text": "a",'
        b' "details": {"generated_tokens": "2"}}',
        "generated_tokens",
    ),
    "error-number": (b'{"error": 5}', "neither a string nor an object"),
    "error-msg-number": (b'{"error": {"error_code": 1, "error_msg": 2}}', "error_msg"),
    "error-object-without-message": (b'{"error": {"code": 400}}', "message"),
    "invalid-utf8": (b'{"token": {"id": 1, "text": "\xe3\x81"}}', "not valid UTF-8"),
    "invalid-utf8-comment": (b": \xff", "not valid UTF-8"),
    "deeply-nested": (b"[" * 200_000, "not JSON"),
}


@pytest.mark.parametrize("name", sorted(BAD_LINES))
def test_anything_but_an_lmi_token_line_is_a_protocol_error(name: str) -> None:
    line, message = BAD_LINES[name]
    with pytest.raises(StreamProtocolError, match=message):
        decode(line + b"\n")


def test_events_decoded_before_a_protocol_error_are_returned_first() -> None:
    decoder = LmiTokenDecoder()
    assert decoder.feed(SPEC_TOKEN_LINE + b"{oops\n" + SPEC_TOKEN_LINE) == [SPEC_TOKEN]
    with pytest.raises(StreamProtocolError, match="not JSON"):
        decoder.feed(SPEC_TOKEN_LINE)
    with pytest.raises(RuntimeError, match="already rejected"):
        decoder.feed(SPEC_TOKEN_LINE)
    assert decoder.close() == []


def test_close_raises_a_protocol_error_in_the_last_unterminated_line() -> None:
    decoder = LmiTokenDecoder()
    assert decoder.feed(SPEC_TOKEN_LINE + b'{"token": {') == [SPEC_TOKEN]
    with pytest.raises(StreamProtocolError, match="not JSON"):
        decoder.close()
    assert decoder.close() == []


def test_feed_after_close_is_an_error_and_close_twice_is_harmless() -> None:
    decoder = LmiTokenDecoder()
    assert decoder.feed(SPEC_TOKEN_LINE.rstrip(b"\n")) == []
    assert decoder.close() == [SPEC_TOKEN]
    assert decoder.close() == []
    with pytest.raises(RuntimeError, match="after close"):
        decoder.feed(SPEC_TOKEN_LINE)


@pytest.mark.parametrize("limit", [0, -1])
def test_max_line_bytes_must_be_positive(limit: int) -> None:
    with pytest.raises(ValueError, match="max_line_bytes"):
        LmiTokenDecoder(max_line_bytes=limit)


# --- Properties -----------------------------------------------------------------------------------

token_texts = st.one_of(
    st.text(max_size=6),
    st.sampled_from(
        ["", " time", "日本語", "😀", "👩‍💻", "\u2028", "\r\n", "data:", "{", "[DONE]"]
    ),
)


@st.composite
def lmi_streams(draw: st.DrawFn) -> tuple[bytes, list[Any], int]:
    """An LMI stream as the server could write it, the events it means, and its longest line."""
    framing = draw(st.sampled_from(["json-lines", "sse", "sse-no-space"]))
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    with_index = draw(st.booleans())
    tokens = draw(st.lists(st.tuples(token_texts, st.booleans()), max_size=10))
    ending = draw(st.sampled_from(["done", "no-details", "failed", "error-object", "cut"]))
    tail = draw(st.sampled_from(["newline", "nothing"]))

    objects: list[dict[str, Any]] = []
    expected: list[Any] = []
    for position, (text, special) in enumerate(tokens, 1):
        index = position if with_index else None
        objects.append(lmi_token(text, token_id=position, special=special, index=index))
        expected.append(Token(text=text, special=special, id=position, index=index))
    answer = "".join(e.text for e in expected if not e.special)
    if ending in ("done", "no-details"):
        with_details = ending == "done"
        final = lmi_final(
            "",
            generated_text=answer,
            finish_reason="length" if with_details else None,
            generated_tokens=len(tokens) + 1,
        )
        objects.append(final)
        expected.append(Token(text="", special=False, id=2))
        expected.append(
            GenerationEnd(
                generated_text=answer,
                finish_reason="length" if with_details else None,
                generated_tokens=len(tokens) + 1 if with_details else None,
            )
        )
    elif ending == "failed":
        objects.append(lmi_failure("Request failed: ✗"))
        expected.append(LmiError(message="Request failed: ✗", status=None))
    elif ending == "error-object":
        objects.append({"error": "invoke handler failure", "code": 424})
        expected.append(LmiError(message="invoke handler failure", status=424))
    payloads = [json.dumps(obj, ensure_ascii=False) for obj in objects]
    if framing == "json-lines":
        lines = payloads
    else:
        prefix = "data: " if framing == "sse" else "data:"
        lines = [line for payload in payloads for line in (prefix + payload, "")]
        if lines:
            lines.pop()
    stream = newline.join(lines) + (newline if tail == "newline" and lines else "")
    longest = max((len(line.encode()) for line in lines), default=0)
    return stream.encode(), expected, longest


@settings(max_examples=200)
@given(lmi_streams(), st.data())
def test_property_any_split_into_parts_decodes_to_the_same_events(
    generated: tuple[bytes, list[Any], int], data: st.DataObject
) -> None:
    stream, expected, _ = generated
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=24), label="cuts")
    assert decode_parts(LmiTokenDecoder, split_at(stream, cuts)) == decode(stream) == expected


@settings(max_examples=200)
@given(lmi_streams(), st.data())
def test_property_the_buffer_never_exceeds_the_longest_line(
    generated: tuple[bytes, list[Any], int], data: st.DataObject
) -> None:
    stream, _, longest = generated
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=24), label="cuts")
    assert_buffer_bounded(LmiTokenDecoder, split_at(stream, cuts), longest)


@settings(max_examples=100)
@given(lmi_streams(), st.data())
def test_property_events_before_garbage_do_not_depend_on_the_split(
    generated: tuple[bytes, list[Any], int], data: st.DataObject
) -> None:
    stream, expected, _ = generated
    bad = stream + b"\n{not json}\n" + SPEC_TOKEN_LINE
    cuts = data.draw(st.lists(st.integers(0, len(bad)), max_size=24), label="cuts")
    received, error = decode_until_refused(LmiTokenDecoder, split_at(bad, cuts))
    assert error is not None
    assert "not JSON" in str(error)
    assert received == expected


def test_sse_framing_is_the_same_stream_to_the_decoder() -> None:
    lines = [lmi_token("a"), lmi_final("b", generated_text="ab")]
    assert decode(b"".join(sse(line) for line in lines)) == decode(
        b"".join(json_line(line) for line in lines)
    )
