"""SageMaker runtime's HTTP errors, spelled so that botocore parses them as AWS's own.

Why this shape: sagemaker-runtime is a rest-json service. botocore takes the error code from the
``x-amzn-ErrorType`` header (the part before ``:``), the message from the body's ``message`` or
``Message``, and fills modelled members (``OriginalStatusCode``, ``OriginalMessage``,
``LogStreamArn`` for ``ModelError``) from the body by their shape names. The wording of the
messages follows what SageMaker is known to answer; the account id is a placeholder.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.responses import Response

ACCOUNT_ID = "000000000000"
REGION = "us-east-1"
_CORAL = "http://internal.amazon.com/coral/"


@dataclass(frozen=True, slots=True, kw_only=True)
class SageMakerError:
    """One error answer: code, HTTP status, message and any modelled members."""

    code: str
    status: int
    message: str
    namespace: str = "com.amazon.coral.service/"
    members: Mapping[str, Any] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        # Coral writes the generic message in lowercase; modelled members use shape names.
        if self.members:
            return {"Message": self.message, **self.members}
        return {"message": self.message}

    def response(self, request_id: str) -> Response:
        return Response(
            content=json.dumps(self.body()).encode("utf-8"),
            status_code=self.status,
            media_type="application/json",
            headers={
                "x-amzn-RequestId": request_id,
                "x-amzn-ErrorType": f"{self.code}:{_CORAL}{self.namespace}",
            },
        )


def _validation(message: str) -> SageMakerError:
    return SageMakerError(
        code="ValidationError",
        status=400,
        message=message,
        namespace="com.amazon.coral.validate/",
    )


def endpoint_not_found(endpoint_name: str) -> SageMakerError:
    return _validation(f"Endpoint {endpoint_name} of account {ACCOUNT_ID} not found.")


def inference_component_required() -> SageMakerError:
    return _validation(
        "Inference Component Name header is required for endpoints to which you plan to deploy "
        "inference components. Please include Inference Component Name header or consider "
        "using SageMaker models."
    )


def inference_component_not_found(component: str, endpoint_name: str) -> SageMakerError:
    return _validation(
        f"Inference Component {component} not found for endpoint {endpoint_name} "
        f"of account {ACCOUNT_ID}."
    )


def no_capacity() -> SageMakerError:
    return _validation(
        "Inference Component has no capacity to process this request. ApplicationAutoScaling "
        "may be in-progress (if configured) or try to increase the capacity by invoking "
        "UpdateInferenceComponentRuntimeConfig API."
    )


def emulator_usage(message: str) -> SageMakerError:
    """A request the emulator cannot honour (a malformed directive): not an AWS error."""
    return _validation(f"jumpstream emulator: {message}")


def throttling() -> SageMakerError:
    return SageMakerError(
        code="ThrottlingException",
        status=400,
        message="Rate exceeded",
        namespace="com.amazon.coral.availability/",
    )


def service_unavailable() -> SageMakerError:
    return SageMakerError(
        code="ServiceUnavailable",
        status=503,
        message="The service is unavailable. Try your call again.",
    )


def internal_failure() -> SageMakerError:
    return SageMakerError(
        code="InternalFailure",
        status=500,
        message="An internal failure occurred. Try your call again.",
    )


def model_error(endpoint_name: str, original_status: int, original_message: str) -> SageMakerError:
    """What SageMaker answers when the container itself answered with an HTTP error (status 0:
    it gave no HTTP answer at all, which SageMaker calls a server error too)."""
    kind = "client" if 400 <= original_status < 500 else "server"
    log_group = f"/aws/sagemaker/Endpoints/{endpoint_name}"
    console = (
        f"https://{REGION}.console.aws.amazon.com/cloudwatch/home?region={REGION}"
        f"#logEventViewer:group={log_group}"
    )
    return SageMakerError(
        code="ModelError",
        status=424,
        message=(
            f"Received {kind} error ({original_status}) from primary with message "
            f'"{original_message}". See {console} in account {ACCOUNT_ID} for more information.'
        ),
        namespace="com.amazon.sagemaker/",
        members={
            "OriginalStatusCode": original_status,
            "OriginalMessage": original_message,
            "LogStreamArn": f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:{log_group}",
        },
    )


def missing_authentication() -> SageMakerError:
    """An unsigned request: AWS answers before the service sees it."""
    return SageMakerError(
        code="MissingAuthenticationTokenException",
        status=403,
        message="Missing Authentication Token",
    )


def wrong_signing_scope() -> SageMakerError:
    """A SigV4 signature made for another service than SageMaker's."""
    return SageMakerError(
        code="InvalidSignatureException",
        status=403,
        message="Credential should be scoped to correct service: 'sagemaker'.",
    )
