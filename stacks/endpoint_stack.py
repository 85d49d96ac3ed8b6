"""The per-environment endpoint stack: one JumpStart endpoint and its outputs."""

from __future__ import annotations

import aws_cdk as cdk
from constructs import Construct

from stacks.deployment import EnvironmentConfig
from stacks.endpoint import JumpStartEndpoint
from stacks.metrics import EndpointMetrics
from stacks.monitoring import EndpointAlarms
from stacks.retention import retention
from stacks.scaling import ComponentScaling, InstanceScaling


class EndpointStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig) -> None:
        super().__init__(
            scope,
            construct_id,
            env=cdk.Environment(account=config.account, region=config.region),
            termination_protection=config.termination_protection,
            description=(
                f"jumpstream {config.name}: SageMaker endpoint {config.endpoint_name} serving "
                f"{config.model.id} on {config.instance_type} ({config.hosting} hosting)"
            ),
        )
        model = config.model
        if model.deprecated:
            cdk.Annotations.of(self).add_warning_v2(
                "jumpstream:DeprecatedModel", f"{model.id} is deprecated: {model.deprecated}"
            )
        self.endpoint = JumpStartEndpoint(
            self,
            "JumpStart",
            model=model,
            endpoint_name=config.endpoint_name,
            instance_type=config.instance_type,
            instance_count=config.instance_count,
            log_retention=retention(config.log_retention_days),
            inference_component_name=config.inference_component_name,
            managed_instances=config.managed_instances,
            fleet=config.fleet,
            accept_eula=config.accept_eula,
        )
        component = self.endpoint.component
        if component is not None and config.scaling is not None:
            ComponentScaling(
                self,
                "Scaling",
                inference_component_name=component.inference_component_name,
                config=config.scaling,
                component=component,
            )
        elif config.scaling is not None:
            InstanceScaling(
                self,
                "Scaling",
                endpoint_name=config.endpoint_name,
                variant_name=self.endpoint.variant_name,
                config=config.scaling,
                endpoint=self.endpoint.endpoint,
            )
        EndpointAlarms(
            self,
            "Alarms",
            metrics=EndpointMetrics.of(config),
            thresholds=config.alarms,
            alarm_email=config.alarm_email,
            cold_start_seconds=config.cold_start_seconds,
        )
        cdk.CfnOutput(self, "EndpointName", value=config.endpoint_name)
        cdk.CfnOutput(self, "EndpointArn", value=self.endpoint.endpoint_arn)
        if config.inference_component_name:
            cdk.CfnOutput(self, "InferenceComponentName", value=config.inference_component_name)
        cdk.CfnOutput(self, "ModelId", value=model.id)
