"""LMI's and vLLM's errors, in the stream and before it, as the caller gets them: the same answer
for the same meaning as TGI's (a refused request is a 422 with the engine's reason, an overloaded
model a 503 to retry, anything else a 502 whose reason stays in the log)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError
from streamer.engines import ENGINES_BY_NAME, LMI, TGI, VLLM, Engine
from streamer.errors import UpstreamError
from streamer.lmi_errors import LmiError
from streamer.lmi_errors import error_in_stream as lmi_error
from streamer.sagemaker_errors import translate_error
from streamer.vllm_errors import VllmError
from streamer.vllm_errors import error_in_stream as vllm_error

from tests.streamer.support import RETRY_AFTER_BUSY_SECONDS

# Words that may hold a server's internals: never in what the caller reads.
SECRET = "Traceback (most recent call last): File /opt/djl/secret.py, CUDA at 0x7f00"  # noqa: S105


def assert_is(error: UpstreamError, kind: str, status: int) -> None:
    assert (error.kind, error.status) == (kind, status)
    assert error.retry_after == (RETRY_AFTER_BUSY_SECONDS if status == 503 else None)
    assert error.message.endswith((".", "…"))
    assert "\n" not in error.message


# --- In the stream ------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 422])
def test_lmi_refusing_the_request_mid_stream_is_a_422_with_its_reason(status: int) -> None:
    error = lmi_error(LmiError(message="Input too long: 5000 tokens", status=status))
    assert_is(error, "validation", 422)
    assert "Input too long: 5000 tokens" in error.message


@pytest.mark.parametrize("status", [429, 503])
def test_lmi_overloaded_mid_stream_is_a_503_to_retry(status: int) -> None:
    assert_is(lmi_error(LmiError(message="queue full", status=status)), "overloaded", 503)


@pytest.mark.parametrize("status", [424, 500, None])
def test_other_lmi_failures_are_502s_whose_words_stay_in_the_log(status: int | None) -> None:
    error = lmi_error(LmiError(message=SECRET, status=status))
    assert_is(error, "model_error", 502)
    assert "secret" not in error.message
    assert SECRET in (error.detail or "")
    assert "LMI" in error.message


@pytest.mark.parametrize(
    "error",
    [
        VllmError(message="max_tokens is too large", error_type="BadRequestError", status=400),
        VllmError(message="max_tokens is too large", error_type=None, status=422),
        # A type that says so, without a status.
        VllmError(message="max_tokens is too large", error_type="BadRequestError", status=None),
    ],
)
def test_vllm_refusing_the_request_mid_stream_is_a_422_with_its_reason(error: VllmError) -> None:
    translated = vllm_error(error)
    assert_is(translated, "validation", 422)
    assert "max_tokens is too large" in translated.message


def test_vllm_overloaded_mid_stream_is_a_503_to_retry() -> None:
    error = VllmError(message="busy", error_type="ServiceUnavailableError", status=503)
    assert_is(vllm_error(error), "overloaded", 503)


@pytest.mark.parametrize("error_type", ["InternalServerError", None, "not an identifier!"])
def test_other_vllm_failures_are_502s_whose_words_stay_in_the_log(error_type: str | None) -> None:
    error = vllm_error(VllmError(message=SECRET, error_type=error_type, status=500))
    assert_is(error, "model_error", 502)
    assert "secret" not in error.message
    assert "!" not in error.message
    assert SECRET in (error.detail or "")


# --- Before the stream: SageMaker's ModelError carrying the container's answer --------------------


def model_error(status: int, original: str) -> ClientError:
    """SageMaker's 424 for a container that answered `status` with the body `original`."""
    return ClientError(
        {
            "Error": {"Code": "ModelError", "Message": f"Received error ({status}) from primary"},
            "OriginalStatusCode": status,
            "OriginalMessage": original,
        },
        "InvokeEndpointWithResponseStream",
    )


def read_by(engine: Engine, status: int, original: str) -> UpstreamError:
    return translate_error(model_error(status, original), model_error=engine.model_error)


LMI_BEFORE_THE_STREAM = [
    # DJL Serving's own refusal of a body it cannot read.
    (400, {"code": 400, "type": "BadRequestException", "message": "Invalid JSON"}, "validation"),
    # LMI's async mode: vLLM's refusal, as LMI writes any error.
    (400, {"error": "max_tokens must be at least 1", "code": 400}, "validation"),
    (422, "Unprocessable request: messages", "validation"),
    (429, "Too Many Requests", "overloaded"),
    (503, {"code": 503, "message": "Model is not ready"}, "overloaded"),
    # "invoke handler failure": LMI's 424 for whatever went wrong in the handler.
    (
        424,
        {"code": 424, "message": "invoke handler failure", "error": "Input parsing failed"},
        "model_error",
    ),
    (424, {"error": "Input parsing failed: bad", "code": 424}, "model_error"),
    (500, SECRET, "model_error"),
]
VLLM_BEFORE_THE_STREAM = [
    (
        400,
        {"error": {"message": "prompt is too long", "type": "BadRequestError", "code": 400}},
        "validation",
    ),
    (
        400,
        {
            "object": "error",
            "message": "prompt is too long",
            "type": "BadRequestError",
            "code": 400,
        },
        "validation",
    ),
    # FastAPI refusing a body: one entry per field.
    (
        422,
        {"detail": [{"loc": ["body", "messages"], "msg": "Field required", "type": "missing"}]},
        "validation",
    ),
    (429, "Too Many Requests", "overloaded"),
    (
        503,
        {"error": {"message": "engine is loading", "type": "ServiceUnavailableError", "code": 503}},
        "overloaded",
    ),
    (
        500,
        {"error": {"message": "EngineDeadError", "type": "InternalServerError", "code": 500}},
        "model_error",
    ),
    (404, {"detail": "Not Found"}, "model_error"),
    (500, SECRET, "model_error"),
]
_STATUS = {"validation": 422, "overloaded": 503, "model_error": 502}


def _text(original: Any) -> str:
    return original if isinstance(original, str) else json.dumps(original)


@pytest.mark.parametrize(("status", "original", "kind"), LMI_BEFORE_THE_STREAM)
def test_lmis_answers_before_the_stream(status: int, original: Any, kind: str) -> None:
    error = read_by(LMI, status, _text(original))
    assert_is(error, kind, _STATUS[kind])
    assert "secret" not in error.message


@pytest.mark.parametrize(("status", "original", "kind"), VLLM_BEFORE_THE_STREAM)
def test_vllms_answers_before_the_stream(status: int, original: Any, kind: str) -> None:
    error = read_by(VLLM, status, _text(original))
    assert_is(error, kind, _STATUS[kind])
    assert "secret" not in error.message


@pytest.mark.parametrize(
    ("engine", "original", "reason"),
    [
        (
            LMI,
            {"error": "max_tokens must be at least 1", "code": 400},
            "max_tokens must be at least 1",
        ),
        (LMI, {"code": 400, "message": "Invalid JSON"}, "Invalid JSON"),
        (
            VLLM,
            {"error": {"message": "prompt is too long", "type": "BadRequestError", "code": 400}},
            "prompt is too long",
        ),
        (
            VLLM,
            {"detail": [{"loc": ["body", "messages"], "msg": "Field required"}]},
            "body.messages: Field required",
        ),
    ],
)
def test_a_refused_request_says_what_the_engine_said(
    engine: Engine, original: dict[str, Any], reason: str
) -> None:
    error = read_by(engine, 400, json.dumps(original))
    assert error.message == f"The model rejected the request: {reason}."


def test_a_failure_before_the_stream_shows_the_engines_json_reason_and_status_only() -> None:
    lmi = read_by(LMI, 424, json.dumps({"error": "Input parsing failed", "code": 424}))
    assert (
        lmi.message
        == "The model failed before answering (it returned HTTP 424): Input parsing failed."
    )
    vllm = read_by(VLLM, 500, SECRET)
    assert vllm.message == "The model failed before answering (it returned HTTP 500)."
    assert SECRET in (vllm.detail or "")


def test_each_engine_reads_only_its_own_shapes() -> None:
    """TGI's `error_type` means nothing to vLLM, whose status then decides."""
    original = json.dumps({"error": "Model is overloaded", "error_type": "overloaded"})
    assert read_by(TGI, 424, original).kind == "overloaded"
    assert read_by(VLLM, 424, original).kind == "model_error"


@pytest.mark.parametrize("engine", list(ENGINES_BY_NAME.values()), ids=list(ENGINES_BY_NAME))
@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("ThrottlingException", "throttled"),
        ("ServiceUnavailable", "unavailable"),
        ("InternalFailure", "upstream_error"),
        ("ModelStreamError", "upstream_error"),
    ],
)
def test_sagemakers_own_errors_mean_the_same_whatever_the_engine(
    engine: Engine, code: str, kind: str
) -> None:
    error = ClientError({"Error": {"Code": code, "Message": "m"}}, "Op")
    assert translate_error(error, model_error=engine.model_error).kind == kind
