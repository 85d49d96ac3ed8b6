"""The streaming relay: a Lambda function URL that streams a SageMaker endpoint's tokens.

Python cannot stream from Lambda's managed handler, so the function runs an ordinary ASGI server
(lambda/streamer, started by run.sh) behind the AWS Lambda Web Adapter layer, and the URL is in
RESPONSE_STREAM mode. Everything the caller can reach is the URL; everything the function can
reach is one endpoint (and, with API keys, their table).
"""

from __future__ import annotations

import math
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct
from streamer.contract import (
    API_KEY_HEADER,
    LAMBDA_MAX_TIMEOUT_SECONDS,
    METRIC_NAMESPACE,
    SERVICE_NAME,
    UPSTREAM_READ_TIMEOUT_SECONDS,
    function_environment,
)

from stacks.api_keys import ApiKeysTable
from stacks.availability import RelayPlatform, partition, snapstart_unavailable
from stacks.bundling import bundled_code
from stacks.deployment import LambdaManagedInstances, RelayConfig, RelayTarget
from stacks.endpoint import endpoint_arn, inference_component_arn
from stacks.errors import ConfigError
from stacks.nag import acknowledge

STREAMER_SOURCE = Path(__file__).resolve().parent.parent / "lambda" / "streamer"
#: The alias a SnapStart relay's URL invokes: always the version the last deploy published.
LIVE_ALIAS = "live"

# Sizing: the slowest model we host (Falcon 180B) generates ~10 tokens/s per request; the function
# must outlive the longest allowed answer plus queueing and prefill, within Lambda's limit.
WORST_CASE_TOKENS_PER_SECOND = 10
STARTUP_AND_PREFILL_SECONDS = 60
#: Connections the relay takes beyond its execution environment's concurrency on managed
#: instances: the Web Adapter's readiness checks.
ADAPTER_CONNECTIONS = 2
#: The VPC a managed-instances relay makes for itself: one private subnet per Availability Zone
#: Lambda spreads its instances over, and no route to the internet. (Two where the environment
#: names no account: CDK then knows only two of the region's zones.)
RELAY_VPC_AZS = 3


def function_timeout_seconds(max_new_tokens_limit: int) -> int:
    needed = STARTUP_AND_PREFILL_SECONDS + math.ceil(
        max_new_tokens_limit / WORST_CASE_TOKENS_PER_SECOND
    )
    return min(LAMBDA_MAX_TIMEOUT_SECONDS, needed)


class StreamingRelay(Construct):
    """Function, function URL, log group and a role that may invoke one endpoint and nothing
    else (but read and count in the keys table, with API keys).

    `config` is the environment's [relay] table, `target` what the function calls, `platform`
    what it runs on in the stack's region (Availability.relay_platform refuses a region without
    it). Auth NONE makes the URL public and adds a synth warning; `grant_invoke_url()` gives a
    caller both permissions a function URL call needs, and `config.invoker_arns` does the same
    for principals outside this app (as a resource policy on the function).

    With SnapStart the URL belongs to the alias `live` of a version published on each deploy
    that changes the function: Lambda takes the snapshot when it publishes the version, and only
    a version (through an alias) starts from one.

    With auth API_KEY the URL lets every caller through (AuthType NONE) and the function
    refuses those without a key: the construct adds the keys table (`api_keys`, continuously
    backed up when `point_in_time_recovery`), lets the function read and count in it, and
    hands it the table's name and the environment's limits.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: RelayConfig,
        target: RelayTarget,
        platform: RelayPlatform,
        environment_name: str,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
        code: lambda_.Code | None = None,
        point_in_time_recovery: bool = False,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        if platform.region != stack.region:
            raise ConfigError(
                f"the relay's platform is {platform.region}'s, its stack is in {stack.region}"
            )
        managed = config.managed_instances
        if managed is not None and not platform.managed_instances:
            raise ConfigError(f"Lambda Managed Instances are not offered in {platform.region}")
        snap_start = managed is None and self._snap_start(config, platform)
        architecture = lambda_.Architecture.ARM_64
        timeout = function_timeout_seconds(config.max_new_tokens_limit)
        self.timeout_seconds = timeout
        endpoint_name = target.endpoint_name
        component = target.inference_component_name

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
                    endpoint_arn(stack.region, stack.account, endpoint_name),
                    *(
                        [inference_component_arn(stack.region, stack.account, component)]
                        if component
                        else []
                    ),
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

        if target.tokenizer_uri is not None:
            bucket, _, key = target.tokenizer_uri.removeprefix("s3://").partition("/")
            self.role.add_to_principal_policy(
                iam.PolicyStatement(
                    sid="ReadModelTokenizer",
                    # The model's TGI does not count prompt tokens: the function reads this one
                    # file of the model's artifact (JumpStart's bucket) to count them itself.
                    actions=["s3:GetObject"],
                    resources=[f"arn:{partition(stack.region)}:s3:::{bucket}/{key}"],
                )
            )

        self.api_keys: ApiKeysTable | None = None
        if config.api_keys:
            self.api_keys = ApiKeysTable(
                self, "ApiKeys", point_in_time_recovery=point_in_time_recovery
            )
            self.api_keys.grant_relay(self.role)

        # The Web Adapter runs run.sh, which starts uvicorn, and streams its response; the
        # relay's own settings are lambda/streamer/streamer/settings.py's. The metrics'
        # namespace and environment are what the alarms and the dashboard read.
        context = target.context_limits
        environment = function_environment(
            endpoint_name=endpoint_name,
            model_id=target.model_id,
            inference_component_name=component,
            prompt_template=target.prompt_template,
            serving_engine=target.serving_engine,
            engine_chat_template=target.engine_chat_template,
            max_new_tokens_limit=config.max_new_tokens_limit,
            model_max_total_tokens=context[0] if context else None,
            model_max_input_tokens=context[1] if context else None,
            upstream_read_timeout_seconds=UPSTREAM_READ_TIMEOUT_SECONDS.default,
            service_name=SERVICE_NAME,
            metrics_namespace=METRIC_NAMESPACE,
            environment_name=environment_name,
            web_adapter=True,
            snap_start=snap_start,
            api_keys_table=self.api_keys.table_name if self.api_keys else None,
            key_requests_per_minute=config.key_requests_per_minute,
            key_tokens_per_day=config.key_tokens_per_day,
            key_tokens_per_month=config.key_tokens_per_month,
            tokenizer_uri=target.tokenizer_uri,
            # On managed instances one relay process serves up to the environment's
            # concurrency: the adapter's connections past it are a fault, refused quickly.
            max_connections=managed.concurrency_per_environment + ADAPTER_CONNECTIONS
            if managed
            else None,
        )

        # A capacity provider cannot be removed from a function, only changed: a function of
        # another id on managed instances makes switching either way a replacement (a new
        # function, and a new URL), never an update CloudFormation would refuse.
        self.function = lambda_.Function(
            self,
            "ManagedFunction" if managed else "Function",
            runtime=lambda_.Runtime.PYTHON_3_14,
            architecture=architecture,
            handler="run.sh",
            code=code
            or bundled_code(
                STREAMER_SOURCE,
                architecture=architecture.name,
                prompt_tokens=target.tokenizer_uri is not None,
            ),
            layers=[
                lambda_.LayerVersion.from_layer_version_arn(
                    self, "WebAdapter", platform.web_adapter_layer_arn
                )
            ],
            environment=environment,
            memory_size=config.function_memory_mb,
            timeout=cdk.Duration.seconds(timeout),
            reserved_concurrent_executions=config.reserved_concurrency,
            role=self.role,
            log_group=self.log_group,
            description=f"jumpstream: streams tokens from SageMaker endpoint {endpoint_name}",
            snap_start=lambda_.SnapStartConf.ON_PUBLISHED_VERSIONS if snap_start else None,
            # A version replaced by the next deploy goes: nothing is retained.
            current_version_options=lambda_.VersionOptions(
                removal_policy=cdk.RemovalPolicy.DESTROY
            ),
        )
        self.capacity_provider: lambda_.CapacityProvider | None = None
        if managed is not None:
            self.capacity_provider = self._capacity_provider(managed)
            self.capacity_provider.add_function(
                self.function,
                per_execution_environment_max_concurrency=managed.concurrency_per_environment,
                execution_environment_memory_gib_per_v_cpu=managed.memory_gib_per_vcpu,
            )
        # What the URL invokes: the function's `live` alias with SnapStart or on managed
        # instances (which run published versions only), else the function.
        invoked: lambda_.IFunction = self.function
        if snap_start or managed is not None:
            invoked = lambda_.Alias(
                self, "Live", alias_name=LIVE_ALIAS, version=self.function.current_version
            )

        cors = None
        if config.cors_allow_origins:
            cors = lambda_.FunctionUrlCorsOptions(
                allowed_origins=list(config.cors_allow_origins),
                allowed_methods=[lambda_.HttpMethod.POST, lambda_.HttpMethod.GET],
                allowed_headers=[
                    "content-type", "accept", "authorization", "x-amz-date",
                    "x-amz-security-token", "x-amz-content-sha256",
                    # A key may come in its own header as well as in `authorization`.
                    *([API_KEY_HEADER] if config.api_keys else []),
                ],
                exposed_headers=["x-request-id", "retry-after"],
                max_age=cdk.Duration.hours(1),
            )  # fmt: skip
        if config.auth == "NONE":
            cdk.Annotations.of(self).add_warning_v2(
                "jumpstream:PublicUrl",
                "relay.auth = NONE: the function URL is PUBLIC. Anyone who finds it can run the "
                "GPU endpoint at your expense; only the reserved concurrency limits them.",
            )
        self.url = invoked.add_function_url(
            auth_type=lambda_.FunctionUrlAuthType[config.url_auth_type],
            invoke_mode=lambda_.InvokeMode.RESPONSE_STREAM,
            cors=cors,
        )

        for arn in config.invoker_arns:
            self.grant_invoke_url(iam.ArnPrincipal(arn))

    def _capacity_provider(self, managed: LambdaManagedInstances) -> lambda_.CapacityProvider:
        """Lambda Managed Instances for the function: arm64 instances of the environment's
        types in its subnets (or in a VPC of its own), scaled by Lambda on CPU up to max_vcpus.

        The operator role is CDK's: AWSLambdaManagedEC2ResourceOperator, the managed policy
        Lambda's guide names as the least such a role needs (it launches and tags instances
        only when Lambda is their managed-resource operator)."""
        if managed.subnet_ids:
            subnets = [
                ec2.Subnet.from_subnet_id(self, f"Subnet{index}", subnet_id)
                for index, subnet_id in enumerate(managed.subnet_ids)
            ]
            groups = [
                ec2.SecurityGroup.from_security_group_id(self, f"Group{index}", group_id)
                for index, group_id in enumerate(managed.security_group_ids)
            ]
        else:
            vpc, group = self._private_network()
            subnets = vpc.isolated_subnets
            groups = [group]
        provider = lambda_.CapacityProvider(
            self,
            "Capacity",
            subnets=subnets,
            security_groups=groups,
            architectures=[lambda_.Architecture.ARM_64],
            instance_type_filter=lambda_.InstanceTypeFilter.allow(
                [ec2.InstanceType(t) for t in managed.instance_types]
            ),
            max_v_cpu_count=managed.max_vcpus,
            scaling_options=lambda_.ScalingOptions.auto(),
        )
        acknowledge(
            provider,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/"
            "AWSLambdaManagedEC2ResourceOperator]",
            "The capacity provider's operator role holds AWSLambdaManagedEC2ResourceOperator, "
            "the policy Lambda documents for it and keeps current as Lambda Managed Instances "
            "change; its EC2 writes apply only to resources Lambda operates.",
        )
        return provider

    def _private_network(self) -> tuple[ec2.Vpc, ec2.SecurityGroup]:
        """A VPC with one private subnet per Availability Zone, no internet route, and the
        endpoints the relay calls: SageMaker runtime and CloudWatch Logs (interface), S3 and
        DynamoDB (gateway, free). Nothing else leaves it."""
        vpc = ec2.Vpc(
            self,
            "Network",
            max_azs=RELAY_VPC_AZS,
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name="relay", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=22
                )
            ],
            restrict_default_security_group=False,
        )
        acknowledge(
            vpc,
            "AwsSolutions-VPC7",
            "The VPC has no internet route: its instances reach only the VPC endpoints of "
            "SageMaker runtime, CloudWatch Logs, S3 and DynamoDB, whose calls the relay's own "
            "logs and metrics record.",
        )
        vpc.add_gateway_endpoint("S3", service=ec2.GatewayVpcEndpointAwsService.S3)
        vpc.add_gateway_endpoint("DynamoDB", service=ec2.GatewayVpcEndpointAwsService.DYNAMODB)
        # HTTPS to anywhere: the subnets route nowhere but to the endpoints (S3's and
        # DynamoDB's gateways are reached at their regional prefix lists, not in the VPC).
        group = ec2.SecurityGroup(
            self,
            "Instances",
            vpc=vpc,
            description="jumpstream relay instances: HTTPS out, to the VPC endpoints only",
            allow_all_outbound=False,
        )
        group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.HTTPS, "AWS APIs via VPC endpoints")
        # The interface endpoints take HTTPS from the relay's instances, nothing else.
        endpoints = ec2.SecurityGroup(
            self,
            "Endpoints",
            vpc=vpc,
            description="jumpstream relay VPC endpoints: HTTPS from the relay instances",
            allow_all_outbound=False,
        )
        endpoints.add_ingress_rule(group, ec2.Port.HTTPS, "the relay instances")
        for name, service in (
            ("SageMakerRuntime", ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_RUNTIME),
            ("Logs", ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS),
        ):
            vpc.add_interface_endpoint(
                name,
                service=service,
                private_dns_enabled=True,
                security_groups=[endpoints],
                open=False,
            )
        return vpc, group

    def _snap_start(self, config: RelayConfig, platform: RelayPlatform) -> bool:
        """SnapStart as asked, or wherever Lambda offers it when not asked; a note says where
        it is not offered."""
        if config.snap_start is False:
            return False
        if platform.snap_start:
            return True
        if config.snap_start:
            raise ConfigError(snapstart_unavailable(platform.region))
        cdk.Annotations.of(self).add_warning_v2(
            "jumpstream:NoSnapStart",
            f"{snapstart_unavailable(platform.region)}: the relay starts without it",
        )
        return False

    def grant_invoke_url(self, grantee: iam.IGrantable) -> iam.Grant:
        """lambda:InvokeFunctionUrl and lambda:InvokeFunction (via the URL), as callers need."""
        return self.url.grant_invoke_url(grantee)
