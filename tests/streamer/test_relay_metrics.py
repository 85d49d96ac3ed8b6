"""The relay's metrics: embedded metric format in the request's log line, checked as CloudWatch
would read it (every metric and dimension named in `_aws` has its value at the line's root)."""

from __future__ import annotations

from typing import Any

from relay_support import (
    CapturedLog,
    ScriptedUpstream,
    answer_events,
    call,
    error_event,
    make_app,
    token_event,
)
from streamer.observability import MetricsContext, RequestRecord, request_metrics

SETTINGS = {"model_id": "huggingface-llm-mistral-7b-instruct", "environment_name": "dev"}
BASE_DIMENSIONS = [["Environment", "Model"]]


def _line(log: CapturedLog) -> dict[str, Any]:
    (line,) = log.request_lines()
    return line


def _directives(line: dict[str, Any]) -> list[dict[str, Any]]:
    """The EMF directives, after checking the document is one CloudWatch accepts."""
    aws = line["_aws"]
    assert isinstance(aws["Timestamp"], int)
    directives = aws["CloudWatchMetrics"]
    for directive in directives:
        assert directive["Namespace"] == "jumpstream"
        for dimension_set in directive["Dimensions"]:
            assert 1 <= len(dimension_set) <= 30
            for dimension in dimension_set:
                assert isinstance(line[dimension], str)
        for metric in directive["Metrics"]:
            assert isinstance(line[metric["Name"]], list)
            assert all(isinstance(value, float) for value in line[metric["Name"]])
    return directives


def _names(directive: dict[str, Any]) -> dict[str, str]:
    return {metric["Name"]: metric["Unit"] for metric in directive["Metrics"]}


def test_a_streamed_answer_reports_its_latency_and_throughput() -> None:
    log = CapturedLog()
    response = call(
        make_app(ScriptedUpstream(answer_events(["a", "b", "c"])), log, **SETTINGS),
        json_body={"inputs": "x"},
    )
    assert response.status_code == 200
    line = _line(log)
    (directive,) = _directives(line)
    assert directive["Dimensions"] == BASE_DIMENSIONS
    assert (line["Environment"], line["Model"]) == ("dev", "huggingface-llm-mistral-7b-instruct")
    assert _names(directive) == {
        "Requests": "Count",
        "TimeToFirstToken": "Milliseconds",
        "InterTokenLatencyP50": "Milliseconds",
        "InterTokenLatencyP99": "Milliseconds",
        "TokensPerSecond": "Count/Second",
        "OutputTokens": "Count",
    }
    assert line["Requests"] == [1.0]
    assert line["OutputTokens"] == [4.0]  # TGI's count: three texts and the EOS
    assert line["TimeToFirstToken"][0] == line["time_to_first_token_ms"]


def test_an_error_after_text_is_counted_by_type_and_in_total() -> None:
    log = CapturedLog()
    script = [token_event("a"), error_event("boom", "generation")]
    call(make_app(ScriptedUpstream(script), log, **SETTINGS), json_body={"inputs": "x"})
    line = _line(log)
    figures, errors = _directives(line)
    assert "TimeToFirstToken" in _names(figures)
    assert _names(errors) == {"Errors": "Count"}
    assert errors["Dimensions"] == [["Environment", "Model"], ["Environment", "Model", "ErrorType"]]
    assert (line["ErrorType"], line["Errors"]) == ("model_error", [1.0])


def test_a_refusal_before_sagemaker_is_counted_as_refused() -> None:
    log = CapturedLog()
    response = call(make_app(ScriptedUpstream(), log, **SETTINGS), json_body={"inputs": ""})
    assert response.status_code == 422
    line = _line(log)
    figures, refused = _directives(line)
    assert _names(figures) == {"Requests": "Count"}
    assert _names(refused) == {"Refused": "Count"}
    assert line["ErrorType"] == "invalid_request"


def test_requests_that_generate_nothing_have_no_metrics() -> None:
    log = CapturedLog()
    call(make_app(ScriptedUpstream(), log, **SETTINGS), "GET", "/health")
    assert "_aws" not in _line(log)


def test_gaps_are_nearest_rank_percentiles_of_what_was_observed() -> None:
    record = RequestRecord(request_id="r", method="POST", path="/", started=0.0)
    record.first_text_at = 0.5
    record.text_times = [0.5, 0.51, 0.53, 0.56, 1.56]  # gaps of 10, 20, 30 and 1000 ms
    record.client_disconnected = True
    context = MetricsContext(namespace="jumpstream", environment="dev", model="m")
    document = request_metrics(record, context)
    assert document["InterTokenLatencyP50"] == [20.0]
    assert document["InterTokenLatencyP99"] == [1000.0]
    assert document["TokensPerSecond"] == [3.8]  # 4 gaps in 1.06 s
    assert document["ClientDisconnects"] == [1.0]
    assert document["TimeToFirstToken"] == [500.0]
