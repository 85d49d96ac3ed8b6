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

import math
import re
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_applicationautoscaling as autoscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from constructs import Construct

from stacks.catalog import Model, partition

__all__ = [
    "ComponentScaling",
    "InstanceScaling",
    "ManagedInstances",
    "ScalingConfig",
    "ScalingSchedule",
    "check_cron",
    "cold_start_limit_seconds",
    "start_limit_problem",
    "wake_up_alarm_name",
]

# Application Auto Scaling's cron: minutes hours day-of-month month day-of-week year.
_CRON = re.compile(r"cron\((\S+ ){5}\S+\)")

#: How often the wake-up alarm looks at refused calls: at most this long after the first refused
#: call, a copy is asked for. AWS's examples use 30 s and 60 s; the resolution SageMaker publishes
#: NoCapacityInvocationFailures at is undocumented, and a 30 s alarm on a one-minute metric would
#: see half its periods empty. A minute is small beside the minutes a copy takes to start.
WAKE_UP_PERIOD_SECONDS = 60


#: How long SageMaker may take to launch an instance for a copy, before the copy's own download
#: and startup. AWS documents no figure; launches take a few minutes, this is a margin above.
INSTANCE_LAUNCH_SECONDS = 600

#: How long a component with no traffic keeps its last copy: target tracking removes it once its
#: scale-in alarm has seen 15 minutes below the target (AWS's account of scale to zero; not
#: confirmed here). A new cold start can come no sooner after a copy started.
IDLE_TO_ZERO_SECONDS = 15 * 60

#: The wake-up step policy's cooldown. While it runs, Application Auto Scaling adds no copy
#: again (it counts the one it just asked for), so it must end before the component can be back
#: at zero, or a caller returning then would be refused until it ended: a third of the idle time
#: leaves room even if that were shorter than AWS says. An alarm with a scaling action repeats
#: it every minute it stays in ALARM, so a cold start longer than this asks for one more copy
#: per cooldown, bounded by max_copies (one by default); target tracking removes any extra copy
#: once callers are served.
WAKE_UP_COOLDOWN_SECONDS = IDLE_TO_ZERO_SECONDS // 3

#: How long CloudFormation waits for a resource to be created before it fails the deploy: the
#: resource type's registry schema sets it (handlers.create.timeoutInMinutes), 120 minutes when
#: the schema sets nothing. The SageMaker schemas (as cfn-lint ships them; a test reads them)
#: give the endpoint 160 minutes and the inference component the default.
CREATE_LIMIT_MINUTES = {
    "AWS::SageMaker::Endpoint": 160,
    "AWS::SageMaker::InferenceComponent": 120,
}


def cold_start_limit_seconds(model: Model) -> int:
    """The longest a copy may take to come back from zero before SageMaker gives up on it: an
    instance launch, then the model's download and startup timeouts from the catalog."""
    return (
        INSTANCE_LAUNCH_SECONDS
        + model.download_timeout_seconds
        + model.health_check_timeout_seconds
    )


def start_limit_problem(model: Model, *, components: bool) -> str | None:
    """Why CloudFormation could give up on `model`'s first start before SageMaker does, or None.

    The resource whose creation waits for the model is the endpoint (instance hosting) or the
    inference component; either may have to launch an instance, then download and start the
    model, each for as long as the catalog allows.
    """
    resource = "AWS::SageMaker::InferenceComponent" if components else "AWS::SageMaker::Endpoint"
    limit = CREATE_LIMIT_MINUTES[resource]
    needed = math.ceil(cold_start_limit_seconds(model) / 60)
    if needed <= limit:
        return None
    what = "an inference component" if components else "an endpoint"
    alternative = '; use hosting = "instance"' if components else ""
    return (
        f"{model.id} may take up to {needed} minutes to start (instance launch, download and "
        f"startup), more than the {limit} minutes CloudFormation waits for {what} to be "
        f"created{alternative}"
    )


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


def wake_up_alarm_name(inference_component_name: str) -> str:
    """Fixed per component, so the README and an operator can find it."""
    return f"{inference_component_name}-wake-up"


@dataclass(frozen=True, slots=True, kw_only=True)
class ScalingSchedule:
    """At `cron` (in `time_zone`), set the scaled capacity's limits to these."""

    name: str
    cron: str
    min_capacity: int
    max_capacity: int | None = None
    time_zone: str = "UTC"


@dataclass(frozen=True, slots=True, kw_only=True)
class ScalingConfig:
    """What scales between which limits: instances (instance hosting, from min_instances and
    max_instances) or copies of the model (inference-component hosting, min_copies and
    max_copies)."""

    min_capacity: int
    max_capacity: int
    #: Concurrent requests per model copy that scaling aims at. TGI batches requests, so a few at
    #: once is normal; many means callers wait for their first token.
    target_concurrency: float = 4.0
    scale_out_cooldown_seconds: int = 60
    #: Removing a GPU copy is cheap to regret only slowly: a new one takes minutes.
    scale_in_cooldown_seconds: int = 600
    schedules: tuple[ScalingSchedule, ...] = ()

    @property
    def lowest_capacity(self) -> int:
        """The least the capacity may fall to: the minimum, or a schedule's if that is lower."""
        return min([self.min_capacity] + [s.min_capacity for s in self.schedules])

    @property
    def peak_capacity(self) -> int:
        """The most the capacity may reach: the maximum, or a schedule's if that is higher."""
        return max(
            [self.max_capacity]
            + [s.max_capacity for s in self.schedules if s.max_capacity is not None]
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ManagedInstances:
    """Inference-component hosting: the instances SageMaker may run for the copies. It starts
    them when a copy needs room and stops them when no copy is left on them."""

    min_instances: int = 0
    max_instances: int


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
