"""Tests for the sans-I/O TGI stream decoder.

They prove the facts of TGI's token stream as SageMaker delivers it (events, framing, arbitrary
``PayloadPart`` boundaries) and that none of the bugs public parsers of this stream have had
is present here. Each input is fed whole, byte by byte and split at every position, as h11's
tests do, and hypothesis checks that any split of a generated stream gives the same events.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from streamer.decoder import (
    Event,
    GenerationEnd,
    StreamDecoder,
    StreamProtocolError,
    TgiError,
    Token,
)

from tests.streamer import decoding
from tests.streamer.decoding import bytewise, decode_until_refused, split_at

# The spec's own examples, verbatim.
SPEC_TOKEN_EVENT = (
    b'data: {"index":1,"token":{"id":1014,"text":" time","logprob":-0.10,"special":false},'
    b'"generated_text":null,"details":null}\n\n'
)
SPEC_ERROR_EVENT = (
    b'data: {"error":"Input validation error: `inputs` tokens + `max_new_tokens` must be <= 2048.'
    b' Given: ...","error_type":"validation"}\n\n'
)
SPEC_ERROR_MESSAGE = (
    "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 2048. Given: ..."
)
KEEP_ALIVE = b":\n\n"
SPEC_TOKEN = Token(text=" time", special=False, id=1014, index=1)
SPEC_ERROR = TgiError(message=SPEC_ERROR_MESSAGE, error_type="validation")

TGI_ERROR_TYPES = [
    "generation",
    "overloaded",
    "validation",
    "incomplete_generation",
    "incomplete_generation_stream",
    "template_error",
    "missing_template_variable",
    "tool_error",
    "stream_serialization_error",
]


# --- helpers -------------------------------------------------------------------------------


def encode(obj: Any, *, prefix: str = "data: ", end: str = "\n\n") -> bytes:
    """One SSE event as TGI writes it: compact JSON, raw UTF-8 (no \\u escapes)."""
    payload = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    return f"{prefix}{payload}{end}".encode()


def token_obj(
    text: str,
    *,
    token_id: int = 1,
    index: int | None = None,
    special: bool = False,
    generated_text: str | None = None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "token": {"id": token_id, "text": text, "logprob": -0.25, "special": special},
        "generated_text": generated_text,
        "details": details,
    }
    if index is not None:
        obj = {"index": index, **obj}
    return obj


def decode_parts(parts: Iterable[bytes], **kwargs: Any) -> list[Event]:
    return decoding.decode_parts(StreamDecoder, parts, **kwargs)


def decode(stream: bytes, **kwargs: Any) -> list[Event]:
    return decode_parts([stream], **kwargs)


def assert_decodes_everywhere(stream: bytes, expected: Sequence[Event]) -> None:
    """Whole, one byte per part, and cut in two at every position: always the same events."""
    decoding.assert_decodes_everywhere(StreamDecoder, stream, expected)


def visible_text(events: Iterable[Event]) -> str:
    return "".join(e.text for e in events if isinstance(e, Token) and not e.special)


# --- section 1: TGI's token stream ------------------------------------------------------------


def test_spec_token_event_decodes_to_a_token_with_id_and_index() -> None:
    assert_decodes_everywhere(SPEC_TOKEN_EVENT, [SPEC_TOKEN])


def test_spec_final_event_with_details_emits_the_token_then_done() -> None:
    stream = (
        b'data: {"index":2,"token":{"id":29889,"text":".","logprob":-0.5,"special":false},'
        b'"generated_text":"Once upon a time.","details":{"finish_reason":"length",'
        b'"generated_tokens":2,"seed":null,"input_length":7}}\n\n'
    )
    assert_decodes_everywhere(
        stream,
        [
            Token(text=".", special=False, id=29889, index=2),
            GenerationEnd(
                generated_text="Once upon a time.",
                finish_reason="length",
                generated_tokens=2,
                input_length=7,
            ),
        ],
    )


@pytest.mark.parametrize("finish_reason", ["length", "eos_token", "stop_sequence"])
@pytest.mark.parametrize(
    "extra_details",
    [{"seed": None}, {"seed": 42}, {"seed": 42, "input_length": 12}],
    ids=["seed-null", "seed", "input_length-since-2.3"],
)
def test_final_event_details_give_finish_reason_generated_tokens_and_input_length(
    finish_reason: str, extra_details: dict[str, Any]
) -> None:
    details = {"finish_reason": finish_reason, "generated_tokens": 7, **extra_details}
    stream = encode(token_obj("!", generated_text="Hi!", details=details))
    assert decode(stream) == [
        Token(text="!", special=False, id=1),
        GenerationEnd(
            generated_text="Hi!",
            finish_reason=finish_reason,
            generated_tokens=7,
            input_length=extra_details.get("input_length"),
        ),
    ]


@pytest.mark.parametrize("details", ["null", "absent"])
def test_final_event_without_details_has_no_finish_reason_or_count(details: str) -> None:
    obj = token_obj("</s>", special=True, generated_text="Hello")
    if details == "absent":
        del obj["details"]
    assert decode(encode(obj)) == [
        Token(text="</s>", special=True, id=1),
        GenerationEnd(generated_text="Hello", finish_reason=None, generated_tokens=None),
    ]


def test_final_event_details_fields_may_be_missing() -> None:
    stream = encode(token_obj("x", generated_text="x", details={"seed": 1}))
    assert decode(stream)[-1] == GenerationEnd(
        generated_text="x", finish_reason=None, generated_tokens=None
    )


def test_generated_text_with_the_prompt_is_passed_through_unchanged() -> None:
    """return_full_text (the SageMaker default for S3 models) puts the prompt in front."""
    stream = encode(token_obj(" there", generated_text="Hi there", details=None))
    assert decode(stream)[-1] == GenerationEnd(
        generated_text="Hi there", finish_reason=None, generated_tokens=None
    )


def test_token_without_index_from_tgi_before_1_4_has_index_none() -> None:
    stream = (
        b'data:{"token":{"id":5,"text":"a","logprob":-1.0,"special":false},'
        b'"generated_text":null,"details":null}\n\n'
    )
    assert decode(stream) == [Token(text="a", special=False, id=5, index=None)]


def test_token_without_id_has_id_none() -> None:
    stream = b'data: {"token":{"text":"a","special":false}}\n\n'
    assert decode(stream) == [Token(text="a", special=False, id=None, index=None)]


def test_top_tokens_and_logprob_are_ignored() -> None:
    obj = token_obj("Paris", token_id=3681, index=4)
    obj["top_tokens"] = [
        {"id": 3681, "text": "Paris", "logprob": -0.01, "special": False},
        {"id": 5, "text": " the", "logprob": -4.2, "special": False},
    ]
    assert decode(encode(obj)) == [Token(text="Paris", special=False, id=3681, index=4)]


def test_empty_token_text_held_back_by_tgi_is_an_empty_token() -> None:
    """TGI sends "" for a token ending mid-character, then the whole character later."""
    stream = encode(token_obj("", index=1)) + encode(token_obj("日", index=2))
    assert decode(stream) == [
        Token(text="", special=False, id=1, index=1),
        Token(text="日", special=False, id=1, index=2),
    ]


@pytest.mark.parametrize("special", ["</s>", "<|endoftext|>"])
def test_special_tokens_are_flagged_so_they_never_reach_the_user(special: str) -> None:
    stream = (
        encode(token_obj("Hello", index=1))
        + encode(token_obj(" world", index=2))
        + encode(
            token_obj(special, index=3, special=True, generated_text="Hello world", details=None)
        )
    )
    events = decode(stream)
    assert events[2] == Token(text=special, special=True, id=1, index=3)
    assert visible_text(events) == "Hello world"
    assert special not in visible_text(events)


def test_spec_error_event_with_backticks_is_a_stream_error() -> None:
    assert_decodes_everywhere(SPEC_ERROR_EVENT, [SPEC_ERROR])


@pytest.mark.parametrize("error_type", TGI_ERROR_TYPES)
def test_every_tgi_error_type_is_kept(error_type: str) -> None:
    stream = encode({"error": "it failed", "error_type": error_type})
    assert decode(stream) == [TgiError(message="it failed", error_type=error_type)]


def test_error_without_error_type_has_error_type_none() -> None:
    assert decode(b'data: {"error":"boom"}\n\n') == [TgiError(message="boom", error_type=None)]


@pytest.mark.parametrize(
    ("status", "error_type"),
    [(422, "validation"), (424, "generation"), (429, "overloaded"), (500, None), (None, None)],
)
def test_nested_error_object_of_tgi_2_4_1_maps_its_status_to_an_error_type(
    status: int | None, error_type: str | None
) -> None:
    error: dict[str, Any] = {"message": "Template error: bad"}
    if status is not None:
        error["http_status_code"] = status
    assert decode(encode({"error": error})) == [
        TgiError(message="Template error: bad", error_type=error_type)
    ]


def test_nested_error_followed_by_done_marker_is_one_stream_error() -> None:
    stream = (
        encode(token_obj("a"))
        + b'data: {"error":{"message":"Input validation error: too long","http_status_code":422}}'
        b"\n\ndata: [DONE]\n\n"
    )
    decoder = StreamDecoder()
    events = decoder.feed(stream) + decoder.close()
    assert events == [
        Token(text="a", special=False, id=1),
        TgiError(message="Input validation error: too long", error_type="validation"),
    ]
    assert decoder.finished


@pytest.mark.parametrize("prefix", [b"data:", b"data: "], ids=["tgi-2.0-no-space", "tgi-2.1"])
def test_both_data_spacings_decode_the_same(prefix: bytes) -> None:
    stream = SPEC_TOKEN_EVENT.replace(b"data: ", prefix, 1)
    assert_decodes_everywhere(stream, [SPEC_TOKEN])


@pytest.mark.parametrize("prefix", [b"data:", b"data: "])
def test_done_marker_with_either_spacing_is_ignored(prefix: bytes) -> None:
    assert decode(SPEC_TOKEN_EVENT + prefix + b"[DONE]\n\n") == [SPEC_TOKEN]


def test_spec_keep_alive_comments_are_ignored() -> None:
    """A queued request or long prefill gets `:` keep-alives before and between events."""
    stream = KEEP_ALIVE * 3 + SPEC_TOKEN_EVENT + KEEP_ALIVE + SPEC_ERROR_EVENT
    assert_decodes_everywhere(stream, [SPEC_TOKEN, SPEC_ERROR])


def test_a_stream_of_only_keep_alives_has_no_events_and_is_not_finished() -> None:
    decoder = StreamDecoder()
    assert decoder.feed(KEEP_ALIVE * 4) == []
    assert decoder.close() == []
    assert not decoder.finished


def test_comments_with_text_are_ignored() -> None:
    assert decode(b": ping\n:data: {oops\n" + SPEC_TOKEN_EVENT) == [SPEC_TOKEN]


def test_event_id_retry_and_unknown_fields_are_ignored() -> None:
    stream = (
        b"event: message\nid: 7\nretry: 3000\nfoo: bar\nevent\n"
        + SPEC_TOKEN_EVENT
        + b"id: 8\n\nevent: error\n\n"
    )
    assert decode(stream) == [SPEC_TOKEN]


def test_an_event_dispatches_only_at_its_blank_line() -> None:
    decoder = StreamDecoder()
    line, blank = SPEC_TOKEN_EVENT[:-1], SPEC_TOKEN_EVENT[-1:]
    assert decoder.feed(line) == []
    assert decoder.feed(blank) == [SPEC_TOKEN]


def test_data_lines_of_one_event_are_joined_with_a_newline() -> None:
    """JSON allows a newline between tokens, so the SSE join yields a valid object."""
    stream = (
        b'data: {"token": {"id": 9,\ndata:"text": "x",\ndata: "special": false}}\n\n'
        b'data\ndata: {"error": "e"}\n\n'  # `data` with no colon is the field with value ""
    )
    assert decode(stream) == [
        Token(text="x", special=False, id=9),
        TgiError(message="e", error_type=None),
    ]


def test_data_lines_are_joined_by_a_newline_not_concatenated() -> None:
    """Concatenated, these two lines would read as token id 12; with the newline it's not JSON."""
    stream = b'data: {"token":{"id":1\ndata:2,"text":"a","special":false}}\n\n'
    with pytest.raises(StreamProtocolError, match="not JSON"):
        decode(stream)


@pytest.mark.parametrize("empty", [b"data:\n\n", b"data: \n\n", b"data\n\n"])
def test_empty_data_is_ignored(empty: bytes) -> None:
    assert decode(empty + SPEC_TOKEN_EVENT + empty) == [SPEC_TOKEN]


def test_only_one_space_after_the_colon_is_removed() -> None:
    """`data:  [DONE]` carries " [DONE]", which is not the end marker (nor JSON)."""
    assert decode(SPEC_TOKEN_EVENT.replace(b"data: ", b"data:  ")) == [SPEC_TOKEN]
    assert decode(SPEC_TOKEN_EVENT.replace(b"data: ", b"data:\t")) == [SPEC_TOKEN]
    with pytest.raises(StreamProtocolError, match="not JSON"):
        decode(b"data:  [DONE]\n\n")


@pytest.mark.parametrize(
    "field", [b"ata:", b"tad:", b"d:", b"a:", b":data:", b" data:", b"Data:", b"DATA:", b"datas:"]
)
def test_the_data_prefix_is_a_field_name_not_a_character_set(field: bytes) -> None:
    """`lstrip("data:")` would turn each of these lines into an event; SSE ignores them all."""
    stream = SPEC_TOKEN_EVENT.replace(b"data: ", field, 1)
    assert decode(stream) == []


@pytest.mark.parametrize("text", ["/n", "n", "Bun", "data:", "data: x", "\\n", "::"])
def test_token_text_that_looks_like_framing_is_kept_intact(text: str) -> None:
    """`rstrip("/n")` or `lstrip("data:")` would eat these characters."""
    assert decode(encode(token_obj(text))) == [Token(text=text, special=False, id=1)]


@pytest.mark.parametrize("text", ["\u2028", "\u2029", "\x85", "a\x0bb", "x\x0cy", "\x1c\x1d\x1e"])
def test_unicode_line_separators_in_token_text_do_not_split_lines(text: str) -> None:
    """Lines split at \\r and \\n bytes only: str.splitlines() would break these events."""
    stream = encode(token_obj(text))
    assert_decodes_everywhere(stream, [Token(text=text, special=False, id=1)])


def test_a_byte_order_mark_at_the_start_of_the_stream_is_ignored() -> None:
    assert_decodes_everywhere(b"\xef\xbb\xbf" + SPEC_TOKEN_EVENT, [SPEC_TOKEN])


def test_a_byte_order_mark_later_in_the_stream_is_not_ignored() -> None:
    assert decode(SPEC_TOKEN_EVENT + b"\xef\xbb\xbf" + SPEC_ERROR_EVENT) == [SPEC_TOKEN]


# --- end of stream ----------------------------------------------------------------------------


FINAL_LINE = encode(token_obj("</s>", special=True, generated_text="Hi", details=None), end="")
FINAL_EVENTS = [
    Token(text="</s>", special=True, id=1),
    GenerationEnd(generated_text="Hi", finish_reason=None, generated_tokens=None),
]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("ending", ["\n\n", "\r\n\r\n", "\r\r", "\n", "\r\n", "\r", ""], ids=repr)
def test_the_final_event_is_decoded_however_the_stream_ends(ending: str) -> None:
    """No final blank line, or no final newline at all: close() still yields the event."""
    stream = encode(token_obj("Hi")) + FINAL_LINE + ending.encode()
    decoder = StreamDecoder()
    events = decoder.feed(stream)
    events += decoder.close()
    assert events == [Token(text="Hi", special=False, id=1), *FINAL_EVENTS]
    assert decoder.finished


@pytest.mark.timeout(30)
def test_close_without_final_newline_terminates_for_every_split() -> None:
    """The bug this guards against is an infinite loop; the timeout turns it into a failure."""
    assert_decodes_everywhere(FINAL_LINE, FINAL_EVENTS)


def test_finished_tracks_done_and_errors_only() -> None:
    decoder = StreamDecoder()
    assert not decoder.finished
    decoder.feed(SPEC_TOKEN_EVENT + KEEP_ALIVE)
    assert not decoder.finished
    decoder.feed(FINAL_LINE + b"\n\n")
    assert decoder.finished

    failed = StreamDecoder()
    failed.feed(SPEC_ERROR_EVENT)
    assert failed.finished


# --- section 3: PayloadPart boundaries --------------------------------------------------------


def test_one_part_may_hold_several_events() -> None:
    decoder = StreamDecoder()
    events = decoder.feed(SPEC_TOKEN_EVENT + KEEP_ALIVE + SPEC_TOKEN_EVENT + FINAL_LINE + b"\n\n")
    assert events == [SPEC_TOKEN, SPEC_TOKEN, *FINAL_EVENTS]


def test_one_event_may_span_several_parts() -> None:
    decoder = StreamDecoder()
    thirds = split_at(SPEC_TOKEN_EVENT, [10, 60])
    assert decoder.feed(thirds[0]) == []
    assert decoder.feed(thirds[1]) == []
    assert decoder.feed(thirds[2]) == [SPEC_TOKEN]


def test_spec_japanese_text_split_mid_character_decodes_whole() -> None:
    """Raw UTF-8 bytes cut inside a character: decoding each part alone would fail."""
    text = "こんにちは、世界"
    stream = encode(token_obj(text, index=1))
    assert "こ".encode() in stream  # raw multi-byte UTF-8, not \\u escapes
    start = stream.index("こ".encode())
    parts = split_at(stream, [start + 1, start + 2, start + 4])
    with pytest.raises(UnicodeDecodeError):
        parts[0].decode()
    with pytest.raises(UnicodeDecodeError):
        parts[1].decode()
    expected = [Token(text=text, special=False, id=1, index=1)]
    assert decode_parts(parts) == expected
    assert_decodes_everywhere(stream, expected)


def test_emoji_and_combined_characters_split_anywhere_decode_whole() -> None:
    text = "😀👩‍💻🇯🇵é"
    assert_decodes_everywhere(encode(token_obj(text)), [Token(text=text, special=False, id=1)])


EXAMPLE_STREAMS: dict[str, tuple[bytes, list[Event]]] = {
    "tgi-2.0-answer": (
        encode(token_obj("日本", index=1), prefix="data:")
        + KEEP_ALIVE
        + encode(token_obj("語", index=2), prefix="data:")
        + encode(
            token_obj(
                "</s>",
                index=3,
                special=True,
                generated_text="日本語",
                details={"finish_reason": "eos_token", "generated_tokens": 3, "seed": None},
            ),
            prefix="data:",
        ),
        [
            Token(text="日本", special=False, id=1, index=1),
            Token(text="語", special=False, id=1, index=2),
            Token(text="</s>", special=True, id=1, index=3),
            GenerationEnd(generated_text="日本語", finish_reason="eos_token", generated_tokens=3),
        ],
    ),
    "crlf-error-mid-stream": (
        encode(token_obj("a"), end="\r\n\r\n") + SPEC_ERROR_EVENT.replace(b"\n", b"\r\n"),
        [Token(text="a", special=False, id=1), SPEC_ERROR],
    ),
    "lone-cr": (
        encode(token_obj("🙂"), end="\r\r") + b":\r\r" + encode(token_obj("x"), end="\r"),
        [Token(text="🙂", special=False, id=1), Token(text="x", special=False, id=1)],
    ),
}


@pytest.mark.parametrize("name", sorted(EXAMPLE_STREAMS))
def test_examples_decode_the_same_whole_bytewise_and_split_anywhere(name: str) -> None:
    stream, expected = EXAMPLE_STREAMS[name]
    assert_decodes_everywhere(stream, expected)


# --- section 4: bugs public parsers have had --------------------------------------------------


def test_mixed_line_ends_and_extra_blank_lines_lose_no_byte() -> None:
    """Advancing by len(line) + 1 skips a byte after \\r\\n or between unevenly spaced events."""
    stream = (
        b":\r\n\r\n"
        + encode(token_obj("a", index=1), end="\r\n\r\n")
        + encode(token_obj("b", index=2), end="\n\n\n\n")
        + encode(token_obj("c", index=3), end="\r\r\n")
        + encode(token_obj("d", index=4), end="\n\r")
        + encode(token_obj("e", index=5), end="\r\n\n")
    )
    expected = [Token(text=t, special=False, id=1, index=i) for i, t in enumerate("abcde", 1)]
    assert_decodes_everywhere(stream, expected)


@pytest.mark.parametrize("middle", [b"", b"\r", b"\r\n"], ids=["nothing", "cr", "crlf"])
def test_a_crlf_cut_between_its_bytes_is_one_line_end(middle: bytes) -> None:
    """`data...\\r` | `\\n` is one line end, not a line end and a blank line (nor vice versa)."""
    line = SPEC_TOKEN_EVENT[:-2]
    decoder = StreamDecoder()
    assert decoder.feed(line + b"\r") == []
    assert decoder.feed(b"") == []
    events = decoder.feed(b"\n" + middle)
    # "\r\n" alone ends the data line only; a further "\r" or "\r\n" is the blank line.
    assert events == ([SPEC_TOKEN] if middle else [])
    assert decoder.feed(b"\n") == ([] if middle else [SPEC_TOKEN])


def test_memory_is_bounded_by_the_longest_line_not_by_the_answer() -> None:
    """Never-trimmed buffers grow with the answer; this stream is 2,000 lines long."""
    events = [encode(token_obj("語", token_id=i, index=i)) for i in range(1, 2001)]
    longest = max(len(e) for e in events) - 2  # minus "\n\n"
    stream = b"".join(events)
    decoder = StreamDecoder(max_line_bytes=longest)
    decoded: list[Event] = []
    high_water = 0
    for part in split_at(stream, range(37, len(stream), 37)):
        decoded += decoder.feed(part)
        high_water = max(high_water, decoder.buffered_bytes)
    decoded += decoder.close()
    assert len(stream) > 1000 * longest
    assert len(decoded) == 2000
    assert decoded[-1] == Token(text="語", special=False, id=2000, index=2000)
    assert 0 < high_water <= longest
    assert decoder.buffered_bytes == 0


def test_buffer_is_empty_between_events() -> None:
    decoder = StreamDecoder()
    decoder.feed(SPEC_TOKEN_EVENT * 50)
    assert decoder.buffered_bytes == 0


def test_a_line_of_exactly_max_line_bytes_is_accepted() -> None:
    line = SPEC_TOKEN_EVENT[:-2]
    assert decode(SPEC_TOKEN_EVENT, max_line_bytes=len(line)) == [SPEC_TOKEN]
    assert decode_parts(bytewise(SPEC_TOKEN_EVENT), max_line_bytes=len(line)) == [SPEC_TOKEN]


def test_a_line_longer_than_max_line_bytes_is_rejected() -> None:
    line = SPEC_TOKEN_EVENT[:-2]
    with pytest.raises(StreamProtocolError, match="longer than max_line_bytes"):
        decode(SPEC_TOKEN_EVENT, max_line_bytes=len(line) - 1)


def test_an_endless_line_is_rejected_before_buffering_past_the_limit() -> None:
    decoder = StreamDecoder(max_line_bytes=64)
    with pytest.raises(StreamProtocolError, match="max_line_bytes=64"):
        decoder.feed(b"x" * 1_000_000)
    assert decoder.buffered_bytes == 0

    bytewise_decoder = StreamDecoder(max_line_bytes=64)
    for _ in range(64):
        assert bytewise_decoder.feed(b"x") == []
    assert bytewise_decoder.buffered_bytes == 64
    with pytest.raises(StreamProtocolError):
        bytewise_decoder.feed(b"x")
    assert bytewise_decoder.buffered_bytes == 64


def test_an_event_whose_data_lines_together_exceed_the_limit_is_rejected() -> None:
    decoder = StreamDecoder(max_line_bytes=100)
    assert decoder.feed(b"data: " + b"1" * 40 + b"\n") == []
    with pytest.raises(StreamProtocolError, match="event's data"):
        decoder.feed((b"data: " + b"1" * 40 + b"\n") * 2)


def test_error_event_is_a_stream_error_not_a_key_error() -> None:
    """Parsers doing event["token"] crash with KeyError: 'token' on TGI's error events."""
    decoder = StreamDecoder()
    events = decoder.feed(SPEC_TOKEN_EVENT + SPEC_ERROR_EVENT)
    assert events == [SPEC_TOKEN, SPEC_ERROR]
    assert decoder.finished


def test_a_mid_stream_error_is_reported_after_the_tokens_before_it() -> None:
    """Swallowing it would make the answer stop and look complete."""
    stream = encode(token_obj("Once", index=1)) + encode(token_obj(" upon", index=2))
    stream += encode(
        {"error": "Request failed during generation: CUDA OOM", "error_type": "generation"}
    )
    events = decode(stream)
    assert visible_text(events) == "Once upon"
    assert events[-1] == TgiError(
        message="Request failed during generation: CUDA OOM", error_type="generation"
    )


def test_a_stream_cut_off_before_its_final_event_is_not_finished() -> None:
    decoder = StreamDecoder()
    events = decoder.feed(SPEC_TOKEN_EVENT * 3)
    events += decoder.close()
    assert events == [SPEC_TOKEN] * 3
    assert not decoder.finished


# --- protocol errors --------------------------------------------------------------------------


BAD_PAYLOADS = {
    "truncated-json": (b'{"token":', "not JSON"),
    "not-json": (b"hello", "not JSON"),
    "whitespace-only": (b" ", "not JSON"),
    "array": (b"[1, 2]", "not a JSON object"),
    "string": (b'"x"', "not a JSON object"),
    "number": (b"42", "not a JSON object"),
    "null": (b"null", "not a JSON object"),
    "neither-token-nor-error": (b'{"foo": 1}', "neither 'token' nor 'error'"),
    "error-null-without-token": (b'{"error": null}', "neither 'token' nor 'error'"),
    "messages-api-chunk": (
        b'{"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"OK"}}]}',
        "neither 'token' nor 'error'",
    ),
    "token-string": (b'{"token": "x"}', "'token' is not an object"),
    "token-null": (b'{"token": null}', "'token' is not an object"),
    "text-number": (b'{"token": {"id": 1, "text": 5, "special": false}}', "token.text"),
    "text-missing": (b'{"token": {"id": 1, "special": false}}', "token.text"),
    "special-string": (b'{"token": {"id": 1, "text": "a", "special": "false"}}', "token.special"),
    "special-number": (b'{"token": {"id": 1, "text": "a", "special": 0}}', "token.special"),
    "special-missing": (b'{"token": {"id": 1, "text": "a"}}', "token.special"),
    "id-string": (b'{"token": {"id": "1", "text": "a", "special": false}}', "token.id"),
    "id-bool": (b'{"token": {"id": true, "text": "a", "special": false}}', "token.id"),
    "id-float": (b'{"token": {"id": 1.5, "text": "a", "special": false}}', "token.id"),
    "index-string": (
        b'{"index": "1", "token": {"id": 1, "text": "a", "special": false}}',
        "index",
    ),
    "generated-text-number": (
        b'{"token": {"id": 1, "text": "a", "special": false}, "generated_text": 5}',
        "generated_text",
    ),
    "details-string": (
        b'{"token": {"id": 1, "text": "a", "special": false}, "generated_text": "a",'
        b' "details": "x"}',
        "details is not an object",
    ),
    "finish-reason-number": (
        b'{"token": {"id": 1, "text": "a", "special": false}, "generated_text": "a",'
        b' "details": {"finish_reason": 1}}',
        "details.finish_reason",
    ),
    "generated-tokens-string": (
        b'{"token": {"id": 1, "text": "a", "special": false}, "generated_text": "a",'
        b' "details": {"generated_tokens": "2"}}',
        "details.generated_tokens",
    ),
    "error-number": (b'{"error": 5}', "neither a string nor an object"),
    "error-list": (b'{"error": ["x"]}', "neither a string nor an object"),
    "error-type-number": (b'{"error": "x", "error_type": 5}', "error_type"),
    "error-message-missing": (b'{"error": {"http_status_code": 422}}', "error.message"),
    "error-message-number": (b'{"error": {"message": 1}}', "error.message"),
    "error-status-string": (
        b'{"error": {"message": "m", "http_status_code": "422"}}',
        "error.http_status_code",
    ),
    "deeply-nested-json": (b"[" * 200_000, "not JSON"),
}


@pytest.mark.parametrize("name", sorted(BAD_PAYLOADS))
def test_anything_but_a_tgi_event_is_a_protocol_error(name: str) -> None:
    payload, message = BAD_PAYLOADS[name]
    with pytest.raises(StreamProtocolError, match=message):
        decode(b"data: " + payload + b"\n\n")


def test_protocol_errors_are_value_errors() -> None:
    with pytest.raises(ValueError, match="not JSON"):
        decode(b"data: {\n\n")


def test_a_long_bad_payload_is_quoted_only_in_part() -> None:
    with pytest.raises(StreamProtocolError) as caught:
        decode(b'data: {"foo": "' + b"z" * 10_000 + b'"}\n\n')
    assert "zzzz" in str(caught.value)
    assert len(str(caught.value)) < 500


@pytest.mark.parametrize(
    "line",
    [
        b"data: \xff\xfe",
        b'data: {"token":{"text":"\xe3\x81","special":false}}',  # truncated character
        b": keep-alive \xc3",
        b"\xed\xa0\x80: surrogate",
    ],
)
def test_invalid_utf8_in_a_line_is_a_protocol_error(line: bytes) -> None:
    with pytest.raises(StreamProtocolError, match="not valid UTF-8"):
        decode(line + b"\n\n")


def test_events_decoded_before_a_protocol_error_are_returned_first() -> None:
    decoder = StreamDecoder()
    assert decoder.feed(SPEC_TOKEN_EVENT + b"data: {oops\n\n" + SPEC_TOKEN_EVENT) == [SPEC_TOKEN]
    with pytest.raises(StreamProtocolError, match="not JSON"):
        decoder.feed(SPEC_TOKEN_EVENT)
    with pytest.raises(RuntimeError):
        decoder.feed(SPEC_TOKEN_EVENT)
    assert decoder.close() == []


def test_close_raises_a_protocol_error_held_back_by_feed() -> None:
    decoder = StreamDecoder()
    assert decoder.feed(b"x" * 100) == []
    assert decoder.feed(b"\n\n" + SPEC_TOKEN_EVENT + b"data: 1\n\n") == [SPEC_TOKEN]
    with pytest.raises(StreamProtocolError, match="not a JSON object"):
        decoder.close()
    assert decoder.close() == []


def test_close_raises_a_protocol_error_in_the_last_event() -> None:
    decoder = StreamDecoder()
    assert decoder.feed(SPEC_TOKEN_EVENT + b"data: {oops") == [SPEC_TOKEN]
    with pytest.raises(StreamProtocolError, match="not JSON"):
        decoder.close()
    assert decoder.close() == []


# --- misuse -----------------------------------------------------------------------------------


def test_feed_after_close_is_an_error() -> None:
    decoder = StreamDecoder()
    decoder.close()
    with pytest.raises(RuntimeError, match="after close"):
        decoder.feed(SPEC_TOKEN_EVENT)


def test_close_twice_is_harmless() -> None:
    decoder = StreamDecoder()
    decoder.feed(SPEC_TOKEN_EVENT[:-2])
    assert decoder.close() == [SPEC_TOKEN]
    assert decoder.close() == []


def test_feed_after_a_protocol_error_is_an_error() -> None:
    decoder = StreamDecoder()
    with pytest.raises(StreamProtocolError):
        decoder.feed(b"data: nope\n\n")
    with pytest.raises(RuntimeError, match="already rejected"):
        decoder.feed(SPEC_TOKEN_EVENT)
    assert decoder.close() == []


@pytest.mark.parametrize("limit", [0, -1])
def test_max_line_bytes_must_be_positive(limit: int) -> None:
    with pytest.raises(ValueError, match="max_line_bytes"):
        StreamDecoder(max_line_bytes=limit)


# --- properties -------------------------------------------------------------------------------

SPECIAL_TEXTS = ["</s>", "<|endoftext|>", "<|im_end|>"]
token_texts = st.one_of(
    st.text(max_size=6),
    st.sampled_from(["", " time", "日本語", "こんにちは", "😀", "👩‍💻", "\u2028", "\r\n", "data:"]),
)


@st.composite
def tgi_streams(draw: st.DrawFn) -> tuple[bytes, list[Event], int]:
    """A TGI stream as the server could write it, the events it means, and its longest line."""
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    prefix = draw(st.sampled_from(["data:", "data: "]))
    with_index = draw(st.booleans())
    tokens = draw(st.lists(st.tuples(token_texts, st.booleans(), st.integers(0, 2)), max_size=10))
    ending = draw(st.sampled_from(["done", "done-details", "error", "nested-error", "cut"]))
    tail = draw(st.sampled_from(["blank-line", "newline", "nothing"]))

    lines: list[str] = []
    expected: list[Event] = []
    payloads: list[dict[str, Any]] = []
    for position, (text, special, keep_alives) in enumerate(tokens, 1):
        if special:
            text = SPECIAL_TEXTS[position % len(SPECIAL_TEXTS)]
        index = position if with_index else None
        payloads.append(token_obj(text, token_id=position, index=index, special=special))
        expected.append(Token(text=text, special=special, id=position, index=index))
        lines += [":", ""] * keep_alives
        lines += [prefix + json.dumps(payloads[-1], ensure_ascii=False), ""]
    answer = "".join(e.text for e in expected if isinstance(e, Token) and not e.special)
    final: list[dict[str, Any] | str] = []
    if ending.startswith("done") and payloads:
        payloads[-1]["generated_text"] = answer
        if ending == "done-details":
            payloads[-1]["details"] = {
                "finish_reason": "length",
                "generated_tokens": len(payloads),
                "seed": None,
            }
            expected.append(
                GenerationEnd(
                    generated_text=answer, finish_reason="length", generated_tokens=len(payloads)
                )
            )
        else:
            expected.append(
                GenerationEnd(generated_text=answer, finish_reason=None, generated_tokens=None)
            )
        lines[-2] = prefix + json.dumps(payloads[-1], ensure_ascii=False)
    elif ending == "error":
        final = [{"error": "Request failed during generation: ✗", "error_type": "generation"}]
        expected.append(
            TgiError(message="Request failed during generation: ✗", error_type="generation")
        )
    elif ending == "nested-error":
        final = [{"error": {"message": "Overloaded", "http_status_code": 429}}, "[DONE]"]
        expected.append(TgiError(message="Overloaded", error_type="overloaded"))
    for payload in final:
        data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
        lines += [prefix + data, ""]
    if tail != "blank-line" and lines:
        lines.pop()  # the final blank line
    stream = newline.join(lines) + (newline if tail != "nothing" and lines else "")
    longest = max((len(line.encode()) for line in lines), default=0)
    return stream.encode(), expected, longest


@settings(max_examples=200)
@given(tgi_streams())
def test_property_a_generated_stream_decodes_to_its_events(
    generated: tuple[bytes, list[Event], int],
) -> None:
    stream, expected, _ = generated
    assert decode(stream) == expected


@settings(max_examples=200)
@given(tgi_streams(), st.data())
def test_property_any_split_into_parts_decodes_to_the_same_events(
    generated: tuple[bytes, list[Event], int], data: st.DataObject
) -> None:
    stream, expected, _ = generated
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=24), label="cuts")
    assert decode_parts(split_at(stream, cuts)) == decode(stream) == expected


@settings(max_examples=200)
@given(tgi_streams(), st.data())
def test_property_the_buffer_never_exceeds_the_longest_line(
    generated: tuple[bytes, list[Event], int], data: st.DataObject
) -> None:
    stream, _, longest = generated
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=24), label="cuts")
    decoding.assert_buffer_bounded(StreamDecoder, split_at(stream, cuts), longest)


@settings(max_examples=100)
@given(tgi_streams(), st.data())
def test_property_events_before_a_protocol_error_do_not_depend_on_the_split(
    generated: tuple[bytes, list[Event], int], data: st.DataObject
) -> None:
    stream, expected, _ = generated
    valid = stream + b"\n\n"  # make sure the last event is complete before the garbage
    bad = valid + b"data: {not json}\n\n" + SPEC_TOKEN_EVENT
    cuts = data.draw(st.lists(st.integers(0, len(bad)), max_size=24), label="cuts")
    received, error = decode_until_refused(StreamDecoder, split_at(bad, cuts))
    assert error is not None
    assert "not JSON" in str(error)
    assert received == expected
