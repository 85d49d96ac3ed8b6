"""What the relay reads from the Web Adapter's context header: the invocation's deadline."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from streamer.invocation import seconds_left_from

NOW = 1_767_225_600.0  # epoch seconds; any fixed instant will do


def context(**fields: object) -> dict[str, str]:
    return {"x-amzn-lambda-context": json.dumps(fields)}


def test_the_deadline_is_epoch_milliseconds() -> None:
    headers = context(request_id="r1", deadline=int(NOW * 1000) + 12_500)
    assert seconds_left_from(headers, now=NOW) == pytest.approx(12.5)


def test_deadline_ms_is_read_too() -> None:
    headers = context(request_id="r1", deadline_ms=int(NOW * 1000) + 3_000)
    assert seconds_left_from(headers, now=NOW) == pytest.approx(3.0)


def test_deadline_wins_over_deadline_ms() -> None:
    millis = int(NOW * 1000)
    headers = context(deadline=millis + 1_000, deadline_ms=millis + 9_000)
    assert seconds_left_from(headers, now=NOW) == pytest.approx(1.0)


def test_a_passed_deadline_is_negative_time_left() -> None:
    headers = context(deadline=int(NOW * 1000) - 2_000)
    assert seconds_left_from(headers, now=NOW) == pytest.approx(-2.0)


def test_no_header_means_no_deadline() -> None:
    assert seconds_left_from({}, now=NOW) is None
    assert seconds_left_from({"x-amzn-request-context": '{"deadline": 5}'}, now=NOW) is None


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "not json",
        "[1700000000000]",
        json.dumps({"request_id": "r1"}),
        json.dumps({"deadline": "1700000000000"}),
        json.dumps({"deadline": True}),
        json.dumps({"deadline": None}),
        json.dumps({"deadline": 0}),
        json.dumps({"deadline": -5}),
        json.dumps({"deadline": [1]}),
        json.dumps({"deadline": 1, "padding": "x" * 20_000}),
        "[" * 5000 + "]" * 5000,
    ],
)
def test_an_unusable_header_means_no_deadline(raw: str) -> None:
    assert seconds_left_from({"x-amzn-lambda-context": raw}, now=NOW) is None


@settings(max_examples=200)
@given(st.text(max_size=200))
def test_any_header_value_gives_a_number_or_none(raw: str) -> None:
    left = seconds_left_from({"x-amzn-lambda-context": raw}, now=NOW)
    assert left is None or isinstance(left, float)


@pytest.mark.parametrize(
    "deadline",
    ["9" * 400, "1e400", "-1e400", "NaN", "Infinity", "4" * 4000],
)
def test_a_deadline_no_float_can_hold_means_no_deadline(deadline: str) -> None:
    """A 400-digit integer once raised OverflowError here, and the request ended in a 500."""
    raw = '{"request_id": "r1", "deadline": ' + deadline + "}"
    assert seconds_left_from({"x-amzn-lambda-context": raw}, now=NOW) is None


@settings(max_examples=300)
@given(
    st.one_of(
        st.integers(),
        st.floats(allow_nan=True, allow_infinity=True),
        st.booleans(),
        st.none(),
        st.text(max_size=20),
    )
)
def test_any_json_deadline_gives_a_finite_number_or_none(deadline: object) -> None:
    raw = json.dumps({"deadline": deadline})
    left = seconds_left_from({"x-amzn-lambda-context": raw}, now=NOW)
    assert left is None or (isinstance(left, float) and math.isfinite(left))
