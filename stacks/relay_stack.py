"""The per-environment relay stack: the streaming function URL in front of that environment's
endpoint. A stack of its own so the relay can be redeployed alone (`cdk deploy --exclusively`)
while the endpoint stays up."""

from __future__ import annotations

import aws_cdk as cdk
from constructs import Construct

from stacks.dashboard import EnvironmentDashboard, dashboard_url
from stacks.deployment import (
    API_KEYS_TABLE_OUTPUT,
    AUTH_TYPE_OUTPUT,
    RELAY_URL_OUTPUT,
    EnvironmentConfig,
)
from stacks.errors import ConfigError
from stacks.key_insights import KeyInsights
from stacks.metrics import EndpointMetrics, RelayMetrics
from stacks.monitoring import RelayAlarms
from stacks.relay import StreamingRelay
from stacks.retention import retention


class RelayStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig) -> None:
        super().__init__(
            scope,
            construct_id,
            env=cdk.Environment(account=config.account, region=config.region),
            termination_protection=config.termination_protection,
            description=(
                f"jumpstream {config.name}: streaming function URL for SageMaker endpoint "
                f"{config.endpoint_name}"
            ),
        )
        # The endpoint's (and component's) name is fixed per environment, so the relay knows
        # its ARN without a cross-stack export (exports would pin the endpoint stack's outputs
        # forever).
        if config.relay_platform is None:
            raise ConfigError(f"environment {config.name!r}: its relay is off or unresolved")
        self.relay = StreamingRelay(
            self,
            "Relay",
            config=config.relay,
            target=config.relay_target,
            platform=config.relay_platform,
            environment_name=config.name,
            log_retention=retention(config.log_retention_days),
            # A protected environment's keys are worth continuous backups.
            point_in_time_recovery=config.termination_protection,
        )
        cdk.CfnOutput(
            self, RELAY_URL_OUTPUT, value=self.relay.url.url, description="POST prompts here"
        )
        relay_metrics = RelayMetrics(environment=config.name, model_id=config.model.id)
        alarms = RelayAlarms(
            self,
            "Monitoring",
            metrics=relay_metrics,
            function=self.relay.function,
            timeout_seconds=self.relay.timeout_seconds,
            thresholds=config.alarms,
            alarm_email=config.alarm_email,
            managed_instances=config.relay.managed_instances is not None,
        )
        insights = None
        if self.relay.api_keys is not None:
            insights = KeyInsights(
                self, "KeyInsights", environment=config.name, log_group=self.relay.log_group
            )
            cdk.CfnOutput(
                self,
                API_KEYS_TABLE_OUTPUT,
                value=self.relay.api_keys.table_name,
                description="API keys and their usage: jumpstream keys --env reads it",
            )
        EnvironmentDashboard(
            alarms,  # the path the dashboard has always had: see EnvironmentDashboard
            "Dashboard",
            environment=config.name,
            endpoint=EndpointMetrics.of(config),
            relay=relay_metrics,
            function=self.relay.function,
            thresholds=config.alarms,
            alarms=alarms.alarms,
            top_keys=insights.widgets if insights else (),
        )
        name = config.stack_prefix  # the dashboard's name
        cdk.CfnOutput(self, "DashboardName", value=name)
        cdk.CfnOutput(self, "DashboardUrl", value=dashboard_url(config.region, name))
        cdk.CfnOutput(self, "FunctionName", value=self.relay.function.function_name)
        # The function logs to a group of its own, named by CloudFormation: say which.
        cdk.CfnOutput(self, "LogGroupName", value=self.relay.log_group.log_group_name)
        cdk.CfnOutput(self, AUTH_TYPE_OUTPUT, value=config.relay.auth)
