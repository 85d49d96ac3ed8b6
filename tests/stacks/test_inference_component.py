"""Inference-component hosting: what the config accepts, and the resources both stacks create.

The endpoint holds instances only; the model is an inference component with the catalog's GPU
count, scaled between min_copies (0 by default) and max_copies, woken from zero by an alarm on
refused calls; the relay invokes the component and may invoke only it.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from stacks.catalog import load_catalog
from stacks.config import resolve_environment, select_environments
from stacks.deployment import (
    CREATE_LIMIT_MINUTES,
    IDLE_TO_ZERO_SECONDS,
    WAKE_UP_COOLDOWN_SECONDS,
    ManagedInstances,
    ScalingConfig,
    ScalingSchedule,
    cold_start_limit_seconds,
    start_limit_problem,
)
from stacks.endpoint import COMPONENT_MIN_MEMORY_MB
from stacks.environment import add_environment
from stacks.errors import ConfigError
from stacks.nag import enable_nag
from tests.stacks.test_lint import lint

MISTRAL = "huggingface-llm-mistral-7b-instruct"
BASE = {
    "region": "eu-west-1",
    "model_id": MISTRAL,
    "instance_type": "ml.g5.2xlarge",
    "hosting": "inference-component",
}
ENDPOINT = "jumpstream-t-ic-g5-2xlarge"
COMPONENT = "jumpstream-t-ic-g5-2xlarge-model"
# GPUs per instance type, from the SageMaker Python SDK's image_uri_config/instance_gpu_info.json
# (g6, which it lacks, from AWS's G6 page): the check that a copy of any catalog model takes a
# whole instance, which the config, the cost and the managed instance limit rely on.
INSTANCE_GPUS = {
    "ml.g5.xlarge": 1, "ml.g5.2xlarge": 1, "ml.g5.4xlarge": 1, "ml.g5.8xlarge": 1,
    "ml.g5.16xlarge": 1, "ml.g5.12xlarge": 4, "ml.g5.24xlarge": 4, "ml.g5.48xlarge": 8,
    "ml.g6.xlarge": 1, "ml.g6.2xlarge": 1, "ml.g6.4xlarge": 1, "ml.g6.8xlarge": 1,
    "ml.g6.16xlarge": 1, "ml.g6.12xlarge": 4, "ml.g6.24xlarge": 4, "ml.g6.48xlarge": 8,
    "ml.p4d.24xlarge": 8, "ml.p4de.24xlarge": 8, "ml.p5.48xlarge": 8,
}  # fmt: skip
NIGHT = {"name": "night", "cron": "cron(0 20 ? * MON-FRI *)", "min_copies": 0}
MORNING = {
    "name": "morning",
    "cron": "cron(0 7 ? * MON-FRI *)",
    "min_copies": 1,
    "max_copies": 3,
    "time_zone": "Europe/Berlin",
}


def _config(**settings: Any) -> Any:
    return resolve_environment("t", {**BASE, **settings})


def _stacks(
    config: Any, outdir: Path | None = None, *, nag: bool = False
) -> tuple[list[cdk.Stack], cdk.App]:
    # The relay's asset is bundled in its own test (test_bundling.py).
    app = cdk.App(context={"aws:cdk:bundling-stacks": []}, outdir=str(outdir) if outdir else None)
    stacks = add_environment(app, config)
    if nag:
        enable_nag(app)
    return stacks, app


def _templates(config: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    (endpoint, relay), _ = _stacks(config)
    return Template.from_stack(endpoint).to_json(), Template.from_stack(relay).to_json()


def _one(template: dict[str, Any], kind: str) -> tuple[str, dict[str, Any]]:
    (found,) = [(k, r) for k, r in template["Resources"].items() if r["Type"] == kind]
    return found


def _all(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


# --- configuration -----------------------------------------------------------------------------


def test_every_catalog_model_takes_all_of_its_instances_gpus() -> None:
    for model in load_catalog().models.values():
        for instance_type, option in model.instance_types.items():
            assert option.gpus == INSTANCE_GPUS[instance_type], (model.id, instance_type)


def test_the_mode_alone_scales_to_zero_and_back_to_one_copy() -> None:
    config = _config()
    assert config.hosting == "inference-component"
    assert config.endpoint_name == ENDPOINT
    assert config.inference_component_name == COMPONENT
    assert config.scaling == ScalingConfig(min_capacity=0, max_capacity=1)
    # An instance per copy, and one more for the copy an update starts beside the old one.
    assert config.managed_instances == ManagedInstances(min_instances=0, max_instances=2)


def test_the_endpoint_and_component_are_named_by_the_instance_type() -> None:
    config = _config(instance_type="ml.p4d.24xlarge", model_id="huggingface-llm-falcon-40b-bf16")
    assert config.endpoint_name == "jumpstream-t-ic-p4d-24xlarge"
    assert config.inference_component_name == "jumpstream-t-ic-p4d-24xlarge-model"
    # SageMaker's limit on endpoint and component names, for the longest environment name and
    # every model and instance type either mode can deploy.
    for model in load_catalog().models.values():
        for instance_type in model.instance_types:
            for hosting in ("instance", "inference-component"):
                if start_limit_problem(model, components=hosting == "inference-component"):
                    continue
                config = replace(_config(), name="a" * 20, model=model, instance_type=instance_type)
                config = replace(config, hosting=hosting)
                names = [config.endpoint_name, config.inference_component_name or ""]
                assert max(map(len, names)) <= 63, names


def test_instance_hosting_stays_the_default_and_has_no_component() -> None:
    config = resolve_environment("t", {"region": "eu-west-1", "model_id": MISTRAL})
    assert (config.hosting, config.endpoint_name) == ("instance", "jumpstream-t-g5-12xlarge")
    assert config.inference_component_name is None
    assert config.managed_instances is None


def test_copies_and_schedules_are_read_from_the_scaling_table() -> None:
    config = _config(
        scaling={
            "min_copies": 1,
            "max_copies": 3,
            "target_concurrency": 2,
            "schedules": [NIGHT, MORNING],
        },
    )
    assert config.scaling == ScalingConfig(
        min_capacity=1,
        max_capacity=3,
        target_concurrency=2.0,
        schedules=(
            ScalingSchedule(name="night", cron=NIGHT["cron"], min_capacity=0),
            ScalingSchedule(
                name="morning",
                cron=MORNING["cron"],
                min_capacity=1,
                max_capacity=3,
                time_zone="Europe/Berlin",
            ),
        ),
    )
    assert config.managed_instances == ManagedInstances(min_instances=0, max_instances=4)


def test_a_schedules_higher_maximum_gets_its_instances() -> None:
    morning = {**MORNING, "max_copies": 5}
    config = _config(scaling={"max_copies": 2, "schedules": [NIGHT, morning]})
    assert config.scaling.peak_capacity == 5
    assert config.managed_instances == ManagedInstances(min_instances=0, max_instances=6)


def test_the_context_key_switches_an_environment_to_components() -> None:
    (config,) = select_environments({"env": "dev", "hosting": "inference-component"})
    assert config.hosting == "inference-component"
    assert config.endpoint_name == "jumpstream-dev-ic-g5-2xlarge"
    (default,) = select_environments({"env": "dev"})
    assert default.hosting == "instance"


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ({"hosting": "serverless"}, "hosting must be one of instance, inference-component"),
        ({"scaling": {"min_copies": 2, "max_copies": 1}}, "max_copies must be at least 2"),
        ({"scaling": {"max_copies": 0}}, "max_copies must be at least 1"),
        ({"scaling": {"min_copies": -1}}, "min_copies must be at least 0"),
        (
            {"instance_count": 2},
            'instance_count must be 1 with hosting = "inference-component", got 2',
        ),
        (
            {"scaling": {"max_instances": 2}},
            'max_instances not taken with hosting = "inference-component", which takes '
            "max_copies, min_copies (a copy takes all of an instance's GPUs",
        ),
        (
            {"scaling": {"schedules": [{**NIGHT, "min_instances": 0}]}},
            'schedules[0]: min_instances not taken with hosting = "inference-component"',
        ),
        (
            {"scaling": {"max_copies": 2, "schedules": [{**NIGHT, "min_copies": 3}]}},
            "min_copies 3 is more than max_copies 2",
        ),
        ({"scaling": {"copies": 2}}, "unknown setting(s) copies"),
        ({"alarms": {"no_capacity_minutes": 2000}}, "CloudWatch looks back one day at most"),
    ],
)
def test_bad_component_settings_fail_with_one_line(settings: dict[str, Any], says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _config(**settings)
    assert says in str(caught.value)
    assert "\n" not in str(caught.value)


# --- the endpoint stack ------------------------------------------------------------------------


def test_the_endpoint_holds_instances_that_scale_to_zero_and_no_model() -> None:
    endpoint, _ = _templates(_config(scaling={"max_copies": 2}))
    _, config = _one(endpoint, "AWS::SageMaker::EndpointConfig")
    (variant,) = config["Properties"]["ProductionVariants"]
    assert "ModelName" not in variant
    assert variant["ManagedInstanceScaling"] == {
        "Status": "ENABLED",
        "MinInstanceCount": 0,
        "MaxInstanceCount": 3,  # two copies, and room for an update's new one
    }
    assert variant["RoutingConfig"] == {"RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"}
    assert variant["InitialInstanceCount"] == 1
    (role_id,) = [
        k
        for k, r in _all(endpoint, "AWS::IAM::Role").items()
        if "sagemaker.amazonaws.com" in json.dumps(r["Properties"]["AssumeRolePolicyDocument"])
    ]
    assert config["Properties"]["ExecutionRoleArn"] == {"Fn::GetAtt": [role_id, "Arn"]}
    _, sagemaker_endpoint = _one(endpoint, "AWS::SageMaker::Endpoint")
    assert sagemaker_endpoint["Properties"]["EndpointName"] == ENDPOINT
    # The rolling update and its rollback alarms are a variant fleet's: none here.
    assert "DeploymentConfig" not in sagemaker_endpoint["Properties"]
    alarms = [
        a["Properties"].get("AlarmName", "")
        for a in _all(endpoint, "AWS::CloudWatch::Alarm").values()
    ]
    assert not any("new-fleet" in name for name in alarms)


@pytest.mark.parametrize(
    ("model_id", "instance_type"),
    [
        (MISTRAL, "ml.g5.2xlarge"),
        (MISTRAL, "ml.g5.12xlarge"),
        ("huggingface-llm-falcon-40b-bf16", "ml.g5.12xlarge"),
    ],
)
def test_the_component_carries_the_model_with_the_catalogs_gpus(
    model_id: str, instance_type: str
) -> None:
    endpoint, _ = _templates(_config(model_id=model_id, instance_type=instance_type))
    model = load_catalog().get(model_id)
    model_id_logical, _ = _one(endpoint, "AWS::SageMaker::Model")
    endpoint_id, _ = _one(endpoint, "AWS::SageMaker::Endpoint")
    _, component = _one(endpoint, "AWS::SageMaker::InferenceComponent")
    properties = component["Properties"]
    assert (
        properties["InferenceComponentName"]
        == _config(model_id=model_id, instance_type=instance_type).inference_component_name
    )
    # By attribute: created after the endpoint, deleted before it.
    assert properties["EndpointName"] == {"Fn::GetAtt": [endpoint_id, "EndpointName"]}
    assert properties["VariantName"] == "AllTraffic"
    assert properties["RuntimeConfig"] == {"CopyCount": 1}
    specification = properties["Specification"]
    assert specification["ModelName"] == {"Fn::GetAtt": [model_id_logical, "ModelName"]}
    assert specification["ComputeResourceRequirements"] == {
        "NumberOfAcceleratorDevicesRequired": model.instance_types[instance_type].gpus,
        "MinMemoryRequiredInMb": COMPONENT_MIN_MEMORY_MB,
    }
    assert specification["StartupParameters"] == {
        "ContainerStartupHealthCheckTimeoutInSeconds": model.health_check_timeout_seconds,
        "ModelDataDownloadTimeoutInSeconds": model.download_timeout_seconds,
    }
    # SageMaker's rolling batches are 5-50% of the copies, which one copy cannot have: an
    # update starts its new copy on the spare instance instead.
    assert "DeploymentConfig" not in properties


def test_another_instance_type_is_a_new_endpoint_and_component() -> None:
    """CloudFormation replaces an endpoint whose name changed, and creates a component whose
    logical id changed: neither is asked to move a component to instances without its GPUs."""
    small, _ = _templates(_config(instance_type="ml.g5.2xlarge"))
    large, _ = _templates(_config(instance_type="ml.g5.12xlarge"))
    small_id, small_component = _one(small, "AWS::SageMaker::InferenceComponent")
    large_id, large_component = _one(large, "AWS::SageMaker::InferenceComponent")
    assert small_id != large_id
    names = [c["Properties"]["InferenceComponentName"] for c in (small_component, large_component)]
    assert names == [COMPONENT, "jumpstream-t-ic-g5-12xlarge-model"]
    assert [
        _one(t, "AWS::SageMaker::Endpoint")[1]["Properties"]["EndpointName"] for t in (small, large)
    ] == [ENDPOINT, "jumpstream-t-ic-g5-12xlarge"]


def test_copies_scale_on_concurrency_down_to_zero_on_schedules() -> None:
    endpoint, _ = _templates(
        _config(scaling={"max_copies": 3, "target_concurrency": 2, "schedules": [NIGHT, MORNING]})
    )
    component_id, _ = _one(endpoint, "AWS::SageMaker::InferenceComponent")
    target_id, target = _one(endpoint, "AWS::ApplicationAutoScaling::ScalableTarget")
    properties = target["Properties"]
    assert properties["ResourceId"] == f"inference-component/{COMPONENT}"
    assert properties["ScalableDimension"] == "sagemaker:inference-component:DesiredCopyCount"
    assert (properties["MinCapacity"], properties["MaxCapacity"]) == (0, 3)
    assert component_id in target["DependsOn"]
    actions = properties["ScheduledActions"]
    assert [a["ScheduledActionName"] for a in actions] == ["night", "morning"]
    assert actions[0]["ScalableTargetAction"] == {"MinCapacity": 0}
    assert actions[1]["ScalableTargetAction"] == {"MinCapacity": 1, "MaxCapacity": 3}
    assert actions[1]["Timezone"] == "Europe/Berlin"
    policies = {
        p["Properties"]["PolicyType"]: p["Properties"]
        for p in _all(endpoint, "AWS::ApplicationAutoScaling::ScalingPolicy").values()
    }
    assert set(policies) == {"TargetTrackingScaling", "StepScaling"}
    tracking = policies["TargetTrackingScaling"]
    assert tracking["ScalingTargetId"] == {"Ref": target_id}
    assert tracking["TargetTrackingScalingPolicyConfiguration"][
        "PredefinedMetricSpecification"
    ] == {
        "PredefinedMetricType": "SageMakerInferenceComponentConcurrentRequestsPerCopyHighResolution"
    }
    assert tracking["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] == 2


def test_a_refused_call_wakes_the_component_with_one_copy() -> None:
    endpoint, _ = _templates(_config())
    target_id, _ = _one(endpoint, "AWS::ApplicationAutoScaling::ScalableTarget")
    (step_id,) = [
        k
        for k, p in _all(endpoint, "AWS::ApplicationAutoScaling::ScalingPolicy").items()
        if p["Properties"]["PolicyType"] == "StepScaling"
    ]
    step = endpoint["Resources"][step_id]["Properties"]
    assert step["ScalingTargetId"] == {"Ref": target_id}
    assert step["StepScalingPolicyConfiguration"] == {
        "AdjustmentType": "ChangeInCapacity",
        "MetricAggregationType": "Maximum",
        "Cooldown": WAKE_UP_COOLDOWN_SECONDS,
        "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}],
    }
    (wake_up,) = [
        a["Properties"]
        for a in _all(endpoint, "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("AlarmActions") == [{"Ref": step_id}]
    ]
    # Why this cooldown. While it runs, Application Auto Scaling adds no copy again. A copy that
    # started is removed after IDLE_TO_ZERO_SECONDS without traffic at the earliest, so a later
    # cold start comes at least that long after the wake-up that started it: the cooldown ends
    # before, even if the idle time were a third of AWS's figure, and the next cold start gets
    # its copy. The alarm repeats its action every period it stays in ALARM: the most one cold
    # start can ask for is bounded by the target's maximum, max_copies (one by default).
    assert WAKE_UP_COOLDOWN_SECONDS * 3 <= IDLE_TO_ZERO_SECONDS
    assert wake_up["Period"] <= WAKE_UP_COOLDOWN_SECONDS
    target = endpoint["Resources"][target_id]["Properties"]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (0, 1)
    assert step["StepScalingPolicyConfiguration"]["StepAdjustments"][0]["ScalingAdjustment"] > 0
    assert wake_up["AlarmName"] == f"{COMPONENT}-wake-up"
    # NoCapacityInvocationFailures counts calls refused for want of any copy, not busy copies.
    assert "had no copy to run it on" in wake_up["AlarmDescription"]
    assert "busy" not in wake_up["AlarmDescription"]
    assert (wake_up["Namespace"], wake_up["MetricName"]) == (
        "AWS/SageMaker",
        "NoCapacityInvocationFailures",
    )
    assert wake_up["Dimensions"] == [{"Name": "InferenceComponentName", "Value": COMPONENT}]
    assert (wake_up["Statistic"], wake_up["Period"], wake_up["Threshold"]) == ("Maximum", 60, 1)
    assert wake_up["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert (wake_up["EvaluationPeriods"], wake_up["DatapointsToAlarm"]) == (1, 1)
    # Once callers are served, no data: the alarm goes back to OK instead of adding copies.
    assert wake_up["TreatMissingData"] == "notBreaching"


@pytest.mark.parametrize(
    ("model_id", "instance_type", "settings", "periods"),
    [
        # As long as a cold start may take: 600 + 900 + 900 s, 40 minutes in 8 periods of 5.
        (MISTRAL, "ml.g5.2xlarge", {}, 8),
        # 600 + 1800 + 1800 s: 70 minutes.
        ("huggingface-llm-falcon-40b-bf16", "ml.g5.12xlarge", {}, 14),
        (MISTRAL, "ml.g5.2xlarge", {"alarms": {"no_capacity_minutes": 30}}, 6),
        (MISTRAL, "ml.g5.2xlarge", {"alarms": {"no_capacity_minutes": 12}}, 3),
    ],
)
def test_callers_refused_for_longer_than_a_cold_start_raise_an_alarm(
    model_id: str, instance_type: str, settings: dict[str, Any], periods: int
) -> None:
    endpoint, _ = _templates(
        _config(model_id=model_id, instance_type=instance_type, region="us-east-1", **settings)
    )
    (alarm,) = [
        a["Properties"]
        for a in _all(endpoint, "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == "NoCapacityInvocationFailures"
        and "AlarmActions" not in a["Properties"]
    ]
    # Five-minute periods: a caller's retries may skip a quiet minute, never five.
    assert (alarm["Statistic"], alarm["Period"], alarm["Threshold"]) == ("Sum", 300, 1)
    assert (alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (periods, periods)
    assert "describe-inference-component" in alarm["AlarmDescription"]


def test_the_execution_role_writes_both_log_groups_and_reads_no_alarms() -> None:
    endpoint, _ = _templates(_config())
    groups = {
        r["Properties"]["LogGroupName"]: r for r in _all(endpoint, "AWS::Logs::LogGroup").values()
    }
    assert set(groups) == {
        f"/aws/sagemaker/Endpoints/{ENDPOINT}",
        f"/aws/sagemaker/InferenceComponents/{COMPONENT}",
    }
    assert all(group["DeletionPolicy"] == "Delete" for group in groups.values())
    _, sagemaker_endpoint = _one(endpoint, "AWS::SageMaker::Endpoint")
    assert set(groups) <= {
        endpoint["Resources"][d]["Properties"]["LogGroupName"]
        for d in sagemaker_endpoint["DependsOn"]
        if endpoint["Resources"][d]["Type"] == "AWS::Logs::LogGroup"
    }
    _, policy = _one(endpoint, "AWS::IAM::Policy")
    statements = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    assert "DescribeRollbackAlarms" not in statements
    written = json.dumps(statements["WriteEndpointLogs"]["Resource"])
    assert f"log-group:/aws/sagemaker/InferenceComponents/{COMPONENT}:log-stream:*" in written
    assert f"log-group:/aws/sagemaker/Endpoints/{ENDPOINT}:log-stream:*" in written
    assert statements["PutEndpointMetrics"]["Condition"] == {
        "StringEquals": {
            "cloudwatch:namespace": [
                "/aws/sagemaker/Endpoints",
                "/aws/sagemaker/InferenceComponents",
            ]
        }
    }


def test_cdk_destroy_order_components_before_the_endpoint() -> None:
    """CloudFormation deletes in reverse dependency order: alarm, then step policy, scalable
    target, component, and the endpoint last (a component left on it blocks its deletion)."""
    endpoint, _ = _templates(_config())

    def depends_on(resource: dict[str, Any]) -> set[str]:
        found = set(resource.get("DependsOn", []))

        def walk(node: Any) -> None:
            if isinstance(node, dict):
                if "Ref" in node:
                    found.add(node["Ref"])
                if "Fn::GetAtt" in node:
                    found.add(node["Fn::GetAtt"][0])
                for value in node.values():
                    walk(value)
            elif isinstance(node, list):
                for value in node:
                    walk(value)

        walk(resource.get("Properties", {}))
        return found

    resources = endpoint["Resources"]
    endpoint_id, _ = _one(endpoint, "AWS::SageMaker::Endpoint")
    component_id, _ = _one(endpoint, "AWS::SageMaker::InferenceComponent")
    target_id, _ = _one(endpoint, "AWS::ApplicationAutoScaling::ScalableTarget")
    assert endpoint_id in depends_on(resources[component_id])
    assert component_id in depends_on(resources[target_id])
    for policy_id in _all(endpoint, "AWS::ApplicationAutoScaling::ScalingPolicy"):
        assert target_id in depends_on(resources[policy_id])
    assert all(r.get("DeletionPolicy", "Delete") == "Delete" for r in resources.values())


# --- the relay stack ---------------------------------------------------------------------------


def test_the_relay_invokes_the_component_and_may_invoke_only_it() -> None:
    _, relay = _templates(_config())
    _, function = _one(relay, "AWS::Lambda::Function")
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables["ENDPOINT_NAME"] == ENDPOINT
    assert variables["INFERENCE_COMPONENT_NAME"] == COMPONENT
    _, policy = _one(relay, "AWS::IAM::Policy")
    (invoke,) = [
        s
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if s["Sid"] == "InvokeOneEndpoint"
    ]
    resources = [json.dumps(r) for r in invoke["Resource"]]
    assert len(resources) == 2
    assert any(f'":endpoint/{ENDPOINT}"' in r for r in resources)
    assert any(f'":inference-component/{COMPONENT}"' in r for r in resources)


def test_an_instance_hosted_relay_names_no_component() -> None:
    config = resolve_environment("t", {"region": "eu-west-1", "model_id": MISTRAL})
    _, relay = _templates(config)
    _, function = _one(relay, "AWS::Lambda::Function")
    assert "INFERENCE_COMPONENT_NAME" not in function["Properties"]["Environment"]["Variables"]


def test_the_relay_dashboard_follows_the_component() -> None:
    _, relay = _templates(_config())
    _, dashboard = _one(relay, "AWS::CloudWatch::Dashboard")
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    assert COMPONENT in body
    assert "NoCapacityInvocationFailures" in body
    assert "ConcurrentRequestsPerCopy" in body


@pytest.mark.parametrize(
    ("model_id", "region", "instance_type", "settings"),
    [
        (MISTRAL, "eu-west-1", "ml.g5.2xlarge", {}),
        (
            "huggingface-llm-falcon-40b-instruct-bf16",
            "us-east-1",
            "ml.g5.12xlarge",
            {
                "alarm_email": "oncall@example.com",
                "scaling": {"max_copies": 2, "schedules": [NIGHT, MORNING]},
            },
        ),
    ],
)
def test_component_environments_synthesize_nag_and_lint_clean(
    model_id: str, region: str, instance_type: str, settings: dict[str, Any], tmp_path: Path
) -> None:
    config = _config(model_id=model_id, region=region, instance_type=instance_type, **settings)
    stacks, app = _stacks(config, tmp_path, nag=True)
    app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    (nag,) = [r for r in report["pluginReports"] if r["pluginName"] == "AwsSolutions"]
    assert (nag["conclusion"], nag["violations"]) == ("success", [])
    files = [str(tmp_path / f"{s.stack_name}.template.json") for s in stacks]
    assert lint(files, region) == []


def test_a_model_that_may_start_longer_than_cloudformation_waits_is_refused_as_a_component() -> (
    None
):
    """CloudFormation fails a component whose creation takes over 120 minutes; Falcon 180B may
    take 130 (a 10-minute instance launch, then an hour each to download and to start). Refused
    in one line naming instance hosting, where the endpoint's 160 minutes hold it."""
    falcon = {"region": "us-east-1", "model_id": "huggingface-llm-falcon-180b-bf16"}
    with pytest.raises(ConfigError) as refused:
        resolve_environment("t", {**falcon, "hosting": "inference-component"})
    assert str(refused.value) == (
        "environment 't': huggingface-llm-falcon-180b-bf16 may take up to 130 minutes to start "
        "(instance launch, download and startup), more than the 120 minutes CloudFormation "
        'waits for an inference component to be created; use hosting = "instance"'
    )
    assert "\n" not in str(refused.value)
    assert resolve_environment("t", falcon).hosting == "instance"
    for model in load_catalog().models.values():
        minutes = cold_start_limit_seconds(model) / 60
        assert start_limit_problem(model, components=False) is None  # every model as instances
        refused_as_component = start_limit_problem(model, components=True) is not None
        assert refused_as_component == (minutes > 120), model.id


def test_the_create_limits_are_cloudformations_own() -> None:
    """The resource schemas cfn-lint ships (CloudFormation's registry): a create handler's
    timeoutInMinutes, or 120 when the schema gives none."""
    import cfnlint.data.schemas

    root = Path(cfnlint.data.schemas.__file__).parent
    providers = json.loads((root / "providers" / "us-east-1.json").read_text())
    for resource, minutes in CREATE_LIMIT_MINUTES.items():
        schema = json.loads((root / "resources" / f"{providers[resource]}.json").read_text())
        create = schema["handlers"]["create"]
        assert create.get("timeoutInMinutes", 120) == minutes, resource
