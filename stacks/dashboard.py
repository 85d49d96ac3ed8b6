"""The environment's dashboard: what its users feel (waits, speed, failures) beside its fleet.

Three rows and the alarms: the relay's traffic and speed, failures by kind, and the endpoint's
fleet beside the relay's own concurrency; with API keys, a row of the top keys between failures
and fleet (key_insights.py). Every other widget reads the metrics alarms read (metrics.py), and
the alarm thresholds are drawn where an alarm has one.
"""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from constructs import Construct
from streamer.contract import Metric

from stacks.availability import partition
from stacks.deployment import AlarmThresholds, environment_prefix
from stacks.metrics import PERIOD, EndpointMetrics, RelayMetrics

__all__ = ["EnvironmentDashboard", "dashboard_url"]

_WIDTH = 8  # three graphs a row


def dashboard_url(region: str, name: str) -> str:
    """The CloudWatch console page of a dashboard."""
    domain = "console.amazonaws.cn" if partition(region) == "aws-cn" else "console.aws.amazon.com"
    return f"https://{region}.{domain}/cloudwatch/home?region={region}#dashboards/dashboard/{name}"


class EnvironmentDashboard(cloudwatch.Dashboard):
    """`jumpstream-<env>`: the relay and the endpoint side by side, and the alarms' states.

    A Dashboard itself rather than a construct holding one: created with the id "Dashboard"
    under the relay's alarms, its resource keeps the logical ID it has always had, so an upgrade
    updates it in place. (A new logical ID would create a dashboard of the same fixed name, then
    delete the old resource, and with it the dashboard.)
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        environment: str,
        endpoint: EndpointMetrics,
        relay: RelayMetrics,
        function: lambda_.IFunction,
        thresholds: AlarmThresholds,
        alarms: list[cloudwatch.IAlarm],
        top_keys: Sequence[cloudwatch.IWidget] = (),
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            # Fixed per environment, so the stack's outputs and the docs can name it.
            dashboard_name=environment_prefix(environment),
            default_interval=cdk.Duration.hours(3),
        )
        self.add_widgets(*self._speed(endpoint, relay, thresholds))
        self.add_widgets(*self._failures(endpoint, relay))
        if top_keys:
            self.add_widgets(*top_keys)
        self.add_widgets(*self._fleet(endpoint, function, thresholds))
        self.add_widgets(
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=alarms, width=24, height=4)
        )

    @staticmethod
    def _speed(
        endpoint: EndpointMetrics, relay: RelayMetrics, thresholds: AlarmThresholds
    ) -> list[cloudwatch.IWidget]:
        """Requests, how long callers wait for the first token, and how fast tokens come."""
        return [
            cloudwatch.GraphWidget(
                title="Requests (relay) and invocations (SageMaker)",
                left=[relay.metric(Metric.REQUESTS, "Sum")],
                right=[endpoint.invocations("Invocations", "Sum")],
                width=_WIDTH,
            ),
            cloudwatch.GraphWidget(
                title="Time to first token (ms)",
                left=[
                    relay.metric(Metric.TIME_TO_FIRST_TOKEN, "p50"),
                    relay.metric(Metric.TIME_TO_FIRST_TOKEN, "p90"),
                ],
                left_annotations=[
                    cloudwatch.HorizontalAnnotation(
                        value=thresholds.time_to_first_token_seconds * 1000, label="alarm"
                    )
                ],
                width=_WIDTH,
            ),
            cloudwatch.GraphWidget(
                title="Tokens per second and gaps between tokens (ms)",
                left=[relay.metric(Metric.TOKENS_PER_SECOND, "p50")],
                right=[
                    relay.metric(Metric.INTER_TOKEN_LATENCY_P50, "Average"),
                    relay.metric(Metric.INTER_TOKEN_LATENCY_P99, "Maximum"),
                ],
                width=_WIDTH,
            ),
        ]

    @staticmethod
    def _failures(endpoint: EndpointMetrics, relay: RelayMetrics) -> list[cloudwatch.IWidget]:
        """The relay's errors and refusals by type, callers leaving, the endpoint's errors."""
        component = endpoint.inference_component_name is not None
        return [
            cloudwatch.GraphWidget(
                title="Errors by type",
                left=[relay.by_error_type(Metric.ERRORS)],
                stacked=True,
                width=_WIDTH,
            ),
            cloudwatch.GraphWidget(
                title="Refused (4xx before any text) by type",
                left=[relay.by_error_type(Metric.REFUSED)],
                stacked=True,
                width=_WIDTH,
            ),
            cloudwatch.GraphWidget(
                title=(
                    "Client disconnects; endpoint errors and calls refused for want of a copy"
                    if component
                    else "Client disconnects and endpoint errors"
                ),
                left=[relay.metric(Metric.CLIENT_DISCONNECTS, "Sum")],
                right=[
                    endpoint.invocations("Invocation5XXErrors", "Sum"),
                    endpoint.invocations("InvocationModelErrors", "Sum"),
                    *(
                        [endpoint.invocations("NoCapacityInvocationFailures", "Sum")]
                        if component
                        else []
                    ),
                ],
                width=_WIDTH,
            ),
        ]

    @staticmethod
    def _fleet(
        endpoint: EndpointMetrics, function: lambda_.IFunction, thresholds: AlarmThresholds
    ) -> list[cloudwatch.IWidget]:
        """The GPUs and disk, the instances and their load, and the relay's streams."""
        return [
            cloudwatch.GraphWidget(
                title="GPU utilization, GPU memory (% of each GPU) and disk (%)",
                left=[
                    endpoint.gpu(
                        "GPUUtilization", "Average", "GPU utilization (average of the instances)"
                    ),
                    endpoint.gpu(
                        "GPUMemoryUtilization", "Maximum", "GPU memory (the fullest instance)"
                    ),
                    endpoint.instances("DiskUtilization", "Maximum"),
                ],
                left_annotations=[
                    cloudwatch.HorizontalAnnotation(
                        value=thresholds.gpu_memory_percent, label="GPU memory alarm"
                    )
                ],
                width=_WIDTH,
            ),
            cloudwatch.GraphWidget(
                title="Endpoint: instances, concurrent requests, model latency (µs)",
                left=[
                    # Each instance reports its CPU once a minute: the samples count instances.
                    endpoint.instances("CPUUtilization", "SampleCount").with_(
                        label="instances reporting"
                    ),
                    endpoint.concurrency(),
                ],
                right=[endpoint.invocations("ModelLatency", "p90")],
                width=_WIDTH,
            ),
            cloudwatch.GraphWidget(
                title="Relay: concurrent streams and duration (ms)",
                left=[function.metric("ConcurrentExecutions", statistic="Maximum", period=PERIOD)],
                right=[function.metric_duration(statistic="p90", period=PERIOD)],
                width=_WIDTH,
            ),
        ]
