"""``python -m jumpstream cost --env NAME``: what an environment bills, in instance-hours and,
with AWS credentials, in money.

A GPU endpoint bills per instance-hour whether or not anyone calls it; the relay bills per request
and is small beside it, or, on Lambda Managed Instances, per instance-hour of its own EC2 instances
plus Lambda's fee. This says how many instance-hours of which types an environment runs when idle
and at most when busy. Prices differ by region and change, so no instance price is built in (only
Lambda Managed Instances' fee, a share of one): with credentials it reads the on-demand prices from
the AWS Price List (prices.py) and says what idle and busy cost a month; without, it says what to
multiply by.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TextIO

from streamer.contract import KEY_CACHE_SECONDS

from jumpstream.prices import (
    MANAGED_INSTANCES_FEE,
    PRICE_LIST_REGION,
    Price,
    ec2_hourly_price,
    hourly_price,
)
from jumpstream.signing import credential_source
from stacks.config import environment
from stacks.deployment import (
    HOURS_PER_MONTH,
    LMI_STARTING_INSTANCES,
    EnvironmentConfig,
    LambdaManagedInstances,
)
from stacks.errors import ConfigError

__all__ = ["describe_cost", "describe_environment_cost", "run_cost"]


def describe_cost(env_name: str, *, hosting: str | None = None) -> list[str]:
    """The lines `cost` prints, unpriced, for one environment of environments.toml, optionally
    as if its hosting were `hosting` (as `cdk synth -c hosting=...` would deploy it)."""
    return describe_environment_cost(environment(env_name, {"hosting": hosting}))


def describe_environment_cost(
    config: EnvironmentConfig, *, price: Price | None = None, relay_price: Price | None = None
) -> list[str]:
    """What one resolved environment bills idle and busy, and what changes it on a schedule;
    in money too when the instance type's `price` is known (and, for a relay on Lambda Managed
    Instances, its instance type's EC2 `relay_price`)."""
    scaling, managed = config.scaling, config.managed_instances
    lines = [
        f"{config.endpoint_name}: {config.model.id} on {config.instance_type} in "
        f"{config.region} ({config.hosting} hosting)"
    ]
    if managed is not None and scaling is not None:
        # Every catalog model takes all of its instance's GPUs: a copy is an instance.
        idle, busy = config.idle_instances, config.peak_instances
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
        idle, busy = config.idle_instances, config.peak_instances
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
    if config.relay.enabled and config.relay.api_keys:
        lines.append(
            "  API keys: each call also makes a few on-demand DynamoDB requests on the keys table "
            f"(its key's record, read at most every {KEY_CACHE_SECONDS} s per function instance; "
            "its usage, added when it ends; its minute's count under a rate limit; its month's "
            "days under a monthly budget), and the two top-keys Contributor Insights rules bill "
            "per month and per log line they match"
        )
    managed_relay = config.relay.deployed_managed_instances
    relay = (
        ""
        if not config.relay.enabled
        else "; the relay's Lambda cost is per request"
        if managed_relay is None
        else "; the relay's instances are below"
    )
    if price is None:
        lines.append(
            f"  multiply by the {config.instance_type} price for real-time inference in "
            f"{config.region} on SageMaker's pricing page{relay}"
        )
    else:
        priced = _at_price(price, config.instance_type, idle=idle, busy=busy)
        lines.append(f"  {priced}{relay}")
    if managed_relay is not None:
        lines += _managed_relay(managed_relay, relay_price)
    return lines


def _at_price(
    price: Price, name: str, *, idle: int, busy: int | None, markup: Decimal = Decimal(1)
) -> str:
    """What `idle` and at most `busy` instances cost a month at `price` (times `markup`)."""
    hourly = price.per_hour * markup
    text = (
        f"at {_money(price.per_hour, price.currency, exact=True)} per instance-hour on demand "
        f"(AWS Price List: {price.description or name})"
        + ("" if markup == 1 else " and the fee")
        + f": idle {_money(idle * HOURS_PER_MONTH * hourly, price.currency)} a month"
    )
    if busy is not None:
        text += f", busy up to {_money(busy * HOURS_PER_MONTH * hourly, price.currency)} a month"
    return text


def _managed_relay(managed: LambdaManagedInstances, price: Price | None) -> list[str]:
    """A relay on Lambda Managed Instances bills its EC2 instances by the hour, idle or not,
    plus Lambda's fee on them; how many: the ones Lambda starts, up to what max_vcpus allows."""
    idle, busy = LMI_STARTING_INSTANCES, managed.most_instances
    fee = f"{MANAGED_INSTANCES_FEE * 100:.0f}%"
    lines = [
        f"  relay: Lambda Managed Instances on {', '.join(managed.instance_types)} (arm64)",
        f"    idle: {_instances(idle)} (Lambda's default three, spread over the zones, however "
        f"quiet) = {_hours(idle)}",
        f"    busy: up to {managed.max_vcpus} vCPUs"
        + ("" if busy is None else f": {_instances(busy)} = {_hours(busy)}")
        + ", as Lambda adds instances on CPU use",
        f"    on top: Lambda's management fee ({fee} of the instances' EC2 price), its charge per "
        "request"
        + (
            ""
            if managed.subnet_ids
            else ", and the relay VPC's two interface endpoints (SageMaker runtime, CloudWatch "
            "Logs), billed per Availability Zone and hour"
        ),
    ]
    instance_type = managed.instance_type
    if price is None or instance_type is None:
        lines.append(
            "    multiply by the EC2 on-demand prices of the types Lambda picks"
            if instance_type is None
            else f"    multiply by the EC2 on-demand price of {instance_type}"
        )
        return lines
    markup = 1 + MANAGED_INSTANCES_FEE
    lines.append(f"    {_at_price(price, instance_type, idle=idle, busy=busy, markup=markup)}")
    return lines


def _money(amount: Decimal, currency: str, *, exact: bool = False) -> str:
    """$1.515 or $2,212: an hour's price as published, a month's to the unit."""
    text = f"{amount.normalize():f}" if exact else f"{amount:,.0f}"
    return f"${text}" if currency == "USD" else f"{text} {currency}"


def _hours(instances: int) -> str:
    per_hour = f"{instances} instance-hour{'' if instances == 1 else 's'}"
    return f"{per_hour} per hour, {instances * HOURS_PER_MONTH:,} per month ({HOURS_PER_MONTH} h)"


def _count(number: int, noun: str) -> str:
    plural = {"copy": "copies", "instance": "instances"}[noun]
    return f"{number} {noun if number == 1 else plural}"


def _instances(count: int) -> str:
    return _count(count, "instance")


def run_cost(
    env_name: str,
    *,
    stdout: TextIO,
    stderr: TextIO,
    hosting: str | None = None,
    pricing_client: Callable[[], Any] | None = None,
) -> int:
    """Print the environment's cost; with credentials, priced from the AWS Price List (a note
    says why when it is not)."""
    try:
        config = environment(env_name, {"hosting": hosting})
    except ConfigError as error:
        stderr.write(f"jumpstream cost: {error}\n")
        return 2
    if pricing_client is None and credential_source() is None:
        lines = describe_environment_cost(config)
        notes = ["with AWS credentials it also reads the prices from the AWS Price List"]
    else:
        lines, notes = _priced(config, pricing_client or _pricing_client)
    stdout.write("\n".join(lines) + "\n")
    for note in notes:
        stderr.write(f"jumpstream cost: {note}\n")
    return 0


def _priced(
    config: EnvironmentConfig, pricing_client: Callable[[], Any]
) -> tuple[list[str], list[str]]:
    """The cost lines with the prices the Price List has, and a line for each it has not (a
    failed read of one price keeps the other)."""
    notes: list[str] = []
    pricing_client = functools.cache(pricing_client)  # made once, on first use
    price = _read(
        notes,
        lambda: hourly_price(config.instance_type, config.region, client=pricing_client()),
        f"{config.instance_type} hosting in {config.region}",
    )
    relay_price = None
    managed_relay = config.relay.deployed_managed_instances
    relay_type = None if managed_relay is None else managed_relay.instance_type
    if relay_type is not None:
        relay_price = _read(
            notes,
            lambda: ec2_hourly_price(relay_type, config.region, client=pricing_client()),
            f"{relay_type} EC2 instances in {config.region}",
        )
    return describe_environment_cost(config, price=price, relay_price=relay_price), notes


def _read(notes: list[str], lookup: Callable[[], Price | None], what: str) -> Price | None:
    """`lookup`'s price, or None with a note of why not."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        price = lookup()
    except (BotoCoreError, ClientError) as error:
        notes.append(f"the AWS Price List could not be read for {what} ({error})")
        return None
    if price is None:
        notes.append(f"the AWS Price List has no single on-demand price for {what}")
    return price


def _pricing_client() -> Any:
    import boto3

    return boto3.client("pricing", region_name=PRICE_LIST_REGION)
