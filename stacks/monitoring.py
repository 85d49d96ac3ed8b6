"""Alarms over what an environment's users feel: waits, speed, failures, fleet.

SageMaker's own metrics cannot say how long a user waits for the first token (ModelLatency
covers a whole stream) and Lambda's Duration is a stream's length; the relay's metrics
(metrics.py) fill that in. Every alarm's description says what to look at first, and with an
email address each construct's alarms notify through a topic of its own. Nothing here calls an
API from the function, and `cdk destroy` removes it all. The dashboard is dashboard.py's.
"""

from __future__ import annotations

import math

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct
from streamer.contract import Metric

from stacks.deployment import AlarmThresholds, environment_prefix
from stacks.endpoint import log_group_names
from stacks.metrics import PERIOD, EndpointMetrics, RelayMetrics

__all__ = ["EndpointAlarms", "RelayAlarms"]

#: The no-capacity alarm's period: refused calls in each of these count as still waiting.
NO_CAPACITY_PERIOD_MINUTES = 5
#: How long KMS keeps an alarm topic's key after `cdk destroy` before deleting it (7 to 30 days;
#: the key bills nothing once scheduled for deletion).
KEY_PENDING_DAYS = 7
_FIVE_MINUTES = cdk.Duration.minutes(5)


class _AlarmTopic(Construct):
    """Where alarms notify: an SNS topic with one email subscription, only if asked.

    Encrypted with a key of its own: CloudWatch publishes an alarm only to a topic whose key lets
    it use the key, and the AWS-managed `alias/aws/sns` key's policy cannot be changed to let it,
    so alarm mail to a topic under that key never arrives. The key's policy and the topic's let
    CloudWatch in only for alarms of this account and region named `alarm_prefix`*; the key
    rotates yearly and `cdk destroy` schedules its deletion (KMS keeps it pending for
    KEY_PENDING_DAYS, then deletes it).
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, email: str, alarm_prefix: str
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        cloudwatch_service = iam.ServicePrincipal("cloudwatch.amazonaws.com")
        only_these_alarms = {
            "StringEquals": {"aws:SourceAccount": stack.account},
            "ArnLike": {
                "aws:SourceArn": stack.format_arn(
                    service="cloudwatch",
                    resource="alarm",
                    resource_name=f"{alarm_prefix}*",
                    arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                )
            },
        }
        self.key = kms.Key(
            self,
            "Key",
            description=f"jumpstream: encrypts the alarm topic of the alarms {alarm_prefix}*",
            enable_key_rotation=True,
            removal_policy=cdk.RemovalPolicy.DESTROY,
            pending_window=cdk.Duration.days(KEY_PENDING_DAYS),
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublish",
                principals=[cloudwatch_service],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions=only_these_alarms,
            )
        )
        self.topic = sns.Topic(self, "Topic", enforce_ssl=True, master_key=self.key)
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublish",
                principals=[cloudwatch_service],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions=only_these_alarms,
            )
        )
        self.topic.add_subscription(subscriptions.EmailSubscription(email))


def _topic(scope: Construct, email: str | None, alarm_prefix: str) -> sns.ITopic | None:
    """The alarm topic for `email`, or None when nobody asked to be told."""
    if email is None:
        return None
    return _AlarmTopic(scope, "Notify", email=email, alarm_prefix=alarm_prefix).topic


def _notify(alarms: list[cloudwatch.Alarm], topic: sns.ITopic | None) -> None:
    if topic is None:
        return
    for alarm in alarms:
        alarm.add_alarm_action(actions.SnsAction(topic))
        alarm.add_ok_action(actions.SnsAction(topic))


def _alarm(
    scope: Construct,
    construct_id: str,
    *,
    name: str,
    metric: cloudwatch.IMetric,
    threshold: float,
    description: str,
    evaluation_periods: int = 5,
    datapoints: int = 3,
) -> cloudwatch.Alarm:
    """Most of `datapoints` of the last `evaluation_periods` minutes at or above `threshold`;
    no traffic is no evidence, so missing data never alarms. Named, so an operator finds an
    environment's alarms by its prefix and the alarm topic admits exactly them."""
    return cloudwatch.Alarm(
        scope,
        construct_id,
        alarm_name=name,
        metric=metric,
        threshold=threshold,
        evaluation_periods=evaluation_periods,
        datapoints_to_alarm=datapoints,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        alarm_description=description,
    )


class EndpointAlarms(Construct):
    """The endpoint's alarms: failed invocations, slow answers, GPU memory and disk, and for an
    inference component, callers refused for too long. Each is named `<endpoint>-<what>`.

    The GPU-memory threshold is a percent of one GPU; `metrics` knows the instance's GPUs.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        metrics: EndpointMetrics,
        thresholds: AlarmThresholds,
        alarm_email: str | None = None,
        cold_start_seconds: int | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        endpoint_name = metrics.endpoint_name
        inference_component_name = metrics.inference_component_name
        gpus = metrics.gpus
        prefix = f"{endpoint_name}-"
        # The container's own log group: the component's, or else the endpoint's.
        logs = log_group_names(endpoint_name, inference_component_name)[-1]
        # InvocationModelErrors counts every invocation the model did not answer with a 2xx
        # (its 4xx and 5xx, broken responses, timeouts): Invocation5XXErrors is a part of it,
        # so adding the two would count a 5xx twice.
        self.errors = _alarm(
            self,
            "Errors",
            name=f"{prefix}errors",
            metric=metrics.invocations("InvocationModelErrors", "Sum", period=_FIVE_MINUTES),
            threshold=thresholds.endpoint_errors,
            evaluation_periods=1,
            datapoints=1,
            description=(
                f"Endpoint {endpoint_name}: {thresholds.endpoint_errors} or more invocations "
                "failed in 5 minutes (InvocationModelErrors: the model answered other than 2xx, "
                f"broke its response or timed out). Look at the log group {logs} for the "
                "container's own error; Invocation5XXErrors on the dashboard says how many of "
                "them were the model's 5xx."
            ),
        )
        self.latency = _alarm(
            self,
            "ModelLatency",
            name=f"{prefix}model-latency",
            metric=metrics.invocations("ModelLatency", "p90", period=_FIVE_MINUTES),
            threshold=thresholds.model_latency_seconds * 1_000_000,  # microseconds
            evaluation_periods=3,
            datapoints=2,
            description=(
                f"Endpoint {endpoint_name}: 90% of invocations took up to "
                f"{thresholds.model_latency_seconds:g} s or more. Answers got longer (raise the "
                "threshold if max_new_tokens grew) or the GPUs are saturated: look at "
                "GPUUtilization and concurrent requests, and consider more instances."
            ),
        )
        per_gpu_words = (
            "GPUMemoryUtilization of its one GPU"
            if gpus == 1
            else f"GPUMemoryUtilization, the sum over its {gpus} GPUs, divided by {gpus}"
        )
        self.gpu_memory = _alarm(
            self,
            "GpuMemory",
            name=f"{prefix}gpu-memory",
            metric=metrics.gpu(
                "GPUMemoryUtilization",
                "Maximum",
                "GPU memory (% of each GPU, the instance's average)",
            ),
            threshold=thresholds.gpu_memory_percent,
            description=(
                f"Endpoint {endpoint_name}: GPU memory is {thresholds.gpu_memory_percent:g}% full "
                f"or more on an instance ({per_gpu_words}). TGI reserves most of it at "
                f"start; all of it means requests may fail with out-of-memory errors: check "
                f"{logs}, lower MAX_TOTAL_TOKENS or MAX_BATCH_TOTAL_TOKENS, or choose an "
                "instance type with more GPU memory."
            ),
        )
        self.disk = _alarm(
            self,
            "Disk",
            name=f"{prefix}disk",
            metric=metrics.instances("DiskUtilization", "Maximum"),
            threshold=thresholds.disk_percent,
            description=(
                f"Endpoint {endpoint_name}: an instance's disk is {thresholds.disk_percent:g}% "
                f"full or more. The model's weights and logs live there: check {logs}, and "
                "choose an instance type with a larger volume if it keeps growing."
            ),
        )
        self.alarms = [self.errors, self.latency, self.gpu_memory, self.disk]
        if inference_component_name:
            if thresholds.no_capacity_minutes is None and cold_start_seconds is None:
                raise ValueError("an inference component's alarms need cold_start_seconds")
            minutes = thresholds.no_capacity_minutes or math.ceil(cold_start_seconds / 60)
            # Five-minute periods: a caller retrying after Retry-After and a backoff may skip a
            # minute, never five, so a wait that goes on is not reset by one quiet minute.
            periods = math.ceil(minutes / NO_CAPACITY_PERIOD_MINUTES)
            self.no_capacity: cloudwatch.Alarm | None = _alarm(
                self,
                "NoCapacity",
                name=f"{prefix}no-capacity",
                metric=metrics.invocations(
                    "NoCapacityInvocationFailures",
                    "Sum",
                    period=cdk.Duration.minutes(NO_CAPACITY_PERIOD_MINUTES),
                ),
                threshold=1,
                evaluation_periods=periods,
                datapoints=periods,
                description=(
                    f"Inference component {inference_component_name}: SageMaker has refused "
                    f"calls for want of a copy in every {NO_CAPACITY_PERIOD_MINUTES} minutes of "
                    f"the last {periods * NO_CAPACITY_PERIOD_MINUTES}, longer than a copy may "
                    "take to start. Look at the component's status and failure "
                    "reason (aws sagemaker describe-inference-component), the endpoint's events, "
                    f"the service quota for the instance type, and {logs}."
                ),
            )
            self.alarms.append(self.no_capacity)
        else:
            self.no_capacity = None
        _notify(self.alarms, _topic(self, alarm_email, prefix))


class RelayAlarms(Construct):
    """The relay's alarms: slow first tokens, failed answers, callers turned away, invocations
    about to be cut off. Each is named `jumpstream-<env>-relay-<what>`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        metrics: RelayMetrics,
        function: lambda_.IFunction,
        timeout_seconds: int,
        thresholds: AlarmThresholds,
        alarm_email: str | None = None,
        managed_instances: bool = False,
    ) -> None:
        super().__init__(scope, construct_id)
        environment = metrics.environment
        # What turns callers away: the reserved concurrency (one request per execution
        # environment), or the capacity provider not keeping up (Lambda Managed Instances).
        throttled = (
            "the capacity provider had no room: traffic more than doubled within minutes "
            "(Lambda scales managed instances on CPU, asynchronously) or max_vcpus was reached. "
            "Raise relay.managed_instances.max_vcpus or ramp traffic up more slowly."
            if managed_instances
            else "the relay's reserved concurrency was reached. Raise "
            "relay.reserved_concurrency (and the endpoint's capacity with it) or slow the "
            "callers down."
        )
        prefix = f"{environment_prefix(environment)}-relay-"
        self.ttft = _alarm(
            self,
            "TimeToFirstToken",
            name=f"{prefix}time-to-first-token",
            metric=metrics.metric(Metric.TIME_TO_FIRST_TOKEN, "p90", period=_FIVE_MINUTES),
            threshold=thresholds.time_to_first_token_seconds * 1000,
            evaluation_periods=3,
            datapoints=2,
            description=(
                f"{environment}: 90% of callers waited {thresholds.time_to_first_token_seconds:g}"
                " s or more for the first token. The model is queueing (look at the endpoint's "
                "concurrent requests and GPUUtilization; add instances) or prompts got long."
            ),
        )
        self.errors = _alarm(
            self,
            "RelayErrors",
            name=f"{prefix}errors",
            metric=metrics.metric(Metric.ERRORS, "Sum", period=_FIVE_MINUTES),
            threshold=thresholds.relay_errors,
            evaluation_periods=1,
            datapoints=1,
            description=(
                f"{environment}: {thresholds.relay_errors} or more answers failed in 5 minutes "
                "(SageMaker, the model or the relay; callers' own 4xx are not counted). The "
                "dashboard splits them by error type; each request's line in the relay "
                "function's log group says what happened (error_type, error_detail)."
            ),
        )
        self.throttles = _alarm(
            self,
            "Throttles",
            name=f"{prefix}throttles",
            metric=function.metric_throttles(statistic="Sum", period=PERIOD),
            threshold=1,
            description=f"{environment}: callers were turned away because {throttled}",
        )
        self.duration = _alarm(
            self,
            "NearTimeout",
            name=f"{prefix}near-timeout",
            metric=function.metric_duration(statistic="Maximum", period=PERIOD),
            threshold=round(timeout_seconds * 1000 * thresholds.duration_share_of_timeout),
            evaluation_periods=5,
            datapoints=1,
            description=(
                f"{environment}: a relay invocation ran to "
                f"{thresholds.duration_share_of_timeout:.0%} of the function's {timeout_seconds}"
                " s timeout: answers are about to be cut off. Lower max_new_tokens_limit, or "
                "look for a model that has slowed down (tokens per second on the dashboard)."
            ),
        )
        self.alarms = [self.ttft, self.errors, self.throttles, self.duration]
        _notify(self.alarms, _topic(self, alarm_email, prefix))
