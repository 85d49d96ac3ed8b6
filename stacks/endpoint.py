"""A SageMaker real-time endpoint serving one JumpStart model, with nothing left behind.

The resources are L1s on purpose: every property SageMaker reads is visible here and pinned by
the tests (image URI, model data form, licence acceptance, environment strings, network
isolation, timeouts).
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from stacks.availability import Availability, load_availability, partition
from stacks.catalog import Model, deployment_problem, licence_problem
from stacks.deployment import (
    BAKE_SECONDS,
    ROLLING_BATCH_PERCENT,
    VARIANT_NAME,
    Fleet,
    ManagedInstances,
    update_policy,
)
from stacks.errors import ConfigError
from stacks.nag import acknowledge

#: What an inference component reserves of its instance's memory. Placement is decided by GPUs
#: (a copy takes the model's GPU count); how much host memory SageMaker keeps back on an
#: inference-component endpoint is undocumented, and a reservation above what it allows fails
#: the deploy, so this is the SageMaker SDK's own default. No maximum: the engine may use what it
#: needs.
COMPONENT_MIN_MEMORY_MB = 1024

# An update of an autoscaled endpoint keeps the instance count autoscaling set: every variant
# property but DesiredInstanceCount comes from the new endpoint config.
_NOT_RETAINED_VARIANT_PROPERTIES = ("DesiredWeight", "DataCaptureConfig")
# The rollback alarms: the new fleet's share of failed invocations, per minute. Average of a 0/1
# metric is an error rate; 2 of 3 minutes above it trips the alarm. 5xx means the container
# failed; InvocationModelErrors also counts timeouts and broken responses (and the model's 4xx,
# hence the higher rate). No traffic is no evidence: missing data does not trip them.
ROLLBACK_ALARMS = (
    ("Invocation5XXErrors", 0.05, "5xx-errors"),
    ("InvocationModelErrors", 0.25, "model-errors"),
)


def endpoint_arn(region: str, account: str, endpoint_name: str) -> str:
    """An endpoint's ARN; SageMaker writes the name in lower case there."""
    return f"arn:{partition(region)}:sagemaker:{region}:{account}:endpoint/{endpoint_name.lower()}"


def inference_component_arn(region: str, account: str, name: str) -> str:
    """An inference component's ARN, in lower case as SageMaker writes its endpoints'."""
    return (
        f"arn:{partition(region)}:sagemaker:{region}:{account}:inference-component/{name.lower()}"
    )


def log_group_names(endpoint_name: str, inference_component_name: str | None) -> list[str]:
    """Where SageMaker writes the container's logs: the endpoint's group, and an inference
    component's own group when there is one."""
    names = [f"/aws/sagemaker/Endpoints/{endpoint_name}"]
    if inference_component_name:
        names.append(f"/aws/sagemaker/InferenceComponents/{inference_component_name}")
    return names


class JumpStartEndpoint(Construct):
    """Model, endpoint config, endpoint, its log groups and a least-privilege execution role.

    Model and endpoint-config names are left to CloudFormation, so changing the model or the
    instance count replaces them and updates the endpoint in place (`update_policy`), rolling
    back by itself when the new fleet's error alarms trip; `fleet` says what counts an update
    may find, and whether autoscaling sets them (an update then keeps that count). The
    endpoint's own name is given (callers need it; the environment's names it by instance type,
    so a new type is a new endpoint) and its log groups are created here first, with a
    retention and a DESTROY removal policy, so SageMaker never creates one that `cdk destroy`
    would orphan.

    With `managed_instances` (inference-component hosting) the endpoint holds no model: the
    variant only says which instances SageMaker may start (down to none), and an inference
    component named `inference_component_name` carries the model with the GPUs it needs. The
    component refers to the endpoint, so CloudFormation deletes it first on `cdk destroy`.

    A gated model (the catalog's `gated`) is refused unless `accept_eula`; accepted, its
    artifact comes from JumpStart's private bucket with ModelAccessConfig.AcceptEula, the one
    place SageMaker takes the acceptance for a model's S3 data.
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
        inference_component_name: str | None = None,
        managed_instances: ManagedInstances | None = None,
        fleet: Fleet | None = None,
        accept_eula: bool = False,
    ) -> None:
        super().__init__(scope, construct_id)
        problem = licence_problem(model, accept_eula)
        if problem:
            raise ConfigError(problem)
        if (inference_component_name is None) != (managed_instances is None):
            raise ConfigError(
                "inference-component hosting needs both inference_component_name and "
                "managed_instances"
            )
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
        self.inference_component_name = inference_component_name
        part = partition(region)
        account = stack.account

        self.log_groups = [
            logs.LogGroup(
                self,
                log_id,
                log_group_name=name,
                retention=log_retention,
                removal_policy=cdk.RemovalPolicy.DESTROY,
            )
            for log_id, name in zip(
                ("Logs", "ComponentLogs"),
                log_group_names(endpoint_name, inference_component_name),
                strict=False,
            )
        ]

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
        if model.artifact_is_prefix or model.gated:
            # An uncompressed prefix must go in ModelDataSource: as ModelDataUrl it fails at
            # deploy with "Could not find model data". A gated model's data goes there too,
            # whatever its form: only S3DataSource carries the licence's acceptance.
            container["model_data_source"] = sagemaker.CfnModel.ModelDataSourceProperty(
                s3_data_source=sagemaker.CfnModel.S3DataSourceProperty(
                    s3_uri=model.artifact_uri(region),
                    s3_data_type="S3Prefix" if model.artifact_is_prefix else "S3Object",
                    compression_type="None" if model.artifact_is_prefix else "Gzip",
                    model_access_config=(
                        sagemaker.CfnModel.ModelAccessConfigProperty(accept_eula=True)
                        if model.gated
                        else None
                    ),
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

        if managed_instances is None:
            self._host_on_instances(
                model,
                instance_type,
                instance_count,
                fleet or Fleet(smallest=instance_count, largest=instance_count),
            )
        else:
            assert inference_component_name is not None
            self._host_as_component(
                model,
                instance_type,
                instance_count,
                managed_instances,
                inference_component_name,
                policy,
            )
        for log_group in self.log_groups:
            self.endpoint.node.add_dependency(log_group)

        self.endpoint_arn = endpoint_arn(region, account, endpoint_name)

    def _host_on_instances(
        self, model: Model, instance_type: str, instance_count: int, fleet: Fleet
    ) -> None:
        """Instance hosting: the variant runs the model; updates replace it step by step (or
        all at once for a fleet that may be one instance) and roll back on the alarms."""
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
        self.rollback_alarms = [
            self._new_fleet_alarm(metric, threshold, suffix)
            for metric, threshold, suffix in ROLLBACK_ALARMS
        ]
        self.component = None
        policy = update_policy(
            fleet,
            download_seconds=model.download_timeout_seconds,
            startup_seconds=model.health_check_timeout_seconds,
        )
        rollback = sagemaker.CfnEndpoint.AutoRollbackConfigProperty(
            alarms=[
                sagemaker.CfnEndpoint.AlarmProperty(alarm_name=alarm.alarm_name)
                for alarm in self.rollback_alarms
            ]
        )
        half = sagemaker.CfnEndpoint.CapacitySizeProperty(
            type="CAPACITY_PERCENT", value=ROLLING_BATCH_PERCENT
        )
        if policy.rolling_steps is None:
            deployment = sagemaker.CfnEndpoint.DeploymentConfigProperty(
                blue_green_update_policy=sagemaker.CfnEndpoint.BlueGreenUpdatePolicyProperty(
                    traffic_routing_configuration=sagemaker.CfnEndpoint.TrafficRoutingConfigProperty(
                        type="ALL_AT_ONCE", wait_interval_in_seconds=0
                    ),
                    # The new fleet takes all traffic, then bakes under the rollback alarms
                    # while the old one waits to be stopped (or to take the traffic back).
                    termination_wait_in_seconds=BAKE_SECONDS,
                    maximum_execution_timeout_in_seconds=policy.timeout_seconds,
                ),
                auto_rollback_configuration=rollback,
            )
        else:
            deployment = sagemaker.CfnEndpoint.DeploymentConfigProperty(
                rolling_update_policy=sagemaker.CfnEndpoint.RollingUpdatePolicyProperty(
                    maximum_batch_size=half,
                    rollback_maximum_batch_size=half,
                    wait_interval_in_seconds=BAKE_SECONDS,
                    maximum_execution_timeout_in_seconds=policy.timeout_seconds,
                ),
                auto_rollback_configuration=rollback,
            )
        self.endpoint = sagemaker.CfnEndpoint(
            self,
            "Endpoint",
            endpoint_name=self.endpoint_name,
            endpoint_config_name=self.endpoint_config.attr_endpoint_config_name,
            deployment_config=deployment,
            # An update (a new model, say) would otherwise start the new config's
            # InitialInstanceCount, shrinking a fleet autoscaling grew under load: keep the
            # count autoscaling set, and take everything else from the new config.
            retain_all_variant_properties=True if fleet.autoscaled else None,
            exclude_retained_variant_properties=(
                [
                    sagemaker.CfnEndpoint.VariantPropertyProperty(variant_property_type=name)
                    for name in _NOT_RETAINED_VARIANT_PROPERTIES
                ]
                if fleet.autoscaled
                else None
            ),
        )

    def _host_as_component(
        self,
        model: Model,
        instance_type: str,
        instance_count: int,
        managed: ManagedInstances,
        component_name: str,
        policy: iam.Policy,
    ) -> None:
        """Inference-component hosting: the variant is only instances, which SageMaker starts
        for the component's copies and stops when none is left; requests go to the instance
        with the fewest outstanding ones. The execution role is the config's, as SageMaker
        requires of component endpoints."""
        self.endpoint_config = sagemaker.CfnEndpointConfig(
            self,
            "Config",
            execution_role_arn=self.role.role_arn,
            # On a component endpoint SageMaker takes network isolation from here, not from the
            # Model (which keeps its own for instance hosting).
            enable_network_isolation=True,
            production_variants=[
                sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                    variant_name=VARIANT_NAME,
                    instance_type=instance_type,
                    initial_instance_count=instance_count,
                    managed_instance_scaling=(
                        sagemaker.CfnEndpointConfig.ManagedInstanceScalingProperty(
                            status="ENABLED",
                            min_instance_count=managed.min_instances,
                            max_instance_count=managed.max_instances,
                        )
                    ),
                    routing_config=sagemaker.CfnEndpointConfig.RoutingConfigProperty(
                        routing_strategy="LEAST_OUTSTANDING_REQUESTS"
                    ),
                )
            ],
        )
        # SageMaker checks the config's role when it creates the config.
        self.endpoint_config.node.add_dependency(policy)
        # No rolling DeploymentConfig: it describes a variant's model fleet, which a component
        # endpoint does not have. A changed model is an update of the component.
        self.rollback_alarms = []
        self.endpoint = sagemaker.CfnEndpoint(
            self,
            "Endpoint",
            endpoint_name=self.endpoint_name,
            endpoint_config_name=self.endpoint_config.attr_endpoint_config_name,
        )
        ic = sagemaker.CfnInferenceComponent
        # The component's name follows the endpoint's, which follows the instance type; a new
        # name must be a new resource (CloudFormation would otherwise try to rename it in place),
        # so its construct id carries the instance type too.
        self.component = ic(
            self,
            f"Component-{instance_type}",
            inference_component_name=component_name,
            # The endpoint's attribute, not its name: CloudFormation creates the component after
            # the endpoint and deletes it before (a component left on it blocks the deletion).
            endpoint_name=self.endpoint.attr_endpoint_name,
            variant_name=VARIANT_NAME,
            specification=ic.InferenceComponentSpecificationProperty(
                model_name=self.model.attr_model_name,
                compute_resource_requirements=ic.InferenceComponentComputeResourceRequirementsProperty(
                    number_of_accelerator_devices_required=model.instance_types[instance_type].gpus,
                    min_memory_required_in_mb=COMPONENT_MIN_MEMORY_MB,
                ),
                startup_parameters=ic.InferenceComponentStartupParametersProperty(
                    container_startup_health_check_timeout_in_seconds=(
                        model.health_check_timeout_seconds
                    ),
                    model_data_download_timeout_in_seconds=model.download_timeout_seconds,
                ),
            ),
            # A component is created with one copy; autoscaling takes it to zero when idle. The
            # value is write-only: a deploy that updates the component sets one copy again.
            runtime_config=ic.InferenceComponentRuntimeConfigProperty(copy_count=1),
            # No DeploymentConfig: SageMaker's rolling policy wants batches of 5-50% of the copy
            # count, which one copy cannot have, and no rollback alarm could tell new copies
            # from old. An update starts its new copy beside the old one, on the spare instance
            # managed instance scaling allows, then retires the old.
        )

    def rollback_alarm_name(self, suffix: str) -> str:
        """Fixed per endpoint, so the execution role can name them without a dependency cycle."""
        return f"{self.endpoint_name}-new-fleet-{suffix}"

    def _new_fleet_alarm(self, metric: str, threshold: float, suffix: str) -> cloudwatch.Alarm:
        """An alarm on the newest endpoint config's fleet only: SageMaker publishes invocation
        metrics with an EndpointConfigName dimension once a fleet takes traffic, so an old fleet
        that already errs cannot stop or roll back an update."""
        return cloudwatch.Alarm(
            self,
            f"NewFleet{metric}",
            alarm_name=self.rollback_alarm_name(suffix),
            alarm_description=(
                f"Rolls back an update of endpoint {self.endpoint_name} when more than "
                f"{threshold:.0%} of the new fleet's invocations fail ({metric})"
            ),
            metric=cloudwatch.Metric(
                namespace="AWS/SageMaker",
                metric_name=metric,
                dimensions_map={
                    "EndpointName": self.endpoint_name,
                    "VariantName": VARIANT_NAME,
                    "EndpointConfigName": self.endpoint_config.attr_endpoint_config_name,
                },
                statistic="Average",
                period=cdk.Duration.minutes(1),
            ),
            threshold=threshold,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=3,
            datapoints_to_alarm=2,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

    def _grant_execution(self, *, model: Model, region: str, account: str, part: str) -> iam.Policy:
        """Exactly what SageMaker does with the execution role for this endpoint, and no more.

        SageMaker assumes the role to (1) download the model artifact from JumpStart's bucket
        (its private one for a gated model; list the prefix, then get each object; a `.tar.gz`
        needs only the one object), (2) pull the engine's image from its Deep Learning
        Containers repository, and (3) write the container's
        logs and the endpoint's metrics. Network isolation keeps the container itself off the
        network, so nothing else is needed at run time. logs:CreateLogGroup, which AWS's
        documented minimum CreateModel policy includes, is granted on this endpoint's own log
        group only: the stack creates that group first and deletes it after the endpoint, so
        SageMaker's call finds it there and no other group can be made. Deployment guardrails
        read the rollback alarms with the execution role: cloudwatch:DescribeAlarms on those two.
        """
        bucket_arn = f"arn:{part}:s3:::{model.artifact_bucket(region)}"
        log_group_arns = [
            f"arn:{part}:logs:{region}:{account}:log-group:{name}"
            for name in log_group_names(self.endpoint_name, self.inference_component_name)
        ]
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
                    f"JumpStart's {'private' if model.gated else 'public'} bucket: SageMaker "
                    "downloads every file of it."
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
        pull = f"Pull{model.engine.capitalize()}Image"  # PullTgiImage, PullLmiImage, ...
        allow(
            pull,
            ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            [f"arn:{part}:ecr:{region}:{model.registry.account(region)}:repository/"
             f"{model.image_repository}"],
        )  # fmt: skip
        allow(
            "EcrLogin",
            ["ecr:GetAuthorizationToken"],
            ["*"],
            wildcard_reason=(
                "ecr:GetAuthorizationToken supports no resource ARN; the token alone reads "
                f"nothing, and the {pull} statement limits pulls to the {model.serving.label} "
                "repository."
            ),
        )
        allow("CreateEndpointLogGroup", ["logs:CreateLogGroup"], log_group_arns)
        allow(
            "WriteEndpointLogs",
            ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
            [arn for group in log_group_arns for arn in (group, f"{group}:log-stream:*")],
            wildcard_reason=(
                "SageMaker names a log stream per instance when it starts; the streams are "
                "limited to this endpoint's own log groups."
            ),
        )
        namespaces = ["/aws/sagemaker/Endpoints"]
        if self.inference_component_name:
            namespaces.append("/aws/sagemaker/InferenceComponents")
        allow(
            "PutEndpointMetrics",
            ["cloudwatch:PutMetricData"],
            ["*"],
            {
                "StringEquals": {
                    "cloudwatch:namespace": namespaces[0] if len(namespaces) == 1 else namespaces
                }
            },
            wildcard_reason=(
                "cloudwatch:PutMetricData supports no resource ARN; a condition limits it to "
                "SageMaker's endpoint (and inference component) metrics namespaces."
            ),
        )
        if self.inference_component_name is None:
            allow(
                "DescribeRollbackAlarms",
                ["cloudwatch:DescribeAlarms"],
                [
                    f"arn:{part}:cloudwatch:{region}:{account}:alarm:"
                    f"{self.rollback_alarm_name(suffix)}"
                    for _, _, suffix in ROLLBACK_ALARMS
                ],
            )
        for finding, reasons in wildcards.items():
            acknowledge(policy, finding, " ".join(reasons))
        return policy
