"""Environment configuration: `environments.toml`, with CDK context overrides applied at synth.

Everything a stack needs is resolved and checked here, before any construct exists, so a typo in
the file or on the command line fails with one line naming the valid choices instead of a
half-built app or a deploy-time error an hour later. The result is deployment.py's plain types;
each table's allowed keys and defaults are those types' own fields, so a setting is declared
once. Nothing here imports CDK.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
import zoneinfo
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from streamer.contract import (
    KEY_REQUESTS_PER_MINUTE,
    KEY_TOKENS_PER_DAY,
    KEY_TOKENS_PER_MONTH,
    MAX_NEW_TOKENS_LIMIT,
    Variable,
)

from stacks.availability import RelayUnavailable, snapstart_unavailable
from stacks.catalog import (
    Catalog,
    Model,
    deployment_problem,
    licence_problem,
    load_catalog,
    region_problem,
)
from stacks.deployment import (
    API_KEY_AUTH,
    AUTH_TYPES,
    COMPONENT_HOSTING,
    HOSTING_MODES,
    LMI_CONCURRENCY_PER_VCPU,
    LMI_STARTING_INSTANCES,
    RETENTION_DAYS,
    AlarmThresholds,
    EnvironmentConfig,
    LambdaManagedInstances,
    RelayConfig,
    ScalingConfig,
    ScalingSchedule,
    instance_vcpus,
    start_limit_problem,
)
from stacks.errors import ConfigError, did_you_mean

__all__ = [
    "CONFIG_PATH",
    "CONTEXT_KEYS",
    "OVERRIDE_KEYS",
    "EnvironmentConfig",
    "check_cron",
    "environment",
    "load_environments",
    "resolve_environment",
    "select_environments",
]

CONFIG_PATH = Path(__file__).resolve().parent.parent / "environments.toml"

# The context keys a user may pass with `cdk synth -c key=value`: what may be overridden, and
# the environment it applies to.
OVERRIDE_KEYS = ("model_id", "region", "instance_type", "instance_count", "hosting")
CONTEXT_KEYS = ("env", *OVERRIDE_KEYS)
# A key a user would type; CDK's own are "@aws-cdk/..." feature flags and "aws:cdk:..." settings.
_USER_CONTEXT_KEY = re.compile(r"[a-z][a-z0-9_]*")

# The name ends up in `jumpstream-<name>`, a SageMaker endpoint name: letters and digits joined by
# single hyphens, so no trailing or doubled '-'.
ENV_NAME = re.compile(r"^[a-z](?:-?[a-z0-9]){0,19}$")
ACCOUNT = re.compile(r"^\d{12}$")
PRINCIPAL_ARN = re.compile(r"^arn:aws(-cn|-us-gov)?:iam::\d{12}:(root|role/\S+|user/\S+)$")
# Application Auto Scaling's cron: minutes hours day-of-month month day-of-week year.
_CRON = re.compile(r"cron\((\S+ ){5}\S+\)")


def _fields(cls: type) -> dict[str, dataclasses.Field[Any]]:
    return {f.name: f for f in dataclasses.fields(cls)}


def _default(cls: type, name: str) -> Any:
    """A field's default, as the type declares it (a factory's value for mutable ones)."""
    declared = _fields(cls)[name]
    if declared.default_factory is not dataclasses.MISSING:
        return declared.default_factory()
    return declared.default


# An environment's keys: its type's fields, less the resolved ones (the model, the relay's
# platform), plus the TOML names that are resolved into them (model_id) or read into nested tables.
_ENV_KEYS = (set(_fields(EnvironmentConfig)) - {"name", "model", "relay_platform"}) | {"model_id"}
_RELAY_KEYS = set(_fields(RelayConfig))
# The environment's limits for API keys: each setting and the function's variable it becomes,
# whose ceiling bounds it.
_KEY_LIMITS: dict[str, Variable[int | None]] = {
    "key_requests_per_minute": KEY_REQUESTS_PER_MINUTE,
    "key_tokens_per_day": KEY_TOKENS_PER_DAY,
    "key_tokens_per_month": KEY_TOKENS_PER_MONTH,
}
_ALARM_KEYS = set(_fields(AlarmThresholds))
# The limits a [scaling] table and its schedules take: instances with instance hosting, copies
# with inference-component hosting (ScalingConfig's min_capacity and max_capacity).
_LIMIT_KEYS = {"min_instances", "max_instances", "min_copies", "max_copies"}
_SCALING_KEYS = (set(_fields(ScalingConfig)) - {"min_capacity", "max_capacity"}) | _LIMIT_KEYS
_SCHEDULE_KEYS = (set(_fields(ScalingSchedule)) - {"min_capacity", "max_capacity"}) | _LIMIT_KEYS
_MANAGED_INSTANCES_KEYS = set(_fields(LambdaManagedInstances))
#: An arm64 (Graviton) EC2 instance type, or a pattern of them: a `g` follows the generation
#: (m7g.large, c7gn.xlarge, r8g.*), where x86 has `i` or `a` (m7i.large, c7a.xlarge).
_ARM64_INSTANCE_TYPE = re.compile(r"[a-z]+\d+g[a-z]*\.(\*|medium|large|\d*xlarge|metal)")
_SUBNET_ID = re.compile(r"subnet-[0-9a-f]{8,17}")
_SECURITY_GROUP_ID = re.compile(r"sg-[0-9a-f]{8,17}")
_SCHEDULE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]{0,63}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def _choices(values: Any) -> str:
    return ", ".join(sorted(values))


def check_context(keys: Any) -> None:
    """Refuse a `-c` key synth would otherwise ignore (`-c modelid=...` deploying the default
    model is worse than an error)."""
    unknown = sorted(k for k in keys if _USER_CONTEXT_KEY.fullmatch(k) and k not in CONTEXT_KEYS)
    if unknown:
        raise ConfigError(
            f"unknown context key -c {unknown[0]}{did_you_mean(unknown[0], CONTEXT_KEYS)}; "
            f"the keys are: {', '.join(CONTEXT_KEYS)}"
        )


def _int(value: Any, what: str, *, minimum: int, maximum: int | None = None) -> int:
    """An integer from TOML or from CDK context (where `-c instance_count=2` arrives as "2")."""
    if isinstance(value, str) and re.fullmatch(r"\d+", value.strip()):
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{what} must be a whole number, got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        upper = f" and at most {maximum}" if maximum is not None else ""
        raise ConfigError(f"{what} must be at least {minimum}{upper}, got {value}")
    return value


def _check_keys(raw: Any, allowed: set[str], where: str) -> None:
    """`raw` must be a TOML table holding only `allowed` keys."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a table, not {raw!r}")
    unknown = set(raw) - allowed
    if unknown:
        raise ConfigError(
            f"{where}: unknown setting(s) {_choices(unknown)}; valid settings: {_choices(allowed)}"
        )


def model_max_new_tokens(model: Model, instance_type: str) -> int | None:
    """The engine refuses prompt + max_new_tokens above its context (TGI's MAX_TOTAL_TOKENS,
    LMI's or vLLM's max model length); a prompt has one token. None where the catalog does
    not know the context (the engine takes the model's own, which no spec states)."""
    limits = model.context_limits(instance_type)
    return None if limits is None else limits[0] - 1


def _alarms(raw: Any, where: str) -> AlarmThresholds:
    """[environments.NAME.alarms]: thresholds, each a positive number (a share below 1)."""
    if raw is None:
        return AlarmThresholds()
    _check_keys(raw, _ALARM_KEYS, f"{where}.alarms")
    values: dict[str, Any] = {}
    for name, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ConfigError(f"{where}.alarms.{name} must be a positive number, got {value!r}")
        if name.endswith("_percent") and value > 100:
            raise ConfigError(f"{where}.alarms.{name} is a percentage: at most 100, got {value}")
        if name.startswith("duration_share") and value >= 1:
            raise ConfigError(f"{where}.alarms.{name} is a share of the timeout: below 1")
        if name == "no_capacity_minutes" and value > 1440:
            raise ConfigError(f"{where}.alarms.{name}: CloudWatch looks back one day at most")
        whole = str(_fields(AlarmThresholds)[name].type).startswith("int")
        if whole and value != int(value):
            raise ConfigError(f"{where}.alarms.{name} must be a whole number, got {value}")
        values[name] = int(value) if whole else float(value)
    return AlarmThresholds(**values)


def _scaling(raw: Any, where: str, instance_count: int, hosting: str) -> ScalingConfig | None:
    """[environments.NAME.scaling]: what scales, its limits, a target, and schedules.

    Instance hosting scales instances between min_instances (at least one) and max_instances;
    without the table it keeps instance_count. Inference-component hosting scales copies of the
    model between min_copies (default 0) and max_copies (default 1), even without the table.
    Every model in the catalog takes all of its instance's GPUs, so a copy is an instance, and
    the instances follow the copies (EnvironmentConfig.managed_instances).
    """
    where = f"{where}.scaling"
    components = hosting == COMPONENT_HOSTING
    if components and instance_count != 1:
        raise ConfigError(
            f"{where.removesuffix('.scaling')}: instance_count must be 1 with hosting = "
            f'"{COMPONENT_HOSTING}", got {instance_count} (the component starts with one copy '
            "on one instance); set [scaling] max_copies for more"
        )
    if raw is None:
        if not components:
            return None
        raw = {}
    _check_keys(raw, _SCALING_KEYS, where)
    unit = "copies" if components else "instances"
    own = {f"min_{unit}", f"max_{unit}"}
    _mode_keys(raw, where, own, hosting)
    if components:
        low = _int(raw.get("min_copies", 0), f"{where}.min_copies", minimum=0)
        high = _int(raw.get("max_copies", max(low, 1)), f"{where}.max_copies", minimum=max(low, 1))
    else:
        low = _int(raw.get("min_instances", 1), f"{where}.min_instances", minimum=1)
        high = _int(
            raw.get("max_instances", max(low, instance_count)),
            f"{where}.max_instances",
            minimum=low,
        )
        if instance_count < low:
            raise ConfigError(
                f"{where}: min_instances {low} is more than instance_count {instance_count} (the "
                f"instances the first deploy starts); set instance_count to at least {low}"
            )
        if instance_count > high:
            raise ConfigError(
                f"{where}: instance_count {instance_count} is more than max_instances {high}"
            )
    target = raw.get("target_concurrency", _default(ScalingConfig, "target_concurrency"))
    if isinstance(target, bool) or not isinstance(target, int | float) or target <= 0:
        raise ConfigError(f"{where}.target_concurrency must be a positive number, got {target!r}")
    schedules_raw = raw.get("schedules", [])
    if not isinstance(schedules_raw, list):
        raise ConfigError(f"{where}.schedules must be a list of [[...schedules]] tables")
    schedules = []
    for index, item in enumerate(schedules_raw):
        at = f"{where}.schedules[{index}]"
        _check_keys(item, _SCHEDULE_KEYS, at)
        _mode_keys(item, at, own, hosting)
        name, cron = item.get("name"), item.get("cron")
        if not isinstance(name, str) or not _SCHEDULE_NAME.fullmatch(name):
            raise ConfigError(f"{at}.name must be letters and digits, starting with a letter")
        problem = check_cron(cron) if isinstance(cron, str) else "must be a string"
        if problem:
            raise ConfigError(f"{at}.cron {problem}")
        schedule_min = _int(
            item.get(f"min_{unit}"), f"{at}.min_{unit}", minimum=0 if components else 1
        )
        schedule_max = item.get(f"max_{unit}")
        if schedule_max is None:
            # Application Auto Scaling keeps the target's maximum; a minimum above it is refused
            # at deploy.
            if schedule_min > high:
                raise ConfigError(
                    f"{at}.min_{unit} {schedule_min} is more than max_{unit} {high}; "
                    f"raise max_{unit} or give this schedule its own max_{unit}"
                )
        else:
            schedule_max = _int(schedule_max, f"{at}.max_{unit}", minimum=max(schedule_min, 1))
        time_zone = item.get("time_zone", _default(ScalingSchedule, "time_zone"))
        if not isinstance(time_zone, str) or not _time_zone_exists(time_zone):
            raise ConfigError(f"{at}.time_zone must be an IANA time zone such as Europe/Berlin")
        schedules.append(
            ScalingSchedule(
                name=name,
                cron=cron,
                min_capacity=schedule_min,
                max_capacity=schedule_max,
                time_zone=time_zone,
            )
        )
    return ScalingConfig(
        min_capacity=low,
        max_capacity=high,
        target_concurrency=float(target),
        scale_out_cooldown_seconds=_int(
            raw.get(
                "scale_out_cooldown_seconds", _default(ScalingConfig, "scale_out_cooldown_seconds")
            ),
            f"{where}.scale_out_cooldown_seconds",
            minimum=0,
        ),
        scale_in_cooldown_seconds=_int(
            raw.get(
                "scale_in_cooldown_seconds", _default(ScalingConfig, "scale_in_cooldown_seconds")
            ),
            f"{where}.scale_in_cooldown_seconds",
            minimum=0,
        ),
        schedules=tuple(schedules),
    )


def _mode_keys(raw: dict[str, Any], where: str, own: set[str], hosting: str) -> None:
    """Limits the other hosting mode takes fail with one line saying which ones this one takes."""
    foreign = set(raw) & _LIMIT_KEYS - own
    if foreign:
        why = (
            " (a copy takes all of an instance's GPUs: instances follow copies)"
            if hosting == COMPONENT_HOSTING
            else " (copies scale an inference component)"
        )
        raise ConfigError(
            f'{where}: {_choices(foreign)} not taken with hosting = "{hosting}", which takes '
            f"{_choices(own)}{why}"
        )


def check_cron(expression: str) -> str | None:
    """Why `expression` is not one of Application Auto Scaling's cron expressions, or None."""
    if not _CRON.fullmatch(expression):
        return (
            "must be cron(minutes hours day-of-month month day-of-week year), "
            'e.g. "cron(0 20 ? * MON-FRI *)"'
        )
    fields = expression[5:-1].split()
    if fields[2] != "?" and fields[4] != "?":
        return "must have ? in day-of-month or day-of-week (one of the two), as AWS requires"
    return None


def _time_zone_exists(name: str) -> bool:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _id_list(raw: Any, what: str, pattern: re.Pattern[str], most: int) -> tuple[str, ...]:
    if (
        not isinstance(raw, list)
        or not raw
        or len(raw) > most
        or not all(isinstance(i, str) and pattern.fullmatch(i) for i in raw)
    ):
        example = "subnet-0123456789abcdef0" if "subnet" in what else "sg-0123456789abcdef0"
        raise ConfigError(f"{what} must be a list of 1 to {most} ids such as {example}")
    return tuple(raw)


def _managed_instances(raw: Any, where: str) -> LambdaManagedInstances | None:
    """[relay.managed_instances]: `true` for the defaults, a table to set them, `false` (or
    nothing) for one-request Lambda."""
    where = f"{where}.managed_instances"
    if raw is None or raw is False:
        return None
    if raw is True:
        return LambdaManagedInstances()
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be true, false or a table of settings, not {raw!r}")
    _check_keys(raw, _MANAGED_INSTANCES_KEYS, where)
    types = raw.get("instance_types", list(_default(LambdaManagedInstances, "instance_types")))
    if not isinstance(types, list) or not types or not all(isinstance(t, str) for t in types):
        raise ConfigError(f'{where}.instance_types must be a list such as ["m7g.large"]')
    for instance_type in types:
        if not _ARM64_INSTANCE_TYPE.fullmatch(instance_type):
            raise ConfigError(
                f"{where}.instance_types: {instance_type!r} is not an arm64 (Graviton) instance "
                "type, which the relay's function needs: a g after the generation, such as "
                "m7g.large, c7g.xlarge or m8g.*"
            )
    concurrency = _int(
        raw.get(
            "concurrency_per_environment",
            _default(LambdaManagedInstances, "concurrency_per_environment"),
        ),
        f"{where}.concurrency_per_environment",
        minimum=1,
        maximum=LMI_CONCURRENCY_PER_VCPU,
    )
    ratio = raw.get("memory_gib_per_vcpu", _default(LambdaManagedInstances, "memory_gib_per_vcpu"))
    if ratio not in (2, 4, 8) or isinstance(ratio, bool):
        raise ConfigError(f"{where}.memory_gib_per_vcpu must be 2, 4 or 8, got {ratio!r}")
    max_vcpus = _int(
        raw.get("max_vcpus", _default(LambdaManagedInstances, "max_vcpus")),
        f"{where}.max_vcpus",
        minimum=2,
        maximum=15000,
    )
    sizes = [instance_vcpus(t) for t in types]
    starting = LMI_STARTING_INSTANCES * max((s for s in sizes if s is not None), default=0)
    if max_vcpus < starting:
        raise ConfigError(
            f"{where}.max_vcpus {max_vcpus} is fewer than the {starting} vCPUs of the "
            f"{LMI_STARTING_INSTANCES} instances Lambda starts (spread over the zones) of "
            f"the largest of instance_types; raise max_vcpus or choose smaller types"
        )
    subnets, groups = raw.get("subnet_ids"), raw.get("security_group_ids")
    if (subnets is None) != (groups is None):
        raise ConfigError(
            f"{where}: subnet_ids and security_group_ids go together (the instances' own "
            "network), or neither (the relay stack makes a VPC)"
        )
    return LambdaManagedInstances(
        instance_types=tuple(types),
        concurrency_per_environment=concurrency,
        max_vcpus=max_vcpus,
        memory_gib_per_vcpu=int(ratio),
        subnet_ids=()
        if subnets is None
        else _id_list(subnets, f"{where}.subnet_ids", _SUBNET_ID, 16),
        security_group_ids=()
        if groups is None
        else _id_list(groups, f"{where}.security_group_ids", _SECURITY_GROUP_ID, 5),
    )


def _managed_instances_conflicts(raw: dict[str, Any], where: str) -> None:
    """Relay settings that do not apply on managed instances fail with one line saying why."""
    why = {
        "reserved_concurrency": "concurrency there is per execution environment "
        "(managed_instances.concurrency_per_environment) times environments, bounded by "
        "managed_instances.max_vcpus",
        "snap_start": "execution environments are started ahead of traffic there, never from "
        "cold, and SnapStart is not offered for them",
        "memory_mb": "the function gets one vCPU's memory there "
        "(managed_instances.memory_gib_per_vcpu)",
    }
    for name, reason in why.items():
        if raw.get(name) is not None and not (name == "snap_start" and raw[name] is False):
            raise ConfigError(
                f"{where}.relay.{name} does not apply with managed_instances: {reason}"
            )


def _relay(raw: Any, where: str) -> RelayConfig:
    if raw is None:
        return RelayConfig()
    _check_keys(raw, _RELAY_KEYS, f"{where}.relay")
    auth = raw.get("auth", _default(RelayConfig, "auth"))
    if auth not in AUTH_TYPES:
        raise ConfigError(
            f"{where}.relay.auth must be one of {', '.join(AUTH_TYPES)}, not {auth!r}"
        )
    enabled = raw.get("enabled", _default(RelayConfig, "enabled"))
    if not isinstance(enabled, bool):
        raise ConfigError(f"{where}.relay.enabled must be true or false")
    origins = raw.get("cors_allow_origins", list(_default(RelayConfig, "cors_allow_origins")))
    if not isinstance(origins, list) or not all(isinstance(o, str) and o for o in origins):
        raise ConfigError(f"{where}.relay.cors_allow_origins must be a list of origins")
    invokers = raw.get("invoker_arns", list(_default(RelayConfig, "invoker_arns")))
    if not isinstance(invokers, list) or not all(
        isinstance(a, str) and PRINCIPAL_ARN.match(a) for a in invokers
    ):
        raise ConfigError(
            f"{where}.relay.invoker_arns must be a list of IAM role, user or account-root ARNs "
            "such as arn:aws:iam::123456789012:role/app"
        )
    snap_start = raw.get("snap_start", _default(RelayConfig, "snap_start"))
    if snap_start is not None and not isinstance(snap_start, bool):
        raise ConfigError(f"{where}.relay.snap_start must be true or false")
    managed = _managed_instances(raw.get("managed_instances"), f"{where}.relay")
    if managed is not None:
        _managed_instances_conflicts(raw, where)
        snap_start = False
    concurrency = raw.get("reserved_concurrency")
    # On managed instances max_vcpus bounds the streams at once, as reserved concurrency does
    # for one-request Lambda.
    if auth == "NONE" and concurrency is None and managed is None:
        raise ConfigError(
            f'{where}.relay: a public URL (auth = "NONE") needs reserved_concurrency, the only '
            "limit on how many strangers can keep the GPU endpoint busy at once"
        )
    if auth == "NONE" and invokers:
        raise ConfigError(
            f"{where}.relay: invoker_arns grant IAM access, which a public URL "
            '(auth = "NONE") does not check; drop one or the other'
        )
    if auth == API_KEY_AUTH and concurrency is None and managed is None:
        raise ConfigError(
            f'{where}.relay: auth = "{API_KEY_AUTH}" needs reserved_concurrency: the URL is open '
            "and the function turns away callers without a key itself, so only the reserved "
            "concurrency limits how many of them can run it at once"
        )
    if auth == API_KEY_AUTH and invokers:
        raise ConfigError(
            f"{where}.relay: invoker_arns grant IAM access, which the URL does not check with "
            f'auth = "{API_KEY_AUTH}" (the function checks keys); drop one or the other'
        )
    limits = _key_limits(raw, f"{where}.relay", auth)
    return RelayConfig(
        enabled=enabled,
        auth=auth,
        reserved_concurrency=None
        if concurrency is None
        else _int(concurrency, f"{where}.relay.reserved_concurrency", minimum=1),
        max_new_tokens_limit=_int(
            raw.get("max_new_tokens_limit", _default(RelayConfig, "max_new_tokens_limit")),
            f"{where}.relay.max_new_tokens_limit",
            minimum=1,
            maximum=MAX_NEW_TOKENS_LIMIT.ceiling,
        ),
        cors_allow_origins=tuple(origins),
        invoker_arns=tuple(invokers),
        snap_start=snap_start,
        managed_instances=managed,
        memory_mb=_int(
            raw.get("memory_mb", _default(RelayConfig, "memory_mb")),
            f"{where}.relay.memory_mb",
            minimum=128,
            maximum=10240,
        ),
        **limits,
    )


def _key_limits(raw: dict[str, Any], where: str, auth: str) -> dict[str, int]:
    """The environment's limits for API keys that the table sets, each a whole number from 1
    to its variable's ceiling; refused unless the relay checks keys."""
    given = sorted(set(raw) & set(_KEY_LIMITS))
    if given and auth != API_KEY_AUTH:
        plural = len(given) > 1
        raise ConfigError(
            f"{where}: {', '.join(given)} {'apply' if plural else 'applies'} to API keys only; "
            f'set auth = "{API_KEY_AUTH}" or drop {"them" if plural else "it"}'
        )
    return {
        name: _int(raw[name], f"{where}.{name}", minimum=1, maximum=_KEY_LIMITS[name].ceiling)
        for name in given
    }


def resolve_environment(
    name: str,
    raw: Mapping[str, Any],
    overrides: Mapping[str, Any] | None = None,
    catalog: Catalog | None = None,
) -> EnvironmentConfig:
    """Check one environment's settings, apply overrides, and resolve them against the catalog."""
    catalog = catalog or load_catalog()
    where = f"environment {name!r}"
    if not ENV_NAME.match(name):
        raise ConfigError(
            f"{where}: names are 1-20 lowercase letters and digits, starting with a letter, "
            "with single '-' between them"
        )
    _check_keys(raw, _ENV_KEYS, where)
    settings = {**raw, **{k: v for k, v in (overrides or {}).items() if v is not None}}

    if "model_id" not in settings:
        raise ConfigError(
            f"{where}: model_id is required; choose one of: {_choices(catalog.models)}"
        )
    model = catalog.get(str(settings["model_id"]))
    accept_eula = settings.get("accept_eula", _default(EnvironmentConfig, "accept_eula"))
    if not isinstance(accept_eula, bool):
        raise ConfigError(f"{where}: accept_eula must be true or false")
    problem = licence_problem(model, accept_eula)
    if problem:
        raise ConfigError(f"{where}: {problem}")

    region = settings.get("region")
    if not isinstance(region, str) or region not in model.regions:
        raise ConfigError(f"{where}: {_region_problem(model, region, settings, catalog)}")
    account = settings.get("account")
    if account is not None and not (isinstance(account, str) and ACCOUNT.match(account)):
        raise ConfigError(f"{where}: account must be a 12-digit string, got {account!r}")

    instance_type = settings.get("instance_type") or model.default_instance_type
    problem = deployment_problem(model, region, instance_type, catalog.availability)
    if problem:
        if "instance_type" not in settings:
            problem += f" (the default is {instance_type}: set instance_type)"
        raise ConfigError(f"{where}: {problem}")
    instance_count = _int(
        settings.get("instance_count", _default(EnvironmentConfig, "instance_count")),
        f"{where}: instance_count",
        minimum=1,
    )
    retention = settings.get(
        "log_retention_days", _default(EnvironmentConfig, "log_retention_days")
    )
    if isinstance(retention, bool) or retention not in RETENTION_DAYS:
        raise ConfigError(
            f"{where}: log_retention_days must be one of "
            f"{', '.join(map(str, RETENTION_DAYS))}, got {retention!r}"
        )
    tags = settings.get("tags", _default(EnvironmentConfig, "tags"))
    if not isinstance(tags, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in tags.items()
    ):
        raise ConfigError(f"{where}: tags must be a table of strings")
    protection = settings.get(
        "termination_protection", _default(EnvironmentConfig, "termination_protection")
    )
    if not isinstance(protection, bool):
        raise ConfigError(f"{where}: termination_protection must be true or false")
    alarm_email = settings.get("alarm_email")
    if alarm_email is not None and not (
        isinstance(alarm_email, str) and _EMAIL.fullmatch(alarm_email)
    ):
        raise ConfigError(f"{where}: alarm_email must be an email address, got {alarm_email!r}")
    alarms = _alarms(settings.get("alarms"), where)
    hosting = settings.get("hosting", _default(EnvironmentConfig, "hosting"))
    if hosting not in HOSTING_MODES:
        raise ConfigError(
            f"{where}: hosting must be one of {', '.join(HOSTING_MODES)}, got {hosting!r}"
        )
    scaling = _scaling(settings.get("scaling"), where, instance_count, hosting)
    problem = start_limit_problem(model, components=hosting == COMPONENT_HOSTING)
    if problem:
        raise ConfigError(f"{where}: {problem}")
    relay = _relay(settings.get("relay"), where)
    platform = None
    if relay.enabled:
        try:
            platform = catalog.availability.relay_platform(region)
        except RelayUnavailable as unavailable:
            raise ConfigError(f"{where}: {unavailable}") from None
        if relay.managed_instances is not None and not platform.managed_instances:
            raise ConfigError(
                f"{where}: {catalog.availability.managed_instances_unavailable(region)}; drop "
                "relay.managed_instances to run the relay one request per execution environment"
            )
        if relay.snap_start and not platform.snap_start:
            raise ConfigError(
                f"{where}: {snapstart_unavailable(region)}; drop relay.snap_start to start "
                "without it"
            )
        most = model_max_new_tokens(model, instance_type)
        if most is not None and relay.max_new_tokens_limit > most:
            variable = model.serving.context_variable
            raise ConfigError(
                f"{where}: relay.max_new_tokens_limit {relay.max_new_tokens_limit} is more than "
                f"{model.id} can generate ({variable} {most + 1} minus at least one prompt "
                f"token); use at most {most}"
            )
    return EnvironmentConfig(
        name=name,
        region=region,
        account=account,
        model=model,
        instance_type=instance_type,
        instance_count=instance_count,
        log_retention_days=retention,
        tags=dict(tags),
        relay=relay,
        termination_protection=protection,
        alarms=alarms,
        alarm_email=alarm_email,
        hosting=hosting,
        scaling=scaling,
        relay_platform=platform,
        accept_eula=accept_eula,
    )


def _region_problem(
    model: Model, region: object, settings: Mapping[str, Any], catalog: Catalog
) -> str:
    """Why `region` will not do for `model`, and which regions would: those where the whole
    environment deploys (the relay too, unless it is turned off)."""
    availability = catalog.availability
    relay = settings.get("relay")
    relay_on = not (isinstance(relay, dict) and relay.get("enabled") is False)
    whole = [
        r for r in model.regions if not relay_on or availability.relay_unavailable_reason(r) is None
    ]
    choose = f"choose one of: {_choices(whole)}"
    endpoint_only = sorted(set(model.regions) - set(whole))
    if endpoint_only:
        choose += f" (with relay.enabled = false also: {', '.join(endpoint_only)})"
    known = set(availability.hosting) | availability.cloudformation_sagemaker
    if not isinstance(region, str) or region not in known:
        return f"unknown region {region!r}{did_you_mean(str(region), known)}; {choose}"
    problem = region_problem(model, region, availability) or "it is not among its regions"
    return f"region {region!r} does not host {model.id}: {problem}; {choose}"


def load_environments(path: Path = CONFIG_PATH) -> dict[str, dict[str, Any]]:
    try:
        with path.open("rb") as fh:
            doc = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path.name}: {exc}") from None
    _check_keys(doc, {"environments"}, path.name)
    envs = doc.get("environments")
    if not isinstance(envs, dict) or not envs:
        raise ConfigError(f"{path.name}: declare at least one [environments.<name>] table")
    return envs


def select_environments(
    context: Mapping[str, Any], path: Path = CONFIG_PATH
) -> list[EnvironmentConfig]:
    """The environments to synthesize for this CDK context.

    `-c env=NAME` picks one environment, and only then may model_id, region, instance_type,
    instance_count and hosting be overridden; without `env`, every declared environment is
    synthesized.
    """
    wanted = context.get("env")
    overrides = {k: context.get(k) for k in OVERRIDE_KEYS if context.get(k) not in (None, "")}
    if wanted in (None, ""):
        envs = load_environments(path)
        if overrides:
            raise ConfigError(
                f"overriding {_choices(overrides)} needs an environment: add -c env=<name> "
                f"(one of: {_choices(envs)})"
            )
        return [resolve_environment(name, raw) for name, raw in envs.items()]
    return [environment(wanted, overrides, path=path)]


def environment(
    name: str, overrides: Mapping[str, Any] | None = None, *, path: Path = CONFIG_PATH
) -> EnvironmentConfig:
    """The environment called `name` in the file, resolved: the one lookup by name that synth,
    `cost` and `ask`/`proxy --env` share, and the one "unknown environment" message."""
    envs = load_environments(path)
    if name not in envs:
        raise ConfigError(
            f"unknown environment {name!r}{did_you_mean(name, envs)}; "
            f"choose one of: {_choices(envs)}"
        )
    return resolve_environment(name, envs[name], overrides)
