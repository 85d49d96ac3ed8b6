"""A SageMaker real-time endpoint serving one JumpStart TGI model, with nothing left behind.

The resources are L1s on purpose: every property SageMaker reads is visible here and pinned by
the tests (image URI, model data form, environment strings, network isolation, timeouts).
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from stacks.availability import Availability, load_availability
from stacks.catalog import Model, deployment_problem, partition
from stacks.errors import ConfigError
from stacks.nag import acknowledge

VARIANT_NAME = "AllTraffic"


def endpoint_arn(region: str, account: str, endpoint_name: str) -> str:
    """An endpoint's ARN; SageMaker writes the name in lower case there."""
    return f"arn:{partition(region)}:sagemaker:{region}:{account}:endpoint/{endpoint_name.lower()}"


class JumpStartEndpoint(Construct):
    """Model, endpoint config, endpoint, its log group and a least-privilege execution role.

    Model and endpoint-config names are left to CloudFormation, so changing the model or the
    instance type replaces them and updates the endpoint in place; the endpoint's own name is
    fixed (callers need it) and its log group is created here first, with a retention and a
    DESTROY removal policy, so SageMaker never creates one that `cdk destroy` would orphan.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        model: Model,
        endpoint_name: str,
        instance_type: str,
        instance_count: int = 1,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
        availability: Availability | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        region = stack.region
        if cdk.Token.is_unresolved(region):
            raise ConfigError("JumpStartEndpoint needs a stack with an explicit region")
        problem = deployment_problem(
            model, region, instance_type, availability or load_availability()
        )
        if problem:
            raise ConfigError(problem)
        self.endpoint_name = endpoint_name
        self.variant_name = VARIANT_NAME
        part = partition(region)
        account = stack.account

        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/aws/sagemaker/Endpoints/{endpoint_name}",
            retention=log_retention,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )

        self.role = iam.Role(
            self,
            "ExecutionRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"SageMaker execution role for endpoint {endpoint_name} ({model.id})",
        )
        policy = self._grant_execution(model=model, region=region, account=account, part=part)

        container: dict[str, object] = {
            "image": model.image_uri(region),
            "environment": model.container_environment(instance_type),
        }
        if model.artifact_is_prefix:
            # An uncompressed prefix must go in ModelDataSource: as ModelDataUrl it fails at
            # deploy with "Could not find model data".
            container["model_data_source"] = sagemaker.CfnModel.ModelDataSourceProperty(
                s3_data_source=sagemaker.CfnModel.S3DataSourceProperty(
                    s3_uri=model.artifact_uri(region),
                    s3_data_type="S3Prefix",
                    compression_type="None",
                )
            )
        else:
            container["model_data_url"] = model.artifact_uri(region)

        self.model = sagemaker.CfnModel(
            self,
            "Model",
            execution_role_arn=self.role.role_arn,
            primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(**container),
            enable_network_isolation=True,
        )
        # SageMaker checks the role when it creates the model: its policy must be attached first.
        self.model.node.add_dependency(policy)

        self.endpoint_config = sagemaker.CfnEndpointConfig(
            self,
            "Config",
            production_variants=[
                sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                    variant_name=VARIANT_NAME,
                    model_name=self.model.attr_model_name,
                    initial_instance_count=instance_count,
                    instance_type=instance_type,
                    initial_variant_weight=1.0,
                    container_startup_health_check_timeout_in_seconds=(
                        model.health_check_timeout_seconds
                    ),
                    model_data_download_timeout_in_seconds=model.download_timeout_seconds,
                )
            ],
        )

        self.endpoint = sagemaker.CfnEndpoint(
            self,
            "Endpoint",
            endpoint_name=endpoint_name,
            endpoint_config_name=self.endpoint_config.attr_endpoint_config_name,
        )
        self.endpoint.node.add_dependency(self.log_group)

        self.endpoint_arn = endpoint_arn(region, account, endpoint_name)

    def _grant_execution(self, *, model: Model, region: str, account: str, part: str) -> iam.Policy:
        """Exactly what SageMaker does with the execution role for this endpoint, and no more.

        SageMaker assumes the role to (1) download the model artifact from JumpStart's bucket
        (list the prefix, then get each object; a `.tar.gz` needs only the one object), (2) pull
        the TGI image from the Deep Learning Containers registry, and (3) write the container's
        logs and the endpoint's metrics. Network isolation keeps the container itself off the
        network, so nothing else is needed at run time. Not granted: logs:CreateLogGroup (the
        stack owns the log group, so SageMaker cannot recreate it after `cdk destroy`).
        """
        bucket_arn = f"arn:{part}:s3:::{model.artifact_bucket(region)}"
        log_group_arn = (
            f"arn:{part}:logs:{region}:{account}:log-group:/aws/sagemaker/Endpoints/"
            f"{self.endpoint_name}"
        )
        key = model.artifact_key
        policy = iam.Policy(self, "ExecutionPolicy")
        policy.attach_to_role(self.role)
        # cdk-nag finding id -> why the wildcard in it is as narrow as IAM allows.
        wildcards: dict[str, list[str]] = {}

        def allow(
            sid: str,
            actions: list[str],
            resources: list[str],
            conditions: dict[str, object] | None = None,
            *,
            wildcard_reason: str | None = None,
        ) -> None:
            policy.add_statements(
                iam.PolicyStatement(
                    sid=sid, actions=actions, resources=resources, conditions=conditions
                )
            )
            for resource in resources:
                if "*" in resource:
                    assert wildcard_reason, f"{sid}: a wildcard needs a reason"
                    # cdk-nag names a finding by the resource as the template has it: the
                    # account token shows as <AWS::AccountId>, a configured account as itself.
                    shown = (
                        resource.replace(account, "<AWS::AccountId>")
                        if cdk.Token.is_unresolved(account)
                        else resource
                    )
                    wildcards.setdefault(f"AwsSolutions-IAM5[Resource::{shown}]", []).append(
                        wildcard_reason
                    )

        if model.artifact_is_prefix:
            allow(
                "ReadModelArtifact",
                ["s3:GetObject"],
                [f"{bucket_arn}/{key}*"],
                wildcard_reason=(
                    "Read-only access to the objects under this model's own artifact prefix in "
                    "JumpStart's public bucket: SageMaker downloads every file of it."
                ),
            )
            allow(
                "ListModelArtifact",
                ["s3:ListBucket"],
                [bucket_arn],
                {"StringLike": {"s3:prefix": [f"{key}*"]}},
            )
        else:
            allow("ReadModelArtifact", ["s3:GetObject"], [f"{bucket_arn}/{key}"])
        allow(
            "PullTgiImage",
            ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            [f"arn:{part}:ecr:{region}:{model.registry.account(region)}:repository/"
             f"{model.registry.repository}"],
        )  # fmt: skip
        allow(
            "EcrLogin",
            ["ecr:GetAuthorizationToken"],
            ["*"],
            wildcard_reason=(
                "ecr:GetAuthorizationToken supports no resource ARN; the token alone reads "
                "nothing, and the PullTgiImage statement limits pulls to the TGI repository."
            ),
        )
        allow(
            "WriteEndpointLogs",
            ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
            [log_group_arn, f"{log_group_arn}:log-stream:*"],
            wildcard_reason=(
                "SageMaker names a log stream per instance when it starts; the streams are "
                "limited to this endpoint's own log group."
            ),
        )
        allow(
            "PutEndpointMetrics",
            ["cloudwatch:PutMetricData"],
            ["*"],
            {"StringEquals": {"cloudwatch:namespace": "/aws/sagemaker/Endpoints"}},
            wildcard_reason=(
                "cloudwatch:PutMetricData supports no resource ARN; a condition limits it to "
                "SageMaker's endpoint metrics namespace."
            ),
        )
        for finding, reasons in wildcards.items():
            acknowledge(policy, finding, " ".join(reasons))
        return policy
