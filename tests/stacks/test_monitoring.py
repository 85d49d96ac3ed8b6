"""Alarms and the dashboard: over exactly the metrics SageMaker, Lambda and the relay emit.

The relay's metric names are not typed here: they are read from what the relay's own
observability code puts in a request's log line, so a renamed metric fails this test.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Match, Template
from streamer.contract import METRIC_NAMESPACE
from streamer.observability import MetricsContext, RequestRecord, request_metrics

from stacks.config import resolve_environment
from stacks.dashboard import EnvironmentDashboard, dashboard_url
from stacks.deployment import AlarmThresholds
from stacks.environment import add_environment
from stacks.errors import ConfigError
from stacks.metrics import EndpointMetrics, RelayMetrics
from stacks.monitoring import EndpointAlarms, RelayAlarms
from stacks.nag import enable_nag
from tests.stacks.test_lint import lint

# What SageMaker and Lambda publish, with the dimensions the alarms and widgets use. On an
# inference-component endpoint, SageMaker's invocation metrics are by component, and there are
# per-copy concurrency and refusals for want of a copy. Sources: SageMaker's "Amazon SageMaker AI
# metrics in Amazon CloudWatch" (the AWS/SageMaker invocation metrics, with the dimension sets
# EndpointName+VariantName and InferenceComponentName; ConcurrentRequestsPerCopy), and "Scale an
# endpoint to zero instances" (NoCapacityInvocationFailures by InferenceComponentName). The
# instance metrics (/aws/sagemaker/Endpoints) stay by endpoint and variant in both modes.
SAGEMAKER_METRICS = {
    "AWS/SageMaker": {
        "Invocations",
        "Invocation5XXErrors",
        "InvocationModelErrors",
        "ModelLatency",
        "ConcurrentRequestsPerModel",
    },
    "/aws/sagemaker/Endpoints": {
        "CPUUtilization",
        "GPUUtilization",
        "GPUMemoryUtilization",
        "DiskUtilization",
    },
    "AWS/Lambda": {"Throttles", "Duration", "ConcurrentExecutions"},
}
COMPONENT = "jumpstream-t-ic-g5-2xlarge-model"
COMPONENT_METRICS = {
    **SAGEMAKER_METRICS,
    "AWS/SageMaker": SAGEMAKER_METRICS["AWS/SageMaker"] - {"ConcurrentRequestsPerModel"}
    | {"ConcurrentRequestsPerCopy", "NoCapacityInvocationFailures"},
}


def relay_emits() -> set[str]:
    """Every metric name the relay writes, from a request that did all there is to do."""
    record = RequestRecord(request_id="r", method="POST", path="/", started=0.0, status=200)
    record.first_text_at = 0.1
    record.text_times = [0.1, 0.2, 0.3]
    record.client_disconnected = True
    record.error_type = "model_error"
    context = MetricsContext(namespace=METRIC_NAMESPACE, environment="t", model="m")
    names = set()
    for directive in request_metrics(record, context)["_aws"]["CloudWatchMetrics"]:
        names |= {metric["Name"] for metric in directive["Metrics"]}
    refused = RequestRecord(request_id="r", method="POST", path="/", status=422)
    refused.error_type = "invalid_request"
    for directive in request_metrics(refused, context)["_aws"]["CloudWatchMetrics"]:
        names |= {metric["Name"] for metric in directive["Metrics"]}
    return names


def monitored_stack(
    alarm_email: str | None = None,
    *,
    outdir: Path | None = None,
    inference_component_name: str | None = None,
    gpus: int = 4,
) -> tuple[cdk.Stack, Template]:
    app = cdk.App(outdir=str(outdir) if outdir else None)
    enable_nag(app)
    stack = cdk.Stack(app, "monitored", env=cdk.Environment(region="eu-west-1"))
    # The relay construct has its own tests; here its function only has to be named.
    function = lambda_.Function.from_function_name(stack, "Relay", "jumpstream-t-relay")
    thresholds = AlarmThresholds(time_to_first_token_seconds=4)
    endpoint = EndpointMetrics(
        endpoint_name="jumpstream-t",
        variant_name="AllTraffic",
        inference_component_name=inference_component_name,
        gpus=gpus,
    )
    EndpointAlarms(
        stack,
        "EndpointAlarms",
        metrics=endpoint,
        thresholds=thresholds,
        alarm_email=alarm_email,
        cold_start_seconds=2400 if inference_component_name else None,
    )
    relay = RelayMetrics(environment="t", model_id="huggingface-llm-mistral-7b-instruct")
    alarms = RelayAlarms(
        stack,
        "Monitoring",
        metrics=relay,
        function=function,
        timeout_seconds=163,
        thresholds=thresholds,
        alarm_email=alarm_email,
    )
    EnvironmentDashboard(
        alarms,
        "Dashboard",
        environment="t",
        endpoint=endpoint,
        relay=relay,
        function=function,
        thresholds=thresholds,
        alarms=alarms.alarms,
    )
    return stack, Template.from_stack(stack)


def _alarms(template: Template) -> list[dict[str, Any]]:
    return [r["Properties"] for r in template.find_resources("AWS::CloudWatch::Alarm").values()]


def _alarm_metrics(alarm: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(namespace, name, dimensions) of every metric an alarm reads."""
    if "MetricName" in alarm:
        dims = {d["Name"]: d["Value"] for d in alarm.get("Dimensions", [])}
        return [(alarm["Namespace"], alarm["MetricName"], dims)]
    found = []
    for query in alarm["Metrics"]:
        if "MetricStat" in query:
            metric = query["MetricStat"]["Metric"]
            dims = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
            found.append((metric["Namespace"], metric["MetricName"], dims))
    return found


@pytest.mark.parametrize(
    ("component", "emitted", "count"),
    [(None, SAGEMAKER_METRICS, 8), (COMPONENT, COMPONENT_METRICS, 9)],
    ids=["instance", "inference-component"],
)
def test_every_alarm_reads_a_metric_that_is_emitted_with_those_dimensions(
    component: str | None, emitted: dict[str, set[str]], count: int
) -> None:
    _, template = monitored_stack(inference_component_name=component)
    alarms = _alarms(template)
    assert len(alarms) == count
    relay = relay_emits()
    instances = {"EndpointName": "jumpstream-t", "VariantName": "AllTraffic"}
    for alarm in alarms:
        for namespace, name, dimensions in _alarm_metrics(alarm):
            if namespace == METRIC_NAMESPACE:
                assert name in relay, name
                assert dimensions == {
                    "Environment": "t",
                    "Model": "huggingface-llm-mistral-7b-instruct",
                }
            else:
                assert name in emitted[namespace], (namespace, name)
                if namespace == "AWS/Lambda":
                    assert set(dimensions) == {"FunctionName"}
                elif namespace == "AWS/SageMaker" and component:
                    assert dimensions == {"InferenceComponentName": component}
                else:
                    assert dimensions == instances
        # Each says what to do, and no traffic never raises one.
        assert len(alarm["AlarmDescription"]) > 80
        assert alarm["TreatMissingData"] == "notBreaching"


def test_thresholds_are_the_configured_ones_in_each_metrics_unit() -> None:
    _, template = monitored_stack()
    by_metric = {
        _alarm_metrics(alarm)[0][1]: alarm for alarm in _alarms(template) if "MetricName" in alarm
    }
    assert by_metric["TimeToFirstToken"]["Threshold"] == 4000  # milliseconds
    assert by_metric["TimeToFirstToken"]["ExtendedStatistic"] == "p90"
    assert by_metric["ModelLatency"]["Threshold"] == 180_000_000  # microseconds
    assert by_metric["Duration"]["Threshold"] == round(163 * 1000 * 0.9)
    assert by_metric["Throttles"]["Threshold"] == 1


@pytest.mark.parametrize(
    ("component", "emitted"),
    [(None, SAGEMAKER_METRICS), (COMPONENT, COMPONENT_METRICS)],
    ids=["instance", "inference-component"],
)
def test_the_dashboard_shows_only_emitted_metrics(
    component: str | None, emitted: dict[str, set[str]]
) -> None:
    _, template = monitored_stack(inference_component_name=component)
    (dashboard,) = template.find_resources("AWS::CloudWatch::Dashboard").values()
    assert dashboard["Properties"]["DashboardName"] == "jumpstream-t"
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    shown = {  # (namespace, name) of every SageMaker and Lambda metric a widget plots
        (namespace, name)
        for namespace, names in COMPONENT_METRICS.items()
        for name in names | SAGEMAKER_METRICS[namespace]
        if f'\\"{namespace}\\",\\"{name}\\"' in body
    }
    assert all(name in emitted[namespace] for namespace, name in shown), shown
    by_component = f'\\"InferenceComponentName\\",\\"{component}\\"'
    assert (by_component in body) == (component is not None)
    relay = relay_emits()
    for name in relay - {"Refused", "Errors"}:
        assert f'\\"{METRIC_NAMESPACE}\\",\\"{name}\\"' in body, name
    assert 'MetricName=\\\\\\"Errors\\\\\\"' in body  # by type, with SEARCH
    for namespace, names in emitted.items():
        for name in names - {"Throttles"}:
            assert f'\\"{name}\\"' in body, (namespace, name)


def test_no_topic_without_an_email_and_one_encrypted_topic_per_construct_with_it() -> None:
    _, quiet = monitored_stack()
    quiet.resource_count_is("AWS::SNS::Topic", 0)
    assert all("AlarmActions" not in alarm for alarm in _alarms(quiet))
    _, told = monitored_stack("oncall@example.com")
    told.resource_count_is("AWS::SNS::Subscription", 2)
    told.has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "oncall@example.com"}
    )
    told.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": Match.any_value()})
    assert all(alarm["AlarmActions"] and alarm["OKActions"] for alarm in _alarms(told))


@pytest.mark.parametrize(
    ("alarm_email", "component"),
    [(None, None), ("oncall@example.com", None), (None, COMPONENT)],
)
def test_lint_and_nag_clean(alarm_email: str | None, component: str | None, tmp_path: Path) -> None:
    stack, _ = monitored_stack(alarm_email, outdir=tmp_path, inference_component_name=component)
    assembly = cdk.App.of(stack).synth()  # type: ignore[union-attr]  # cdk-nag fails this on a finding
    template = Path(assembly.directory) / stack.template_file
    assert lint([str(template)], "eu-west-1") == []


def test_the_dashboard_link_points_at_the_console_of_its_partition() -> None:
    assert dashboard_url("eu-west-1", "jumpstream-dev") == (
        "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1"
        "#dashboards/dashboard/jumpstream-dev"
    )
    assert dashboard_url("cn-north-1", "d").startswith("https://cn-north-1.console.amazonaws.cn/")


def test_an_environments_alarms_and_email_come_from_its_config() -> None:
    config = resolve_environment(
        "t",
        {
            "region": "eu-west-1",
            "model_id": "huggingface-llm-mistral-7b-instruct",
            "alarm_email": "oncall@example.com",
            "alarms": {"time_to_first_token_seconds": 3, "endpoint_errors": 2},
        },
    )
    assert config.alarm_email == "oncall@example.com"
    assert config.alarms == AlarmThresholds(time_to_first_token_seconds=3.0, endpoint_errors=2)
    assert (
        resolve_environment(
            "t", {"region": "eu-west-1", "model_id": "huggingface-llm-mistral-7b-instruct"}
        ).alarms
        == AlarmThresholds()
    )


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ({"alarms": {"ttft": 3}}, "alarms: unknown setting(s) ttft"),
        ({"alarms": {"endpoint_errors": 0}}, "alarms.endpoint_errors must be a positive number"),
        ({"alarms": {"endpoint_errors": 2.5}}, "alarms.endpoint_errors must be a whole number"),
        ({"alarms": {"disk_percent": 120}}, "alarms.disk_percent is a percentage"),
        ({"alarms": {"duration_share_of_timeout": 1.5}}, "a share of the timeout: below 1"),
        ({"alarms": {"relay_errors": True}}, "alarms.relay_errors must be a positive number"),
        ({"alarm_email": "oncall"}, "alarm_email must be an email address"),
    ],
)
def test_bad_alarm_settings_fail_with_one_line(settings: dict[str, Any], says: str) -> None:
    base = {"region": "eu-west-1", "model_id": "huggingface-llm-mistral-7b-instruct"}
    with pytest.raises(ConfigError) as caught:
        resolve_environment("t", {**base, **settings})
    assert says in str(caught.value)
    assert "\n" not in str(caught.value)


def test_the_stacks_wire_monitoring_to_the_relays_own_settings() -> None:
    app = cdk.App(context={"aws:cdk:bundling-stacks": []})
    config = resolve_environment(
        "t", {"region": "eu-west-1", "model_id": "huggingface-llm-mistral-7b-instruct"}
    )
    endpoint_stack, relay_stack = add_environment(app, config)
    endpoint = Template.from_stack(endpoint_stack)
    relay = Template.from_stack(relay_stack)
    endpoint.resource_count_is("AWS::CloudWatch::Alarm", 2 + 4)  # rollback + EndpointAlarms
    relay.resource_count_is("AWS::CloudWatch::Alarm", 4)
    relay.resource_count_is("AWS::CloudWatch::Dashboard", 1)
    relay.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Environment": {
                "Variables": Match.object_like(
                    {
                        "POWERTOOLS_METRICS_NAMESPACE": METRIC_NAMESPACE,
                        "JUMPSTREAM_ENVIRONMENT": "t",
                    }
                )
            }
        },
    )
    relay.has_output("DashboardName", {"Value": "jumpstream-t"})
    relay.has_output("DashboardUrl", {"Value": dashboard_url("eu-west-1", "jumpstream-t")})
    ((log_group_id, _),) = relay.find_resources("AWS::Logs::LogGroup").items()
    relay.has_output("LogGroupName", {"Value": {"Ref": log_group_id}})
    relay.has_resource_properties(
        "AWS::Lambda::Function", {"LoggingConfig": {"LogGroup": {"Ref": log_group_id}}}
    )


def _by_name(template: Template) -> dict[str, dict[str, Any]]:
    return {alarm["AlarmName"]: alarm for alarm in _alarms(template)}


@pytest.mark.parametrize("gpus", [1, 4, 8])
def test_the_gpu_memory_alarm_compares_a_percent_of_one_gpu(gpus: int) -> None:
    """SageMaker adds GPUMemoryUtilization up over the instance's GPUs (0-400% on four): TGI's
    ~90% of each GPU would read ~360% against a per-GPU threshold of 99 and never clear."""
    _, template = monitored_stack(gpus=gpus)
    alarm = _by_name(template)["jumpstream-t-gpu-memory"]
    assert alarm["Threshold"] == 99  # the configured percent, unchanged
    if gpus == 1:
        assert [name for _, name, _ in _alarm_metrics(alarm)] == ["GPUMemoryUtilization"]
        assert not any("Expression" in query for query in alarm.get("Metrics", []))
        assert "its one GPU" in alarm["AlarmDescription"]
    else:
        (math_query,) = [q for q in alarm["Metrics"] if "Expression" in q]
        (metric_query,) = [q for q in alarm["Metrics"] if "MetricStat" in q]
        assert math_query["Expression"] == f"{metric_query['Id']} / {gpus}"
        assert math_query["ReturnData"] is not False
        assert metric_query["MetricStat"]["Metric"]["MetricName"] == "GPUMemoryUtilization"
        assert metric_query["ReturnData"] is False
        assert f"the sum over its {gpus} GPUs, divided by {gpus}" in alarm["AlarmDescription"]
    # The dashboard plots the GPU metrics on the same per-GPU scale as its annotation.
    (dashboard,) = template.find_resources("AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    assert '{\\"value\\":99,\\"label\\":\\"GPU memory alarm\\"' in body
    divided = f"gpumemoryutilization / {gpus}" in body and f"gpuutilization / {gpus}" in body
    assert divided == (gpus > 1)


def test_the_endpoint_errors_alarm_counts_each_failed_invocation_once() -> None:
    """InvocationModelErrors counts every non-2xx answer of the model (Invocation5XXErrors is a
    part of it): the alarm reads it alone, so one 5xx is one error, not two."""
    _, template = monitored_stack()
    alarm = _by_name(template)["jumpstream-t-errors"]
    assert (alarm["MetricName"], alarm["Statistic"], alarm["Period"]) == (
        "InvocationModelErrors",
        "Sum",
        300,
    )
    assert alarm["Threshold"] == 5
    assert "Metrics" not in alarm
    for other in _alarms(template):
        assert "Invocation5XXErrors" not in json.dumps(other.get("Metrics", [])), other
        assert other.get("MetricName") != "Invocation5XXErrors"


def test_alarms_are_named_by_environment_so_an_operator_and_the_topic_find_them() -> None:
    _, template = monitored_stack(inference_component_name=COMPONENT)
    assert sorted(_by_name(template)) == sorted(
        [f"jumpstream-t-{what}" for what in ("errors", "model-latency", "gpu-memory", "disk",
                                             "no-capacity")]
        + [f"jumpstream-t-relay-{what}" for what in ("time-to-first-token", "errors",
                                                      "throttles", "near-timeout")]
    )  # fmt: skip


def _statement(document: dict[str, Any], sid: str) -> dict[str, Any]:
    (statement,) = [s for s in document["Statement"] if s.get("Sid") == sid]
    return statement


def test_alarm_mail_arrives_a_key_of_its_own_lets_cloudwatch_publish_to_the_topic() -> None:
    """The AWS-managed alias/aws/sns key's policy cannot be edited and grants CloudWatch
    nothing, so an alarm cannot publish to a topic under it: each topic gets a rotating key of
    its own whose policy, like the topic's, lets CloudWatch in for this account's alarms of
    this construct only; `cdk destroy` schedules the key's deletion."""
    _, template = monitored_stack("oncall@example.com")
    resources = template.to_json()["Resources"]
    keys = {k: r for k, r in resources.items() if r["Type"] == "AWS::KMS::Key"}
    topics = [r for r in resources.values() if r["Type"] == "AWS::SNS::Topic"]
    policies = [r for r in resources.values() if r["Type"] == "AWS::SNS::TopicPolicy"]
    assert len(keys) == len(topics) == len(policies) == 2
    assert "alias/aws/sns" not in json.dumps(resources)
    prefixes = {"jumpstream-t-", "jumpstream-t-relay-"}
    for topic in topics:
        (key_id,) = [
            k for k in keys if {"Fn::GetAtt": [k, "Arn"]} == topic["Properties"]["KmsMasterKeyId"]
        ]
        key = keys[key_id]
        assert key["Properties"]["EnableKeyRotation"] is True
        assert key["Properties"]["PendingWindowInDays"] == 7
        assert (key["DeletionPolicy"], key["UpdateReplacePolicy"]) == ("Delete", "Delete")
        granted = _statement(key["Properties"]["KeyPolicy"], "CloudWatchAlarmsPublish")
        assert granted["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
        assert sorted(granted["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey*"]
        arn = json.dumps(granted["Condition"]["ArnLike"]["aws:SourceArn"])
        assert arn.count("*") == 1
        (prefix,) = [p for p in prefixes if f":alarm:{p}*" in arn]
        prefixes.discard(prefix)
        assert granted["Condition"]["StringEquals"] == {
            "aws:SourceAccount": {"Ref": "AWS::AccountId"}
        }
    assert prefixes == set()
    for policy in policies:
        publish = _statement(policy["Properties"]["PolicyDocument"], "CloudWatchAlarmsPublish")
        assert publish["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
        assert publish["Action"] == "sns:Publish"
        assert "aws:SourceArn" in publish["Condition"]["ArnLike"]
    # Every notified alarm's name falls under the pattern its topic admits.
    for name, alarm in _by_name(template).items():
        assert alarm["AlarmActions"]
        assert name.startswith("jumpstream-t-")


def test_an_upgrade_updates_the_dashboard_in_place() -> None:
    """The dashboard's name is fixed per environment: were its logical ID to change, an update
    would create a dashboard of that name, then delete the old resource and the dashboard with
    it. The ID is the one the released stacks have."""
    app = cdk.App(context={"aws:cdk:bundling-stacks": []})
    config = resolve_environment(
        "dev", {"region": "us-east-1", "model_id": "huggingface-llm-mistral-7b-instruct"}
    )
    _, relay_stack = add_environment(app, config)
    dashboards = Template.from_stack(relay_stack).find_resources("AWS::CloudWatch::Dashboard")
    assert list(dashboards) == ["MonitoringDashboard0C3675C6"]
