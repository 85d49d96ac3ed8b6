"""``python -m jumpstream cost --env NAME``: what an environment bills, in instance-hours.

A GPU endpoint bills per instance-hour whether or not anyone calls it; the relay bills per
request and is small beside it. Prices differ by region and change, so none are baked in: this
says how many instance-hours of which type an environment runs when idle and at most when busy,
which is what to multiply by the price on SageMaker's pricing page.
"""

from __future__ import annotations

from typing import TextIO

from stacks.config import environment
from stacks.deployment import HOURS_PER_MONTH, EnvironmentConfig
from stacks.errors import ConfigError

__all__ = ["describe_cost", "describe_environment_cost", "run_cost"]


def describe_cost(env_name: str, *, hosting: str | None = None) -> list[str]:
    """The lines `cost` prints for one environment of environments.toml, optionally as if its
    hosting were `hosting` (as `cdk synth -c hosting=...` would deploy it)."""
    config = environment(env_name, {"hosting": hosting})
    return describe_environment_cost(config)


def describe_environment_cost(config: EnvironmentConfig) -> list[str]:
    """What one resolved environment bills idle and busy, and what changes it on a schedule."""
    scaling, managed = config.scaling, config.managed_instances
    lines = [
        f"{config.endpoint_name}: {config.model.id} on {config.instance_type} in "
        f"{config.region} ({config.hosting} hosting)"
    ]
    if managed is not None and scaling is not None:
        # Every catalog model takes all of its instance's GPUs: a copy is an instance.
        idle, busy = scaling.min_capacity, scaling.peak_capacity
        waits = " (no copy: the first call waits minutes while an instance and a copy start)"
        lines.append(
            f"  idle: {_count(idle, 'copy')} on {_instances(idle)} = {_hours(idle)}"
            + ("" if idle else waits)
        )
        lines.append(
            f"  busy: up to {_count(busy, 'copy')} on {_instances(busy)} = {_hours(busy)}, as "
            "autoscaling adds copies (one instance more while an update replaces a copy)"
        )
        unit = "copies"
    else:
        idle = scaling.min_capacity if scaling else config.instance_count
        busy = scaling.peak_capacity if scaling else config.instance_count
        lines.append(f"  idle: {_instances(idle)} = {_hours(idle)}")
        if busy != idle:
            lines.append(
                f"  busy: up to {_instances(busy)} = {_hours(busy)}, as autoscaling adds instances"
            )
        else:
            lines.append("  busy: the same: the instance count is fixed (no [scaling] table)")
        unit = "instances"
    for schedule in scaling.schedules if scaling else ():
        bounds = f"at least {schedule.min_capacity} {unit}"
        if schedule.max_capacity is not None:
            bounds += f", at most {schedule.max_capacity}"
        lines.append(
            f"  schedule {schedule.name}: {schedule.cron} ({schedule.time_zone}) sets {bounds}"
        )
    lines.append(
        f"  multiply by the {config.instance_type} price for real-time inference in "
        f"{config.region} on SageMaker's pricing page; the relay's Lambda cost is per request"
    )
    return lines


def _hours(instances: int) -> str:
    per_hour = f"{instances} instance-hour{'' if instances == 1 else 's'}"
    return f"{per_hour} per hour, {instances * HOURS_PER_MONTH:,} per month ({HOURS_PER_MONTH} h)"


def _count(number: int, noun: str) -> str:
    plural = {"copy": "copies", "instance": "instances"}[noun]
    return f"{number} {noun if number == 1 else plural}"


def _instances(count: int) -> str:
    return _count(count, "instance")


def run_cost(env_name: str, *, stdout: TextIO, stderr: TextIO, hosting: str | None = None) -> int:
    try:
        lines = describe_cost(env_name, hosting=hosting)
    except ConfigError as error:
        stderr.write(f"jumpstream cost: {error}\n")
        return 2
    stdout.write("\n".join(lines) + "\n")
    return 0
