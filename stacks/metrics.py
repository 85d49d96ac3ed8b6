"""The metrics an environment is watched by, named once for its alarms and its dashboard.

SageMaker publishes an endpoint's invocation metrics (AWS/SageMaker) by endpoint and variant, or
by inference component on a component endpoint, and its instance metrics
(/aws/sagemaker/Endpoints) by endpoint and variant in both modes; the relay publishes its own
(observability.py) by environment and model. `EndpointMetrics` and `RelayMetrics` build each
metric with exactly those dimensions, so an alarm and a dashboard widget on the same figure read
the same series.
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from streamer.contract import METRIC_NAMESPACE, Dimension

from stacks.deployment import VARIANT_NAME, EnvironmentConfig

__all__ = ["PERIOD", "EndpointMetrics", "RelayMetrics", "per_gpu"]

_SAGEMAKER = "AWS/SageMaker"
_INSTANCES = "/aws/sagemaker/Endpoints"
#: One minute: the finest period SageMaker's and the relay's metrics have.
PERIOD = cdk.Duration.minutes(1)


def per_gpu(metric: cloudwatch.Metric, gpus: int, label: str) -> cloudwatch.IMetric:
    """A GPU metric of SageMaker's as a percent of one GPU.

    SageMaker adds a GPU metric up over the instance's GPUs (0-400% on four), so a threshold
    per GPU would never clear on a multi-GPU instance; divided by the GPU count it is the
    average over them, on the same 0-100 scale as the threshold and the dashboard's annotation.
    """
    if gpus == 1:
        return metric.with_(label=label)
    # The id names the metric: a graph may divide several, and ids must differ within it.
    metric_id = metric.metric_name.lower()
    return cloudwatch.MathExpression(
        expression=f"{metric_id} / {gpus}",
        using_metrics={metric_id: metric},
        label=label,
        period=metric.period,
    )


def _metric(
    namespace: str,
    name: str,
    dimensions: dict[str, str],
    statistic: str,
    period: cdk.Duration,
) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace=namespace,
        metric_name=name,
        dimensions_map=dimensions,
        statistic=statistic,
        period=period,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class EndpointMetrics:
    """SageMaker's metrics of one endpoint (and its inference component, if it has one)."""

    endpoint_name: str
    variant_name: str
    inference_component_name: str | None = None
    #: GPUs per instance: SageMaker's GPU metrics are their sum.
    gpus: int = 1

    @classmethod
    def of(cls, config: EnvironmentConfig) -> EndpointMetrics:
        """The metrics of an environment's endpoint (both of its stacks read them)."""
        return cls(
            endpoint_name=config.endpoint_name,
            variant_name=VARIANT_NAME,
            inference_component_name=config.inference_component_name,
            gpus=config.gpus,
        )

    @property
    def invocation_dimensions(self) -> dict[str, str]:
        """By component on a component endpoint, by endpoint and variant otherwise."""
        if self.inference_component_name:
            return {"InferenceComponentName": self.inference_component_name}
        return self.instance_dimensions

    @property
    def instance_dimensions(self) -> dict[str, str]:
        return {"EndpointName": self.endpoint_name, "VariantName": self.variant_name}

    def invocations(
        self, name: str, statistic: str, *, period: cdk.Duration = PERIOD
    ) -> cloudwatch.Metric:
        """An invocation metric (AWS/SageMaker): Invocations, ModelLatency, errors, ..."""
        return _metric(_SAGEMAKER, name, self.invocation_dimensions, statistic, period)

    def instances(
        self, name: str, statistic: str, *, period: cdk.Duration = PERIOD
    ) -> cloudwatch.Metric:
        """An instance metric (/aws/sagemaker/Endpoints): CPU, GPU, memory, disk."""
        return _metric(_INSTANCES, name, self.instance_dimensions, statistic, period)

    def gpu(self, name: str, statistic: str, label: str) -> cloudwatch.IMetric:
        """A GPU metric as a percent of one GPU (see per_gpu)."""
        return per_gpu(self.instances(name, statistic), self.gpus, label)

    def concurrency(self) -> cloudwatch.Metric:
        """Requests in flight per copy of the model: per instance's model, or per copy."""
        name = (
            "ConcurrentRequestsPerCopy"
            if self.inference_component_name
            else "ConcurrentRequestsPerModel"
        )
        return self.invocations(name, "Maximum")


@dataclass(frozen=True, slots=True, kw_only=True)
class RelayMetrics:
    """The relay's own metrics for one environment and model (names: the contract's Metric)."""

    environment: str
    model_id: str

    def metric(
        self, name: str, statistic: str, *, period: cdk.Duration = PERIOD
    ) -> cloudwatch.Metric:
        dimensions = {Dimension.ENVIRONMENT: self.environment, Dimension.MODEL: self.model_id}
        return _metric(METRIC_NAMESPACE, name, dimensions, statistic, period)

    def by_error_type(self, name: str) -> cloudwatch.MathExpression:
        """One line per ErrorType of a relay metric: the types are not known in advance."""
        return cloudwatch.MathExpression(
            expression=(
                f"SEARCH('{{{METRIC_NAMESPACE},{Dimension.ENVIRONMENT},{Dimension.ERROR_TYPE},"
                f'{Dimension.MODEL}}} MetricName="{name}" '
                f"{Dimension.ENVIRONMENT}=\"{self.environment}\"', 'Sum', 60)"
            ),
            label="",
            period=PERIOD,
        )
