"""Autoscaling: instances of an instance-hosted endpoint, or copies of an inference component.

A GPU endpoint bills every instance-hour it has. Target tracking on SageMaker's high-resolution
concurrency metric (requests in flight per model copy, published every 10 s) adds capacity when
streams queue and removes it when they do not; schedules change the limits at set times. An
instance-hosted endpoint cannot go below one instance. An inference component can go down to no
copy at all (and SageMaker's managed instance scaling then to no instance), but target tracking
never brings it back from zero, because a component with no copy publishes no concurrency: the
calls SageMaker refuses meanwhile (`NoCapacityInvocationFailures`) trip an alarm whose step
policy adds the first copy.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_applicationautoscaling as autoscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from constructs import Construct

from stacks.availability import partition
from stacks.deployment import WAKE_UP_COOLDOWN_SECONDS, ScalingConfig

__all__ = ["ComponentScaling", "InstanceScaling", "wake_up_alarm_name"]

#: How often the wake-up alarm looks at refused calls: at most this long after the first refused
#: call, a copy is asked for. AWS's examples use 30 s and 60 s; the resolution SageMaker publishes
#: NoCapacityInvocationFailures at is undocumented, and a 30 s alarm on a one-minute metric would
#: see half its periods empty. A minute is small beside the minutes a copy takes to start.
WAKE_UP_PERIOD_SECONDS = 60


def wake_up_alarm_name(inference_component_name: str) -> str:
    """Fixed per component, so the docs and an operator can find it."""
    return f"{inference_component_name}-wake-up"


class _TrackedCapacity(Construct):
    """A scalable target, a target-tracking policy on concurrency, and the schedules."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        resource_id: str,
        dimension: str,
        metric: autoscaling.PredefinedMetric,
        config: ScalingConfig,
        scaled: cdk.CfnResource,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.target = autoscaling.ScalableTarget(
            self,
            "Target",
            # Application Auto Scaling acts on SageMaker with its own service-linked role (made
            # on first use; AWS's managed policy may update endpoints' and components' capacity
            # and nothing else). Naming it here is what AWS recommends for CloudFormation, and
            # keeps CDK from creating a role of its own that would hold nothing.
            role=iam.Role.from_role_arn(
                self,
                "ServiceLinkedRole",
                f"arn:{partition(stack.region)}:iam::{stack.account}:role/aws-service-role/"
                "sagemaker.application-autoscaling.amazonaws.com/"
                "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint",
                mutable=False,
            ),
            service_namespace=autoscaling.ServiceNamespace.SAGEMAKER,
            resource_id=resource_id,
            scalable_dimension=dimension,
            min_capacity=config.min_capacity,
            max_capacity=config.max_capacity,
        )
        # The target names what it scales by its fixed name: it must wait for that to exist,
        # and go before it on `cdk destroy`.
        self.target.node.add_dependency(scaled)
        self.target.scale_to_track_metric(
            "ConcurrentRequests",
            target_value=config.target_concurrency,
            predefined_metric=metric,
            scale_out_cooldown=cdk.Duration.seconds(config.scale_out_cooldown_seconds),
            scale_in_cooldown=cdk.Duration.seconds(config.scale_in_cooldown_seconds),
        )
        for schedule in config.schedules:
            self.target.scale_on_schedule(
                schedule.name,
                schedule=autoscaling.Schedule.expression(schedule.cron),
                min_capacity=schedule.min_capacity,
                max_capacity=schedule.max_capacity,
                time_zone=cdk.TimeZone.of(schedule.time_zone),
            )


class InstanceScaling(_TrackedCapacity):
    """The variant's instance count, between the configured limits (never below one)."""

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
        super().__init__(
            scope,
            construct_id,
            resource_id=f"endpoint/{endpoint_name}/variant/{variant_name}",
            dimension="sagemaker:variant:DesiredInstanceCount",
            metric=(
                autoscaling.PredefinedMetric.SAGEMAKER_VARIANT_CONCURRENT_REQUESTS_PER_MODEL_HIGH_RESOLUTION
            ),
            config=config,
            scaled=endpoint,
        )


class ComponentScaling(_TrackedCapacity):
    """An inference component's copy count, down to zero, and the step that wakes it up."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        inference_component_name: str,
        config: ScalingConfig,
        component: cdk.CfnResource,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            resource_id=f"inference-component/{inference_component_name}",
            dimension="sagemaker:inference-component:DesiredCopyCount",
            metric=(
                autoscaling.PredefinedMetric.SAGEMAKER_INFERENCE_COMPONENT_CONCURRENT_REQUESTS_PER_COPY_HIGH_RESOLUTION
            ),
            config=config,
            scaled=component,
        )
        # One copy more whenever SageMaker refused a call for want of one: from zero copies,
        # target tracking has no concurrency to act on, so only this brings the model back.
        # Never fewer copies (it only adds), never more than max_copies (the target's maximum);
        # the cooldown (WAKE_UP_COOLDOWN_SECONDS) keeps one cold start to one copy for a while
        # and is over before the component can be idle at zero again, so a later cold start is
        # never refused a copy because of an earlier one.
        self.wake_up = autoscaling.StepScalingAction(
            self,
            "WakeUp",
            scaling_target=self.target,
            adjustment_type=autoscaling.AdjustmentType.CHANGE_IN_CAPACITY,
            metric_aggregation_type=autoscaling.MetricAggregationType.MAXIMUM,
            cooldown=cdk.Duration.seconds(WAKE_UP_COOLDOWN_SECONDS),
        )
        self.wake_up.add_adjustment(adjustment=1, lower_bound=0)
        self.wake_up_alarm = cloudwatch.Alarm(
            self,
            "NoCapacity",
            alarm_name=wake_up_alarm_name(inference_component_name),
            alarm_description=(
                f"Adds a copy of inference component {inference_component_name} when SageMaker "
                "refused a call because the component had no copy to run it on "
                "(NoCapacityInvocationFailures: it was scaled to zero, or its copy is still "
                "starting). An alarm here is the model waking up, not a fault."
            ),
            metric=cloudwatch.Metric(
                namespace="AWS/SageMaker",
                metric_name="NoCapacityInvocationFailures",
                dimensions_map={"InferenceComponentName": inference_component_name},
                statistic="Maximum",
                period=cdk.Duration.seconds(WAKE_UP_PERIOD_SECONDS),
            ),
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            datapoints_to_alarm=1,
            # No refused call publishes nothing; that is no reason to add a copy.
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.wake_up_alarm.add_alarm_action(actions.ApplicationScalingAction(self.wake_up))
