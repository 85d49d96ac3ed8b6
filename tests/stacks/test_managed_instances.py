"""relay.managed_instances: the relay's function on Lambda Managed Instances.

The settings and their refusals are pure (config); one environment is synthesized whole and
checked by cdk-nag and cfn-lint; where CloudFormation can declare them comes from cfn-lint's
registry (availability.json).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from aws_cdk.assertions import Template
from streamer.contract import MAX_CONNECTIONS

from jumpstream.catalog_sources import registry_regions
from stacks.availability import load_availability
from stacks.catalog import Catalog, load_catalog
from stacks.config import resolve_environment
from stacks.deployment import LambdaManagedInstances
from stacks.environment import add_environment
from stacks.errors import ConfigError
from stacks.nag import enable_nag
from stacks.relay import ADAPTER_CONNECTIONS
from tests.stacks.test_lint import lint
from tests.stacks.test_relay_template import BASE, skip_bundling_app

SUBNET = "subnet-0123456789abcdef0"
GROUP = "sg-0123456789abcdef0"


def managed(settings: object, **relay: object) -> LambdaManagedInstances | None:
    config = resolve_environment("t", {**BASE, "relay": {"managed_instances": settings, **relay}})
    return config.relay.managed_instances


def test_true_takes_the_defaults_and_false_or_nothing_is_one_request_lambda() -> None:
    assert managed(True) == LambdaManagedInstances()
    defaults = LambdaManagedInstances()
    assert (defaults.instance_types, defaults.concurrency_per_environment) == (("m7g.large",), 64)
    assert (defaults.max_vcpus, defaults.memory_mb, defaults.most_streams) == (12, 2048, 768)
    assert managed(False) is None
    assert resolve_environment("t", BASE).relay.managed_instances is None


def test_a_table_sets_types_concurrency_vcpus_memory_and_an_existing_network() -> None:
    settings = {
        "instance_types": ["c7g.xlarge", "m8g.*"],
        "concurrency_per_environment": 32,
        "max_vcpus": 24,
        "memory_gib_per_vcpu": 4,
        "subnet_ids": [SUBNET],
        "security_group_ids": [GROUP],
    }
    assert managed(settings) == LambdaManagedInstances(
        instance_types=("c7g.xlarge", "m8g.*"),
        concurrency_per_environment=32,
        max_vcpus=24,
        memory_gib_per_vcpu=4,
        subnet_ids=(SUBNET,),
        security_group_ids=(GROUP,),
    )
    assert managed(settings).memory_mb == 4096  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("settings", "relay", "message"),
    [
        ("yes", {}, r"managed_instances must be true, false or a table"),
        ({"instance_type": ["m7g.large"]}, {}, r"unknown setting\(s\) instance_type"),
        ({"instance_types": ["m7i.large"]}, {}, r"'m7i\.large' is not an arm64 \(Graviton\)"),
        ({"instance_types": []}, {}, r"instance_types must be a list"),
        ({"concurrency_per_environment": 65}, {}, r"at least 1 and at most 64, got 65"),
        ({"memory_gib_per_vcpu": 3}, {}, r"memory_gib_per_vcpu must be 2, 4 or 8"),
        ({"max_vcpus": 4}, {}, r"max_vcpus 4 is fewer than the 6 vCPUs of the 3 instances"),
        (
            {"instance_types": ["m7g.2xlarge"], "max_vcpus": 12},
            {},
            r"fewer than the 24 vCPUs",
        ),
        ({"subnet_ids": [SUBNET]}, {}, r"subnet_ids and security_group_ids go together"),
        (
            {"subnet_ids": ["subnet-1"], "security_group_ids": [GROUP]},
            {},
            r"subnet_ids must be a list of 1 to 16 ids",
        ),
        (True, {"reserved_concurrency": 5}, r"reserved_concurrency does not apply with managed"),
        (True, {"snap_start": True}, r"snap_start does not apply with managed_instances"),
        (True, {"memory_mb": 4096}, r"memory_mb does not apply with managed_instances"),
    ],
)
def test_settings_that_cannot_work_are_refused_in_one_line(
    settings: object, relay: dict, message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as refused:
        managed(settings, **relay)
    assert "\n" not in str(refused.value)


def test_snap_start_off_is_accepted_and_an_open_url_needs_no_reserved_concurrency() -> None:
    """max_vcpus bounds the streams at once as reserved concurrency does elsewhere."""
    config = resolve_environment(
        "t", {**BASE, "relay": {"managed_instances": True, "snap_start": False, "auth": "NONE"}}
    )
    assert config.relay.snap_start is False
    assert config.relay.reserved_concurrency is None


def test_managed_instances_are_refused_where_cloudformation_cannot_declare_them() -> None:
    catalog = load_catalog()
    without = replace(
        catalog.availability,
        lambda_managed_instances=catalog.availability.lambda_managed_instances - {"eu-west-1"},
    )
    patched = Catalog(catalog.models, without)
    with pytest.raises(ConfigError) as refused:
        resolve_environment("t", {**BASE, "relay": {"managed_instances": True}}, catalog=patched)
    message = str(refused.value)
    assert message.startswith(
        "environment 't': Lambda Managed Instances are not offered in eu-west-1; the relay can "
        "run on them in: af-south-1, ap-east-1, "
    )
    assert message.endswith(
        "us-west-2; drop relay.managed_instances to run the relay one request per execution "
        "environment"
    )
    assert "\n" not in message
    assert ", eu-west-1," not in message
    # Without them the same environment resolves, one request per execution environment.
    assert resolve_environment("t", BASE, catalog=patched).relay.managed_instances is None


def test_the_regions_come_from_the_registry_and_cover_every_relay_region() -> None:
    availability = load_availability()
    relay_regions = {
        r for r in availability.hosting if availability.relay_unavailable_reason(r) is None
    }
    assert relay_regions <= availability.lambda_managed_instances
    assert "us-east-1" in availability.lambda_managed_instances
    # Both halves are needed: the capacity provider type and the function's property.
    function = {"properties": {"Runtime": {}, "Architectures": {"items": {}}}}
    with_config = {
        "properties": {**function["properties"], "CapacityProviderConfig": {}},
    }
    registries = {
        "a-1": {"AWS::Lambda::Function": "new", "AWS::Lambda::CapacityProvider": "cp"},
        "b-1": {"AWS::Lambda::Function": "old", "AWS::Lambda::CapacityProvider": "cp"},
        "c-1": {"AWS::Lambda::Function": "new"},
    }
    regions = registry_regions(registries, {"new": with_config, "old": function})
    assert regions["lambda_managed_instances_regions"] == ["a-1"]


def test_a_managed_instances_environment_synthesizes_nag_and_lint_clean(tmp_path: Path) -> None:
    app = skip_bundling_app(tmp_path)
    config = resolve_environment(
        "lmi", {**BASE, "relay": {"managed_instances": {"concurrency_per_environment": 48}}}
    )
    stacks = add_environment(app, config)
    enable_nag(app)
    app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    (nag,) = [r for r in report["pluginReports"] if r["pluginName"] == "AwsSolutions"]
    assert (nag["conclusion"], nag["violations"]) == ("success", [])
    files = [str(tmp_path / f"{s.stack_name}.template.json") for s in stacks]
    assert lint(files, "eu-west-1") == []

    template = Template.from_stack(stacks[1])
    template.has_resource_properties(
        "AWS::Lambda::CapacityProvider",
        {
            "InstanceRequirements": {
                "AllowedInstanceTypes": ["m7g.large"],
                "Architectures": ["arm64"],
            },
            "CapacityProviderScalingConfig": {"MaxVCpuCount": 12, "ScalingMode": "Auto"},
        },
    )
    ((function_id, function),) = template.find_resources("AWS::Lambda::Function").items()
    # Another function than one-request Lambda's: switching either way replaces it.
    assert function_id.startswith("RelayManagedFunction")
    props = function["Properties"]
    instances = props["CapacityProviderConfig"]["LambdaManagedInstancesCapacityProviderConfig"]
    assert instances["PerExecutionEnvironmentMaxConcurrency"] == 48
    assert instances["ExecutionEnvironmentMemoryGiBPerVCpu"] == 2
    assert props["MemorySize"] == 2048
    assert props["Architectures"] == ["arm64"]
    # No SnapStart and no reserved concurrency there; the relay takes the environment's
    # concurrency (and the adapter's readiness checks) and refuses connections past it.
    assert "SnapStart" not in props
    assert "ReservedConcurrentExecutions" not in props
    variables = props["Environment"]["Variables"]
    assert variables[MAX_CONNECTIONS.name] == str(48 + ADAPTER_CONNECTIONS)
    assert "AWS_LWA_SNAPSTART_AFTER_RESTORE_PATH" not in variables
    # Managed instances run published versions: the URL invokes the `live` alias of one.
    (url,) = template.find_resources("AWS::Lambda::Url").values()
    assert url["Properties"]["Qualifier"] == "live"
    assert url["Properties"]["InvokeMode"] == "RESPONSE_STREAM"
    template.resource_count_is("AWS::Lambda::Version", 1)
    # Its own network: private subnets without internet route, the four endpoints.
    template.resource_count_is("AWS::EC2::InternetGateway", 0)
    template.resource_count_is("AWS::EC2::NatGateway", 0)
    endpoints = template.find_resources("AWS::EC2::VPCEndpoint").values()
    services = sorted(json.dumps(e["Properties"]["ServiceName"]) for e in endpoints)
    assert len(services) == 4
    for service in ("sagemaker.runtime", "logs", "s3", "dynamodb"):
        assert sum(f".{service}" in name for name in services) == 1, service
    # The operator role holds the managed policy Lambda documents for it.
    roles = json.dumps(template.find_resources("AWS::IAM::Role"))
    assert "AWSLambdaManagedEC2ResourceOperator" in roles
    # The throttling alarm says what throttles there.
    alarms = template.find_resources("AWS::CloudWatch::Alarm").values()
    (throttles,) = [a for a in alarms if a["Properties"]["AlarmName"].endswith("-throttles")]
    assert "max_vcpus" in throttles["Properties"]["AlarmDescription"]


def test_existing_subnets_and_security_groups_make_no_vpc() -> None:
    from stacks.relay_stack import RelayStack

    settings = {"subnet_ids": [SUBNET, "subnet-0fedcba9876543210"], "security_group_ids": [GROUP]}
    config = resolve_environment("t", {**BASE, "relay": {"managed_instances": settings}})
    template = Template.from_stack(RelayStack(skip_bundling_app(), "relay", config=config))
    template.resource_count_is("AWS::EC2::VPC", 0)
    template.resource_count_is("AWS::EC2::VPCEndpoint", 0)
    template.has_resource_properties(
        "AWS::Lambda::CapacityProvider",
        {
            "VpcConfig": {
                "SubnetIds": [SUBNET, "subnet-0fedcba9876543210"],
                "SecurityGroupIds": [GROUP],
            }
        },
    )
