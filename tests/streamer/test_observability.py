"""Request ids, the one log line per request, the last line of defence, and the metrics in it:
embedded metric format checked as CloudWatch would read it (every metric and dimension named
in `_aws` has its value at the line's root).
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
from streamer.engines import TGI
from streamer.errors import UpstreamError
from streamer.observability import MetricsContext, RequestRecord, make_logger, request_metrics
from streamer.sagemaker_errors import translate_error

from tests.streamer.support import (
    PROMPT,
    CapturedLog,
    ScriptedUpstream,
    answer_events,
    call,
    client_error,
    error_body,
    error_event,
    make_app,
    token_event,
)

# --- Request ids ----------------------------------------------------------------------------------


def test_the_lambda_request_id_comes_first() -> None:
    deadline_ms = int((time.time() + 600) * 1000)
    headers = {
        "x-amzn-lambda-context": json.dumps({"request_id": "lambda-123", "deadline": deadline_ms}),
        "x-amzn-request-context": json.dumps({"requestId": "url-456"}),
    }
    response = call(
        make_app(ScriptedUpstream(answer_events(["a"]))), json_body=PROMPT, headers=headers
    )
    assert response.headers["x-request-id"] == "lambda-123"


def test_the_function_urls_request_id_is_next() -> None:
    headers = {"x-amzn-request-context": json.dumps({"requestId": "url-456", "http": {}})}
    response = call(make_app(ScriptedUpstream()), "GET", "/health", headers=headers)
    assert response.headers["x-request-id"] == "url-456"


@pytest.mark.parametrize(
    "context",
    ["not json", "[]", json.dumps({"request_id": 5}), json.dumps({"request_id": "a\r\nb"}), ""],
)
def test_unusable_contexts_get_a_fresh_uuid(context: str) -> None:
    response = call(
        make_app(ScriptedUpstream()),
        "GET",
        "/health",
        headers={"x-amzn-lambda-context": context},
    )
    assert uuid.UUID(response.headers["x-request-id"]).version == 4


def test_every_kind_of_response_carries_a_request_id() -> None:
    app = make_app(ScriptedUpstream(answer_events(["a"])))
    responses = [
        call(app, json_body=PROMPT),
        call(app, json_body=PROMPT, headers={"accept": "text/event-stream"}),
        call(app, json_body={"inputs": ""}),
        call(app, "GET", "/health"),
        call(app, "GET", "/missing"),
        call(app, "GET", "/"),
        call(app, json_body=PROMPT, headers={"accept": "application/json"}),
        call(make_app(ScriptedUpstream(), max_body_bytes=10), json_body=PROMPT),
        call(make_app(ScriptedUpstream(open_error=RuntimeError("bug"))), json_body=PROMPT),
        call(
            make_app(ScriptedUpstream(open_error=UpstreamError(kind="throttled", message="m."))),
            json_body=PROMPT,
        ),
    ]
    assert {response.status_code for response in responses} == {
        200,
        422,
        404,
        405,
        406,
        413,
        500,
        503,
    }
    ids = [response.headers["x-request-id"] for response in responses]
    assert all(ids)
    assert len(set(ids)) == len(ids)


# --- The last line of defence ---------------------------------------------------------------------


def test_an_unexpected_exception_is_a_json_500_and_logged() -> None:
    log = CapturedLog()
    upstream = ScriptedUpstream(open_error=RuntimeError("secret internal detail"))
    response = call(make_app(upstream, log), json_body=PROMPT)
    assert response.status_code == 500
    assert error_body(response)["type"] == "internal_error"
    assert "secret" not in response.text
    assert "Traceback" not in response.text
    errors = [line for line in log.lines() if line["level"] == "ERROR"]
    assert errors
    assert "secret internal detail" in errors[0]["exception"]
    (request_line,) = log.request_lines()
    assert (request_line["status"], request_line["error_type"]) == (500, "internal_error")


# --- The log line ---------------------------------------------------------------------------------


def test_one_log_line_per_request_with_what_happened() -> None:
    log = CapturedLog()
    app = make_app(ScriptedUpstream(answer_events(["a", "b"])), log)
    headers = {
        "accept": "text/event-stream",
        "x-amzn-lambda-context": json.dumps({"request_id": "req-1"}),
    }
    call(app, json_body={"inputs": "secret prompt"}, headers=headers)
    (line,) = log.request_lines()
    assert line["service"].startswith("relay-test-")
    assert line["request_id"] == "req-1"
    assert (line["method"], line["path"], line["status"]) == ("POST", "/", 200)
    assert line["format"] == "text/event-stream"
    assert line["tokens"] == 2
    assert line["generated_tokens"] == 3
    assert line["finish_reason"] == "eos_token"
    assert line["time_to_first_token_ms"] >= 0
    assert line["duration_ms"] >= line["time_to_first_token_ms"]
    assert line["client_disconnected"] is False
    assert line["prompt_chars"] == len("secret prompt")
    assert "secret prompt" not in log.stream.getvalue()


def test_prompts_are_logged_only_when_asked() -> None:
    log = CapturedLog()
    app = make_app(ScriptedUpstream(answer_events(["a"])), log, log_prompts=True)
    call(app, json_body={"inputs": "log me"})
    assert log.request_lines()[0]["prompt"] == "log me"


def test_errors_are_logged_with_their_type_and_detail() -> None:
    log = CapturedLog()
    upstream = ScriptedUpstream(
        open_error=translate_error(
            client_error("ValidationError", "Endpoint x not found."), model_error=TGI.model_error
        )
    )
    call(make_app(upstream, log), json_body=PROMPT)
    (line,) = log.request_lines()
    assert (line["status"], line["error_type"]) == (502, "upstream_error")
    assert "Endpoint x not found." in line["error_detail"]


def test_each_request_logs_its_own_id() -> None:
    log = CapturedLog()
    app = make_app(ScriptedUpstream(), log)
    for request_id in ("first", "second"):
        context = json.dumps({"request_id": request_id})
        call(app, "GET", "/health", headers={"x-amzn-lambda-context": context})
    assert [line["request_id"] for line in log.request_lines()] == ["first", "second"]


# --- Metrics, in the log line ---------------------------------------------------------------------


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


def test_one_requests_metrics_never_reach_the_next() -> None:
    """The same context's documents, one after the other: each has only its own request's."""
    context = MetricsContext(namespace="jumpstream", environment="dev", model="m")
    failed = RequestRecord(request_id="a", method="POST", path="/", started=0.0)
    failed.status, failed.error_type = 502, "upstream_error"
    failed_document = request_metrics(failed, context)
    kept = json.dumps(failed_document)
    ok = RequestRecord(request_id="b", method="POST", path="/", started=0.0)
    ok.first_text_at, ok.text_times, ok.tokens = 0.5, [0.5], 1
    ok_document = request_metrics(ok, context)
    assert json.dumps(failed_document) == kept
    assert (failed_document["Errors"], failed_document["ErrorType"]) == ([1.0], "upstream_error")
    assert "ErrorType" not in ok_document
    assert "Errors" not in ok_document
    assert ok_document["Requests"] == [1.0]
    ((directive,),) = [ok_document["_aws"]["CloudWatchMetrics"]]
    assert directive["Dimensions"] == [["Environment", "Model"]]


def test_the_relays_log_line_is_the_json_powertools_writes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Written by orjson: compact, UTF-8 as it is, anything else as its str; an integer orjson
    cannot write still gets its line."""
    logger = make_logger(f"relay-test-{uuid.uuid4().hex}")
    logger.info("request finished", extra={"prompt": '東京 "quoted"', "tokens": 3, "other": {1}})
    logger.info("request finished", extra={"generated_tokens": 2**70})
    first, second = capsys.readouterr().out.splitlines()
    assert '"prompt":"東京 \\"quoted\\""' in first
    assert (json.loads(first)["tokens"], json.loads(first)["other"]) == (3, "{1}")
    assert json.loads(second)["generated_tokens"] == 2**70


@pytest.mark.parametrize(
    ("message", "logged"),
    [
        ('{"event": "a document"}', {"event": "a document"}),  # as Powertools logs one
        ("[1, 2]", [1, 2]),
        ("request finished", "request finished"),
        ("{not json", "{not json"),  # Powertools keeps what does not parse
        # Not tried: text, not the document Powertools would have made of it (null would even
        # have lost the message).
        ("null", "null"),
        ("42", "42"),
    ],
)
def test_a_message_is_logged_as_a_document_only_if_it_is_an_object_or_array(
    capsys: pytest.CaptureFixture[str], message: str, logged: object
) -> None:
    logger = make_logger(f"relay-test-{uuid.uuid4().hex}")
    logger.info(message)
    (line,) = capsys.readouterr().out.splitlines()
    assert json.loads(line)["message"] == logged
