"""The streaming relay: a Lambda function URL that streams a SageMaker endpoint's tokens.

Python cannot stream from Lambda's managed handler, so the function runs an ordinary ASGI server
(lambda/streamer, started by run.sh) behind the AWS Lambda Web Adapter layer, and the URL is in
RESPONSE_STREAM mode. Everything the caller can reach is the URL; everything the function can
reach is one endpoint.
"""

from __future__ import annotations

import math
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct
from streamer.contract import (
    LAMBDA_MAX_TIMEOUT_SECONDS,
    MAX_NEW_TOKENS_LIMIT,
    METRIC_NAMESPACE,
    SERVICE_NAME,
    UPSTREAM_READ_TIMEOUT_SECONDS,
    function_environment,
)

from stacks.availability import Availability, load_availability
from stacks.bundling import bundled_code
from stacks.errors import ConfigError

STREAMER_SOURCE = Path(__file__).resolve().parent.parent / "lambda" / "streamer"

# Sizing: the slowest model we host (Falcon 180B) generates ~10 tokens/s per request; the function
# must outlive the longest allowed answer plus queueing and prefill, within Lambda's limit.
WORST_CASE_TOKENS_PER_SECOND = 10
STARTUP_AND_PREFILL_SECONDS = 60


def function_timeout_seconds(max_new_tokens_limit: int) -> int:
    needed = STARTUP_AND_PREFILL_SECONDS + math.ceil(
        max_new_tokens_limit / WORST_CASE_TOKENS_PER_SECOND
    )
    return min(LAMBDA_MAX_TIMEOUT_SECONDS, needed)


class StreamingRelay(Construct):
    """Function, function URL, log group and a role that may invoke one endpoint and nothing else.

    `auth_type` NONE makes the URL public and adds a synth warning; `grant_invoke_url()` gives a
    caller both permissions a function URL call needs, and `invoker_arns` does the same for
    principals outside this app (as a resource policy on the function).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint_name: str,
        endpoint_arn: str,
        model_id: str,
        environment_name: str = "default",
        prompt_template: str | None = None,
        max_new_tokens_limit: int = MAX_NEW_TOKENS_LIMIT.default,
        reserved_concurrency: int | None = None,
        auth_type: str = "AWS_IAM",
        cors_allow_origins: tuple[str, ...] = (),
        memory_mb: int = 512,
        invoker_arns: tuple[str, ...] = (),
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
        inference_component_name: str | None = None,
        inference_component_arn: str | None = None,
        code: lambda_.Code | None = None,
        availability: Availability | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        if (inference_component_name is None) != (inference_component_arn is None):
            raise ConfigError("an inference component needs both its name and its ARN")
        region = cdk.Stack.of(self).region
        platform = availability or load_availability()
        problem = platform.relay_unavailable_reason(region)
        if problem:
            raise ConfigError(
                f"the streaming relay cannot be deployed: {problem}; set relay.enabled = false "
                "to deploy the endpoint alone"
            )
        architecture = lambda_.Architecture.ARM_64
        timeout = function_timeout_seconds(max_new_tokens_limit)
        self.timeout_seconds = timeout

        self.log_group = logs.LogGroup(
            self, "Logs", retention=log_retention, removal_policy=cdk.RemovalPolicy.DESTROY
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"jumpstream relay: invoke SageMaker endpoint {endpoint_name} only",
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="InvokeOneEndpoint",
                # The API reference authorizes InvokeEndpointWithResponseStream with
                # sagemaker:InvokeEndpoint; IAM also lists the streaming action. Both, on this
                # endpoint's ARN only, and on its one inference component when the call names
                # it (IAM then authorizes the component's ARN too).
                actions=["sagemaker:InvokeEndpoint", "sagemaker:InvokeEndpointWithResponseStream"],
                resources=[
                    endpoint_arn,
                    *([inference_component_arn] if inference_component_arn else []),
                ],
            )
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="WriteOwnLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            )
        )

        # The Web Adapter runs run.sh, which starts uvicorn, and streams its response; the
        # relay's own settings are lambda/streamer/streamer/settings.py's. The metrics'
        # namespace and environment are what the alarms and the dashboard read.
        environment = function_environment(
            endpoint_name=endpoint_name,
            model_id=model_id,
            inference_component_name=inference_component_name or None,
            # The catalog's chat layout for this model: the relay renders `messages` with it.
            prompt_template=prompt_template or None,
            max_new_tokens_limit=max_new_tokens_limit,
            upstream_read_timeout_seconds=UPSTREAM_READ_TIMEOUT_SECONDS.default,
            service_name=SERVICE_NAME,
            metrics_namespace=METRIC_NAMESPACE,
            environment_name=environment_name,
            web_adapter=True,
        )

        self.function = lambda_.Function(
            self,
            "Function",
            runtime=lambda_.Runtime.PYTHON_3_14,
            architecture=architecture,
            handler="run.sh",
            code=code or bundled_code(STREAMER_SOURCE, architecture=architecture.name),
            layers=[
                lambda_.LayerVersion.from_layer_version_arn(
                    self, "WebAdapter", platform.web_adapter.arm64_arn(region)
                )
            ],
            environment=environment,
            memory_size=memory_mb,
            timeout=cdk.Duration.seconds(timeout),
            reserved_concurrent_executions=reserved_concurrency,
            role=self.role,
            log_group=self.log_group,
            description=f"jumpstream: streams tokens from SageMaker endpoint {endpoint_name}",
        )

        cors = None
        if cors_allow_origins:
            cors = lambda_.FunctionUrlCorsOptions(
                allowed_origins=list(cors_allow_origins),
                allowed_methods=[lambda_.HttpMethod.POST, lambda_.HttpMethod.GET],
                allowed_headers=[
                    "content-type", "accept", "authorization", "x-amz-date",
                    "x-amz-security-token", "x-amz-content-sha256",
                ],
                exposed_headers=["x-request-id", "retry-after"],
                max_age=cdk.Duration.hours(1),
            )  # fmt: skip
        if auth_type == "NONE":
            cdk.Annotations.of(self).add_warning_v2(
                "jumpstream:PublicUrl",
                "relay.auth = NONE: the function URL is PUBLIC. Anyone who finds it can run the "
                "GPU endpoint at your expense; only the reserved concurrency limits them.",
            )
        self.url = self.function.add_function_url(
            auth_type=lambda_.FunctionUrlAuthType[auth_type],
            invoke_mode=lambda_.InvokeMode.RESPONSE_STREAM,
            cors=cors,
        )

        for arn in invoker_arns:
            self.grant_invoke_url(iam.ArnPrincipal(arn))

    def grant_invoke_url(self, grantee: iam.IGrantable) -> iam.Grant:
        """lambda:InvokeFunctionUrl and lambda:InvokeFunction (via the URL), as callers need."""
        return self.url.grant_invoke_url(grantee)
