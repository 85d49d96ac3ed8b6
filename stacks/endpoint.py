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

from stacks.catalog import Model, partition
from stacks.errors import ConfigError
from stacks.nag import acknowledge

VARIANT_NAME = "AllTraffic"


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
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        region = stack.region
        if cdk.Token.is_unresolved(region):
            raise ConfigError("JumpStartEndpoint needs a stack with an explicit region")
        if instance_type not in model.instance_types:
            raise ConfigError(
                f"instance type {instance_type!r} is not supported by {model.id}; choose one of: "
                f"{', '.join(sorted(model.instance_types))}"
            )
        if region not in model.regions:
            raise ConfigError(f"{model.id} is not hosted by JumpStart in {region}")
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

        self.endpoint_arn = (
            f"arn:{part}:sagemaker:{region}:{account}:endpoint/{endpoint_name.lower()}"
        )

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
        statements = [
            iam.PolicyStatement(
                sid="ReadModelArtifact",
                actions=["s3:GetObject"],
                resources=[
                    f"{bucket_arn}/{key}*" if model.artifact_is_prefix else f"{bucket_arn}/{key}"
                ],
            ),
            iam.PolicyStatement(
                sid="PullTgiImage",
                actions=[
                    "ecr:BatchCheckLayerAvailability",
                    "ecr:BatchGetImage",
                    "ecr:GetDownloadUrlForLayer",
                ],
                resources=[
                    f"arn:{part}:ecr:{region}:{model.registry.account(region)}:"
                    f"repository/{model.registry.repository}"
                ],
            ),
            iam.PolicyStatement(
                # ecr:GetAuthorizationToken has no resource-level permissions: "*" is the only
                # resource IAM accepts for it. The token alone reads nothing; the statement
                # above limits what it can pull.
                sid="EcrLogin",
                actions=["ecr:GetAuthorizationToken"],
                resources=["*"],
            ),
            iam.PolicyStatement(
                sid="WriteEndpointLogs",
                actions=["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
                resources=[log_group_arn, f"{log_group_arn}:log-stream:*"],
            ),
            iam.PolicyStatement(
                # PutMetricData has no resource-level permissions either; the namespace
                # condition keeps it to SageMaker's endpoint metrics.
                sid="PutEndpointMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/Endpoints*"}},
            ),
        ]
        if model.artifact_is_prefix:
            statements.append(
                iam.PolicyStatement(
                    sid="ListModelArtifact",
                    actions=["s3:ListBucket"],
                    resources=[bucket_arn],
                    conditions={"StringLike": {"s3:prefix": [f"{key}*"]}},
                )
            )
        policy = iam.Policy(self, "ExecutionPolicy", statements=statements)
        policy.attach_to_role(self.role)
        artifact = statements[0].resources[0]
        shown_account = "<AWS::AccountId>" if cdk.Token.is_unresolved(account) else account
        stream_arn = f"{log_group_arn}:log-stream:*".replace(account, shown_account)
        for resource, reason in (
            (
                artifact,
                "Read-only access to the objects under this model's own artifact prefix "
                "in JumpStart's public bucket; SageMaker lists and downloads every file of it.",
            ),
            (
                "*",
                "ecr:GetAuthorizationToken and cloudwatch:PutMetricData support no resource "
                "ARNs; image pulls are limited to the TGI repository and metrics to SageMaker's "
                "endpoint namespace by a condition.",
            ),
            (
                stream_arn,
                "Log streams are created by SageMaker with generated names, one per "
                "instance, inside this endpoint's own log group only.",
            ),
        ):
            if resource == artifact and not model.artifact_is_prefix:
                continue
            acknowledge(policy, f"AwsSolutions-IAM5[Resource::{resource}]", reason)
        return policy
