"""Instance autoscaling for an endpoint's variant, and schedules that change its limits.

A GPU endpoint bills every instance-hour it has. Target tracking on SageMaker's high-resolution
concurrency metric (requests in flight per model copy, published every 10 s) adds instances when
streams queue and removes them when they do not; schedules lower the minimum at night and raise
it in the morning. An instance-hosted endpoint cannot go below one instance: scale to zero needs
inference-component hosting.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_applicationautoscaling as autoscaling
from constructs import Construct

__all__ = ["InstanceScaling", "ScalingConfig", "ScalingSchedule", "check_cron"]

# Application Auto Scaling's cron: minutes hours day-of-month month day-of-week year.
_CRON = re.compile(r"cron\((\S+ ){5}\S+\)")


def check_cron(expression: str) -> str | None:
    """Why `expression` is not one of Application Auto Scaling's cron expressions, or None."""
    if not _CRON.fullmatch(expression):
        return (
            "must be cron(minutes hours day-of-month month day-of-week year), "
            'e.g. "cron(0 20 ? * MON-FRI *)"'
        )
    fields = expression[5:-1].split()
    if fields[2] != "?" and fields[4] != "?":
        return "must have ? in day-of-month or day-of-week (one of the two), as AWS requires"
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class ScalingSchedule:
    """At `cron` (in `time_zone`), set the variant's limits to these."""

    name: str
    cron: str
    min_instances: int
    max_instances: int | None = None
    time_zone: str = "UTC"


@dataclass(frozen=True, slots=True, kw_only=True)
class ScalingConfig:
    """[environments.NAME.scaling]: without it, the instance count is fixed."""

    min_instances: int
    max_instances: int
    #: Concurrent requests per instance's model that scaling aims at. TGI batches requests, so a
    #: few at once is normal; many means callers wait for their first token.
    target_concurrency: float = 4.0
    scale_out_cooldown_seconds: int = 60
    #: Removing a GPU instance is cheap to regret only slowly: a new one takes minutes.
    scale_in_cooldown_seconds: int = 600
    schedules: tuple[ScalingSchedule, ...] = ()


class InstanceScaling(Construct):
    """A scalable target on the variant's instance count, a target-tracking policy, schedules."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint_name: str,
        variant_name: str,
        config: ScalingConfig,
        endpoint: cdk.CfnResource,
    ) -> None:
        super().__init__(scope, construct_id)
        self.target = autoscaling.ScalableTarget(
            self,
            "Target",
            service_namespace=autoscaling.ServiceNamespace.SAGEMAKER,
            resource_id=f"endpoint/{endpoint_name}/variant/{variant_name}",
            scalable_dimension="sagemaker:variant:DesiredInstanceCount",
            min_capacity=config.min_instances,
            max_capacity=config.max_instances,
        )
        # The target names the endpoint by its fixed name: it must wait for the endpoint to
        # exist, and go before it on `cdk destroy`.
        self.target.node.add_dependency(endpoint)
        self.target.scale_to_track_metric(
            "ConcurrentRequests",
            target_value=config.target_concurrency,
            predefined_metric=(
                autoscaling.PredefinedMetric.SAGEMAKER_VARIANT_CONCURRENT_REQUESTS_PER_MODEL_HIGH_RESOLUTION
            ),
            scale_out_cooldown=cdk.Duration.seconds(config.scale_out_cooldown_seconds),
            scale_in_cooldown=cdk.Duration.seconds(config.scale_in_cooldown_seconds),
        )
        for schedule in config.schedules:
            self.target.scale_on_schedule(
                schedule.name,
                schedule=autoscaling.Schedule.expression(schedule.cron),
                min_capacity=schedule.min_instances,
                max_capacity=schedule.max_instances,
                time_zone=cdk.TimeZone.of(schedule.time_zone),
            )
