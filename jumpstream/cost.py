"""``python -m jumpstream cost --env NAME``: what an environment bills, in instance-hours.

A GPU endpoint bills per instance-hour whether or not anyone calls it; the relay bills per
request and is small beside it. Prices differ by region and change, so none are baked in: this
says how many instance-hours of which type an environment runs when idle and at most when busy,
which is what to multiply by the price on SageMaker's pricing page.
"""

from __future__ import annotations

from typing import Final, TextIO

__all__ = ["describe_cost", "run_cost"]

#: The hours of an average month (365 days x 24 h / 12).
HOURS_PER_MONTH: Final = 730


def describe_cost(env_name: str) -> list[str]:
    """The lines `cost` prints for one environment of environments.toml."""
    # stacks.config reaches aws_cdk, which starts Node.js: only this command pays for it.
    from stacks.config import load_environments, resolve_environment

    environments = load_environments()
    if env_name not in environments:
        raise ValueError(
            f"unknown environment {env_name!r}; choose one of: {', '.join(sorted(environments))}"
        )
    config = resolve_environment(env_name, environments[env_name])
    scaling = config.scaling
    idle = scaling.min_instances if scaling else config.instance_count
    busy = scaling.max_instances if scaling else config.instance_count
    lines = [
        f"jumpstream-{config.name}: {config.model.id} on {config.instance_type} in "
        f"{config.region} (instance hosting)",
        f"  idle: {_instances(idle)} = {idle} instance-hours per hour, "
        f"{idle * HOURS_PER_MONTH:,} per month ({HOURS_PER_MONTH} h)",
    ]
    if busy != idle:
        lines.append(
            f"  busy: up to {_instances(busy)} = {busy} instance-hours per hour, "
            f"{busy * HOURS_PER_MONTH:,} per month, as autoscaling adds instances"
        )
    else:
        lines.append("  busy: the same: the instance count is fixed (no [scaling] table)")
    for schedule in scaling.schedules if scaling else ():
        bounds = f"at least {_instances(schedule.min_instances)}"
        if schedule.max_instances is not None:
            bounds += f", at most {schedule.max_instances}"
        lines.append(
            f"  schedule {schedule.name}: {schedule.cron} ({schedule.time_zone}) sets {bounds}"
        )
    lines.append(
        f"  multiply by the {config.instance_type} price for real-time inference in "
        f"{config.region} on SageMaker's pricing page; the relay's Lambda cost is per request"
    )
    return lines


def _instances(count: int) -> str:
    return f"{count} instance" + ("" if count == 1 else "s")


def run_cost(env_name: str, *, stdout: TextIO, stderr: TextIO) -> int:
    from stacks.errors import ConfigError

    try:
        lines = describe_cost(env_name)
    except (ValueError, ConfigError) as error:
        stderr.write(f"jumpstream cost: {error}\n")
        return 2
    stdout.write("\n".join(lines) + "\n")
    return 0
