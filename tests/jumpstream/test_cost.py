"""`cost`: instance-hours idle and busy for a shipped environment, no prices baked in."""

from __future__ import annotations

import io

import pytest

from jumpstream.cost import describe_cost, describe_environment_cost, run_cost

#: An environment's own settings: the model and region every managed-relay test prices.
MISTRAL = {"region": "us-east-1", "model_id": "huggingface-llm-mistral-7b-instruct"}


def test_prod_bills_its_minimum_when_idle_and_its_maximum_when_busy() -> None:
    lines = describe_cost("prod")
    assert lines[0] == (
        "jumpstream-prod-g5-12xlarge: huggingface-llm-mistral-7b-instruct on ml.g5.12xlarge in "
        "us-east-1 (instance hosting)"
    )
    assert lines[1] == "  idle: 2 instances = 2 instance-hours per hour, 1,460 per month (730 h)"
    assert lines[2].startswith("  busy: up to 4 instances = 4 instance-hours per hour, 2,920")
    assert "pricing page" in lines[-1]


def test_a_fixed_environment_bills_the_same_busy_or_not() -> None:
    lines = describe_cost("dev")
    assert lines[1].startswith("  idle: 1 instance = 1 instance-hour per hour, 730 per month")
    assert lines[2] == "  busy: the same: the instance count is fixed (no [scaling] table)"


def test_an_unknown_environment_is_one_line_and_exit_2() -> None:
    stdout, stderr = io.StringIO(), io.StringIO()
    assert run_cost("nope", stdout=stdout, stderr=stderr) == 2
    assert stderr.getvalue() == (
        "jumpstream cost: unknown environment 'nope'; choose one of: dev, prod\n"
    )


def test_a_component_environment_bills_nothing_idle_and_says_what_the_first_call_waits() -> None:
    lines = describe_cost("dev", hosting="inference-component")
    assert lines[0] == (
        "jumpstream-dev-ic-g5-2xlarge: huggingface-llm-mistral-7b-instruct on ml.g5.2xlarge in "
        "us-east-1 (inference-component hosting)"
    )
    assert lines[1] == (
        "  idle: 0 copies on 0 instances = 0 instance-hours per hour, 0 per month (730 h) (no "
        "copy: the first call waits minutes while an instance and a copy start)"
    )
    assert lines[2] == (
        "  busy: up to 1 copy on 1 instance = 1 instance-hour per hour, 730 per month (730 h), "
        "as autoscaling adds copies (one instance more while an update replaces a copy)"
    )


def test_component_limits_and_schedules_are_counted_in_copies() -> None:
    from stacks.config import resolve_environment

    config = resolve_environment(
        "t",
        {
            "region": "eu-west-1",
            "model_id": "huggingface-llm-mistral-7b-instruct",
            "instance_type": "ml.g5.12xlarge",
            "hosting": "inference-component",
            "scaling": {
                "min_copies": 1,
                "max_copies": 3,
                "schedules": [
                    {"name": "night", "cron": "cron(0 20 ? * MON-FRI *)", "min_copies": 0},
                    {
                        "name": "rush",
                        "cron": "cron(0 8 ? * MON *)",
                        "min_copies": 1,
                        "max_copies": 4,
                    },
                ],
            },
        },
    )
    lines = describe_environment_cost(config)
    assert lines[1] == (
        "  idle: 1 copy on 1 instance = 1 instance-hour per hour, 730 per month (730 h)"
    )
    # The rush schedule's maximum is the peak.
    assert lines[2].startswith("  busy: up to 4 copies on 4 instances = 4 instance-hours per hour")
    assert lines[3] == "  schedule night: cron(0 20 ? * MON-FRI *) (UTC) sets at least 0 copies"
    assert lines[4] == (
        "  schedule rush: cron(0 8 ? * MON *) (UTC) sets at least 1 copies, at most 4"
    )


def test_an_environment_that_cannot_be_hosted_that_way_says_why() -> None:
    stdout, stderr = io.StringIO(), io.StringIO()
    assert run_cost("prod", stdout=stdout, stderr=stderr, hosting="inference-component") == 2
    assert stderr.getvalue().startswith(
        "jumpstream cost: environment 'prod': instance_count must be 1 with hosting = "
        '"inference-component", got 2'
    )
    assert stdout.getvalue() == ""


def test_the_hosting_option_reaches_the_command() -> None:
    from jumpstream.cli import main

    stdout, stderr = io.StringIO(), io.StringIO()
    argv = ["cost", "--env", "dev", "--hosting", "inference-component"]
    assert main(argv, stdout=stdout, stderr=stderr) == 0
    assert "(inference-component hosting)" in stdout.getvalue()


def test_an_environment_with_api_keys_says_what_each_call_adds() -> None:
    """DynamoDB requests per call and the top-keys rules; nothing of the kind without keys."""
    from stacks.config import resolve_environment

    base = {"region": "eu-west-1", "model_id": "huggingface-llm-mistral-7b-instruct"}
    keyed = resolve_environment(
        "k", {**base, "relay": {"auth": "API_KEY", "reserved_concurrency": 2}}
    )
    (line,) = [line for line in describe_environment_cost(keyed) if "API keys" in line]
    assert line.startswith("  API keys: each call also makes a few on-demand DynamoDB requests")
    assert "read at most every 30 s per function instance" in line
    assert "Contributor Insights" in line
    plain = describe_environment_cost(resolve_environment("p", base))
    assert not [line for line in plain if "API keys" in line or "DynamoDB" in line]


def test_a_relay_on_managed_instances_bills_its_instances_idle_or_not() -> None:
    """Three instances however quiet, up to what max_vcpus allows, Lambda's fee on top."""
    from stacks.config import resolve_environment

    config = resolve_environment("m", {**MISTRAL, "relay": {"managed_instances": True}})
    lines = describe_environment_cost(config)
    assert lines[3].endswith("; the relay's instances are below")
    assert lines[4:] == [
        "  relay: Lambda Managed Instances on m7g.large (arm64)",
        "    idle: 3 instances (Lambda's default three, spread over the zones, however quiet) = "
        "3 instance-hours per hour, 2,190 per month (730 h)",
        "    busy: up to 12 vCPUs: 6 instances = 6 instance-hours per hour, 4,380 per month "
        "(730 h), as Lambda adds instances on CPU use",
        "    on top: Lambda's management fee (15% of the instances' EC2 price), its charge per "
        "request, and the relay VPC's two interface endpoints (SageMaker runtime, CloudWatch "
        "Logs), billed per Availability Zone and hour",
        "    multiply by the EC2 on-demand price of m7g.large",
    ]
    # Its own network: no endpoints of the relay's; several types: Lambda picks, no count.
    own = {
        "instance_types": ["m7g.large", "c7g.xlarge"],
        "max_vcpus": 24,
        "subnet_ids": ["subnet-0123456789abcdef0"],
        "security_group_ids": ["sg-0123456789abcdef0"],
    }
    lines = describe_environment_cost(
        resolve_environment("m", {**MISTRAL, "relay": {"managed_instances": own}})
    )
    assert lines[-3:] == [
        "    busy: up to 24 vCPUs, as Lambda adds instances on CPU use",
        "    on top: Lambda's management fee (15% of the instances' EC2 price), its charge per "
        "request",
        "    multiply by the EC2 on-demand prices of the types Lambda picks",
    ]
    # One-request Lambda bills per request: no instances of the relay's.
    plain = describe_environment_cost(resolve_environment("p", MISTRAL))
    assert plain[-1].endswith("; the relay's Lambda cost is per request")
    assert not [line for line in plain if "Managed Instances" in line]


@pytest.mark.parametrize(
    ("settings", "busy"),
    [
        # The capacity provider caps all instances together at max_vcpus: 13 vCPUs hold six
        # two-vCPU instances, not seven.
        ({"max_vcpus": 13}, "    busy: up to 13 vCPUs: 6 instances = 6 instance-hours per hour"),
        # A metal type's vCPUs are not in its name: no count, but one type to price.
        ({"instance_types": ["m7g.metal"], "max_vcpus": 192}, "    busy: up to 192 vCPUs, as"),
    ],
    ids=["vcpus-not-a-multiple", "metal"],
)
def test_the_busy_count_is_what_max_vcpus_holds(settings: dict[str, object], busy: str) -> None:
    from stacks.config import resolve_environment

    config = resolve_environment("m", {**MISTRAL, "relay": {"managed_instances": settings}})
    (line,) = [line for line in describe_environment_cost(config) if line.startswith("    busy:")]
    assert line.startswith(busy)


def test_a_disabled_relay_bills_nothing_of_its_managed_instances() -> None:
    """No relay: nothing of its instances, and no word of a relay's cost at all."""
    from stacks.config import resolve_environment

    relay = {"enabled": False, "managed_instances": True}
    lines = describe_environment_cost(resolve_environment("m", {**MISTRAL, "relay": relay}))
    assert not [line for line in lines if "Managed Instances" in line]
    assert not [line for line in lines if "relay" in line]
