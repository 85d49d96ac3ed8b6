"""`cost`: instance-hours idle and busy for a shipped environment, no prices baked in."""

from __future__ import annotations

import io

from jumpstream.cost import describe_cost, run_cost


def test_prod_bills_its_minimum_when_idle_and_its_maximum_when_busy() -> None:
    lines = describe_cost("prod")
    assert lines[0] == (
        "jumpstream-prod: huggingface-llm-mistral-7b-instruct on ml.g5.12xlarge in us-east-1 "
        "(instance hosting)"
    )
    assert lines[1] == "  idle: 2 instances = 2 instance-hours per hour, 1,460 per month (730 h)"
    assert lines[2].startswith("  busy: up to 4 instances = 4 instance-hours per hour, 2,920")
    assert "pricing page" in lines[-1]


def test_a_fixed_environment_bills_the_same_busy_or_not() -> None:
    lines = describe_cost("dev")
    assert lines[1].startswith("  idle: 1 instance = 1 instance-hours per hour, 730 per month")
    assert lines[2] == "  busy: the same: the instance count is fixed (no [scaling] table)"


def test_an_unknown_environment_is_one_line_and_exit_2() -> None:
    stdout, stderr = io.StringIO(), io.StringIO()
    assert run_cost("nope", stdout=stdout, stderr=stderr) == 2
    assert stderr.getvalue() == (
        "jumpstream cost: unknown environment 'nope'; choose one of: dev, prod\n"
    )
