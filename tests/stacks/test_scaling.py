"""Instance autoscaling and schedules: what the config accepts, and what the stack creates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from stacks.config import check_cron, resolve_environment
from stacks.deployment import ScalingConfig, ScalingSchedule
from stacks.endpoint_stack import EndpointStack
from stacks.errors import ConfigError
from stacks.nag import enable_nag
from tests.stacks.test_lint import lint

BASE = {"region": "eu-west-1", "model_id": "huggingface-llm-mistral-7b-instruct"}
NIGHT = {"name": "night", "cron": "cron(0 20 ? * MON-FRI *)", "min_instances": 1}
MORNING = {
    "name": "morning",
    "cron": "cron(0 7 ? * MON-FRI *)",
    "min_instances": 2,
    "max_instances": 6,
    "time_zone": "Europe/Berlin",
}
SCALING = {
    "min_instances": 2,
    "max_instances": 6,
    "target_concurrency": 3,
    "schedules": [NIGHT, MORNING],
}


def _config(scaling: dict[str, Any] | None, instance_count: int = 2) -> Any:
    settings: dict[str, Any] = {**BASE, "instance_count": instance_count}
    if scaling is not None:
        settings["scaling"] = scaling
    return resolve_environment("t", settings)


def test_scaling_settings_are_read_with_their_defaults() -> None:
    assert _config(None).scaling is None
    assert _config(SCALING).scaling == ScalingConfig(
        min_capacity=2,
        max_capacity=6,
        target_concurrency=3.0,
        schedules=(
            ScalingSchedule(name="night", cron=NIGHT["cron"], min_capacity=1),
            ScalingSchedule(
                name="morning",
                cron=MORNING["cron"],
                min_capacity=2,
                max_capacity=6,
                time_zone="Europe/Berlin",
            ),
        ),
    )
    assert _config(SCALING).managed_instances is None


@pytest.mark.parametrize(
    ("scaling", "says"),
    [
        ({"min_instances": 0}, "min_instances must be at least 1"),
        ({"min_instances": 3, "max_instances": 4}, "min_instances 3 is more than instance_count 2"),
        ({"max_instances": 1}, "instance_count 2 is more than max_instances 1"),
        ({"min_instances": 3}, "set instance_count to at least 3"),
        ({"min_instances": 2, "max_instances": 1}, "max_instances must be at least 2"),
        (
            {"max_instances": 4, "schedules": [{**NIGHT, "min_instances": 5}]},
            "min_instances 5 is more than max_instances 4; raise max_instances or give",
        ),
        ({"max_instances": 4, "target_concurrency": 0}, "target_concurrency must be a positive"),
        ({"max_instances": 4, "speed": 1}, "unknown setting(s) speed"),
        ({"max_instances": 4, "schedules": [{**NIGHT, "cron": "0 20 * * *"}]}, "must be cron("),
        (
            {"max_instances": 4, "schedules": [{**NIGHT, "cron": "cron(0 20 * * * *)"}]},
            "must have ?",
        ),
        ({"max_instances": 4, "schedules": [{**NIGHT, "name": "night shift"}]}, "name must be"),
        (
            {"max_instances": 4, "schedules": [{**NIGHT, "time_zone": "Mars/Olympus"}]},
            "IANA time zone",
        ),
        (
            {"max_instances": 4, "schedules": [{**NIGHT, "min_instances": 0}]},
            "min_instances must be at least 1",
        ),
        (
            {"max_instances": 4, "min_copies": 0},
            'min_copies not taken with hosting = "instance"',
        ),
        (
            {
                "max_instances": 4,
                "schedules": [{"name": "n", "cron": NIGHT["cron"], "max_copies": 1}],
            },
            'schedules[0]: max_copies not taken with hosting = "instance"',
        ),
    ],
)
def test_bad_scaling_settings_fail_with_one_line(scaling: dict[str, Any], says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _config(scaling)
    assert says in str(caught.value)
    assert "\n" not in str(caught.value)


def test_cron_expressions_are_checked_as_aws_reads_them() -> None:
    assert check_cron("cron(0 20 ? * MON-FRI *)") is None
    assert check_cron("cron(30 6 1 * ? *)") is None
    assert check_cron("rate(5 minutes)") is not None


def _template(
    scaling: dict[str, Any] | None, outdir: Path | None = None
) -> tuple[cdk.Stack, Template]:
    app = cdk.App(outdir=str(outdir) if outdir else None)
    enable_nag(app)
    stack = EndpointStack(app, "endpoint", config=_config(scaling))
    return stack, Template.from_stack(stack)


def test_the_variant_scales_on_concurrent_requests_between_its_limits() -> None:
    _, template = _template(SCALING)
    (target_id,) = template.find_resources("AWS::ApplicationAutoScaling::ScalableTarget")
    target = template.to_json()["Resources"][target_id]
    assert target["Properties"]["ResourceId"] == (
        "endpoint/jumpstream-t-g5-12xlarge/variant/AllTraffic"
    )
    assert target["Properties"]["ScalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
    assert target["Properties"]["ServiceNamespace"] == "sagemaker"
    assert (target["Properties"]["MinCapacity"], target["Properties"]["MaxCapacity"]) == (2, 6)
    (endpoint_id,) = template.find_resources("AWS::SageMaker::Endpoint")
    assert endpoint_id in target["DependsOn"]
    template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        {
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": {
                "PredefinedMetricSpecification": {
                    "PredefinedMetricType": (
                        "SageMakerVariantConcurrentRequestsPerModelHighResolution"
                    )
                },
                "TargetValue": 3,
                "ScaleOutCooldown": 60,
                "ScaleInCooldown": 600,
            },
        },
    )
    actions = target["Properties"]["ScheduledActions"]
    assert [a["ScheduledActionName"] for a in actions] == ["night", "morning"]
    assert actions[0]["Schedule"] == NIGHT["cron"]
    assert actions[0]["ScalableTargetAction"] == {"MinCapacity": 1}
    assert actions[1]["ScalableTargetAction"] == {"MinCapacity": 2, "MaxCapacity": 6}
    assert actions[1]["Timezone"] == "Europe/Berlin"


def test_without_scaling_the_instance_count_is_fixed() -> None:
    _, template = _template(None)
    template.resource_count_is("AWS::ApplicationAutoScaling::ScalableTarget", 0)
    template.resource_count_is("AWS::ApplicationAutoScaling::ScalingPolicy", 0)


def test_a_scaled_endpoint_is_lint_and_nag_clean(tmp_path: Path) -> None:
    stack, _ = _template(SCALING, outdir=tmp_path)
    assembly = cdk.App.of(stack).synth()  # type: ignore[union-attr]  # cdk-nag fails on a finding
    assert lint([str(Path(assembly.directory) / stack.template_file)], "eu-west-1") == []


@pytest.mark.parametrize(
    "settings",
    [{**BASE, "instance_count": 2, "scaling": SCALING}, {**BASE, "hosting": "inference-component"}],
    ids=["instances", "copies"],
)
def test_scaling_acts_through_the_service_linked_role_and_makes_no_role(
    settings: dict[str, Any],
) -> None:
    app = cdk.App()
    template = Template.from_stack(
        EndpointStack(app, "e", config=resolve_environment("t", settings))
    )
    (target,) = template.find_resources("AWS::ApplicationAutoScaling::ScalableTarget").values()
    role_arn = json.dumps(target["Properties"]["RoleARN"])
    assert '"arn:aws:iam::"' in role_arn
    assert (
        ":role/aws-service-role/sagemaker.application-autoscaling.amazonaws.com/"
        'AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"'
    ) in role_arn
    trusted = [
        json.dumps(role["Properties"]["AssumeRolePolicyDocument"])
        for role in template.find_resources("AWS::IAM::Role").values()
    ]
    assert trusted  # the execution role, trusting SageMaker
    assert not any("application-autoscaling" in t for t in trusted)
