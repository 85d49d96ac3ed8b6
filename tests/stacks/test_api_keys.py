"""relay.auth = "API_KEY": the config that asks for it, and the relay stack it synthesizes.

One app holds two keyed environments, one with termination protection and one without, and is
synthesized once with cdk-nag; every template test below reads that assembly.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from streamer.contract import (
    API_KEY_HEADER,
    API_KEYS_TABLE,
    KEY_REQUESTS_PER_MINUTE,
    KEY_TOKENS_PER_DAY,
    KEY_TOKENS_PER_MONTH,
    METRIC_NAMESPACE,
    SERVICE_NAME,
    UPSTREAM_READ_TIMEOUT_SECONDS,
    KeyTable,
    LogField,
    function_environment,
)

from stacks.api_keys import RELAY_TABLE_ACTIONS
from stacks.config import resolve_environment
from stacks.deployment import API_KEYS_TABLE_OUTPUT, AUTH_TYPE_OUTPUT, EnvironmentConfig
from stacks.errors import ConfigError
from stacks.key_insights import TOP_KEYS
from stacks.nag import enable_nag
from stacks.relay_stack import RelayStack
from tests.stacks.test_lint import lint
from tests.stacks.test_relay_template import BASE, skip_bundling_app

KEYED = {
    **BASE,
    "relay": {
        "auth": "API_KEY",
        "reserved_concurrency": 4,
        "key_requests_per_minute": 60,
        "key_tokens_per_day": 200_000,
        "cors_allow_origins": ["https://app.example.com"],
    },
}
# A protected environment with the third limit: every limit reaches the function.
PROTECTED = {
    **BASE,
    "termination_protection": True,
    "relay": {"auth": "API_KEY", "reserved_concurrency": 4, "key_tokens_per_month": 5_000_000},
}


@dataclass(frozen=True)
class Keyed:
    configs: dict[str, EnvironmentConfig]
    templates: dict[str, dict]
    files: dict[str, Path]
    #: Each stack's metadata (the cloud assembly's <stack>.metadata.json): its warnings.
    metadata: dict[str, dict]
    report: dict


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Keyed:
    outdir = tmp_path_factory.mktemp("keyed")
    app = skip_bundling_app(outdir)
    configs = {
        "keys": resolve_environment("keys", KEYED),
        "keysprod": resolve_environment("keysprod", PROTECTED),
    }
    stacks = {
        name: RelayStack(app, config.relay_stack_name, config=config)
        for name, config in configs.items()
    }
    enable_nag(app)
    app.synth()
    files = {name: outdir / f"{stack.stack_name}.template.json" for name, stack in stacks.items()}
    return Keyed(
        configs=configs,
        templates={name: json.loads(path.read_text()) for name, path in files.items()},
        files=files,
        metadata={
            name: json.loads((outdir / f"{stack.stack_name}.metadata.json").read_text())
            for name, stack in stacks.items()
        },
        report=json.loads((outdir / "validation-report.json").read_text()),
    )


def _of_type(template: dict, kind: str) -> dict[str, dict]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def _one(template: dict, kind: str) -> tuple[str, dict]:
    ((logical_id, resource),) = _of_type(template, kind).items()
    return logical_id, resource


def _joined(value: Any) -> str:
    """A string CloudFormation joins from text and references, with each reference written as
    `<Ref X>` or `<GetAtt X.Y>`, so the JSON inside can be read."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(_joined(part) for part in parts)
    if "Ref" in value:
        return f"<Ref {value['Ref']}>"
    if "Fn::GetAtt" in value:
        return "<GetAtt {}.{}>".format(*value["Fn::GetAtt"])
    raise AssertionError(f"unexpected intrinsic {value}")


@pytest.mark.parametrize(("env", "backed_up"), [("keys", False), ("keysprod", True)])
def test_the_keys_table_is_laid_out_as_the_contract_says(
    keyed: Keyed, env: str, backed_up: bool
) -> None:
    """On demand, pk/sk strings, the TTL attribute, encrypted under KMS, continuously backed up
    exactly where termination protection is on, and removed with the stack."""
    _, table = _one(keyed.templates[env], "AWS::DynamoDB::Table")
    properties = table["Properties"]
    assert properties["KeySchema"] == [
        {"AttributeName": KeyTable.PARTITION_KEY, "KeyType": "HASH"},
        {"AttributeName": KeyTable.SORT_KEY, "KeyType": "RANGE"},
    ]
    assert sorted(properties["AttributeDefinitions"], key=lambda a: a["AttributeName"]) == [
        {"AttributeName": "pk", "AttributeType": "S"},
        {"AttributeName": "sk", "AttributeType": "S"},
    ]
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert "ProvisionedThroughput" not in properties
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "ttl", "Enabled": True}
    # SSEEnabled without a key of our own: the account's AWS-managed key (aws/dynamodb).
    assert properties["SSESpecification"] == {"SSEEnabled": True}
    assert properties["PointInTimeRecoverySpecification"] == {
        "PointInTimeRecoveryEnabled": backed_up
    }
    assert "DeletionProtectionEnabled" not in properties
    assert (table["DeletionPolicy"], table["UpdateReplacePolicy"]) == ("Delete", "Delete")
    assert not _of_type(keyed.templates[env], "AWS::KMS::Key")


def test_the_function_may_read_keys_and_count_usage_in_its_table_and_nothing_more(
    keyed: Keyed,
) -> None:
    template = keyed.templates["keys"]
    table_id, _ = _one(template, "AWS::DynamoDB::Table")
    _, policy = _one(template, "AWS::IAM::Policy")
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    dynamodb = [s for s in statements if any(a.startswith("dynamodb:") for a in s["Action"])]
    assert dynamodb == [
        {
            "Sid": "ReadKeysCountUsage",
            "Effect": "Allow",
            "Action": ["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:Query"],
            "Resource": {"Fn::GetAtt": [table_id, "Arn"]},
        }
    ]
    assert tuple(dynamodb[0]["Action"]) == RELAY_TABLE_ACTIONS
    # No other statement reaches the table, an index of it, or a KMS key.
    others = json.dumps([s for s in statements if s not in dynamodb])
    assert table_id not in others
    assert "dynamodb:" not in others
    assert "kms:" not in json.dumps(statements)
    _, role = _one(template, "AWS::IAM::Role")
    assert "ManagedPolicyArns" not in role["Properties"]
    assert "Policies" not in role["Properties"]


@pytest.mark.parametrize("env", ["keys", "keysprod"])
def test_the_function_gets_the_table_and_the_limits_through_the_contract(
    keyed: Keyed, env: str
) -> None:
    template = keyed.templates[env]
    config = keyed.configs[env]
    table_id, _ = _one(template, "AWS::DynamoDB::Table")
    _, function = _one(template, "AWS::Lambda::Function")
    variables = function["Properties"]["Environment"]["Variables"]
    relay = config.relay
    # The table's name is CloudFormation's (a reference); everything else is literal.
    assert variables[API_KEYS_TABLE.name] == {"Ref": table_id}
    context = config.model.context_limits(config.instance_type)
    assert context is not None
    assert {**variables, API_KEYS_TABLE.name: "the table"} == function_environment(
        endpoint_name=config.endpoint_name,
        model_id=config.model.id,
        prompt_template=config.model.prompt_template,
        serving_engine=config.model.engine,
        max_new_tokens_limit=relay.max_new_tokens_limit,
        upstream_read_timeout_seconds=UPSTREAM_READ_TIMEOUT_SECONDS.default,
        service_name=SERVICE_NAME,
        metrics_namespace=METRIC_NAMESPACE,
        environment_name=env,
        web_adapter=True,
        snap_start=True,
        api_keys_table="the table",
        key_requests_per_minute=relay.key_requests_per_minute,
        key_tokens_per_day=relay.key_tokens_per_day,
        key_tokens_per_month=relay.key_tokens_per_month,
        tokenizer_uri=config.relay_target.tokenizer_uri,
        model_max_total_tokens=context[0],
        model_max_input_tokens=context[1],
    )
    limits = {
        name: variables.get(name)
        for name in (
            KEY_REQUESTS_PER_MINUTE.name,
            KEY_TOKENS_PER_DAY.name,
            KEY_TOKENS_PER_MONTH.name,
        )
    }
    assert limits == (
        {
            "KEY_REQUESTS_PER_MINUTE": "60",
            "KEY_TOKENS_PER_DAY": "200000",
            "KEY_TOKENS_PER_MONTH": None,
        }
        if env == "keys"
        else {
            "KEY_REQUESTS_PER_MINUTE": None,
            "KEY_TOKENS_PER_DAY": None,
            "KEY_TOKENS_PER_MONTH": "5000000",
        }
    )
    assert function["Properties"]["ReservedConcurrentExecutions"] == 4


def test_the_url_lets_callers_through_to_the_function_which_checks_keys(keyed: Keyed) -> None:
    """AuthType NONE without the public-URL warning (callers need a key); a browser may send
    the key in its own header as well as in Authorization."""
    template = keyed.templates["keys"]
    _, url = _one(template, "AWS::Lambda::Url")
    assert url["Properties"]["AuthType"] == "NONE"
    assert url["Properties"]["InvokeMode"] == "RESPONSE_STREAM"
    allowed = url["Properties"]["Cors"]["AllowHeaders"]
    assert "authorization" in allowed
    assert API_KEY_HEADER in allowed
    # Lambda lets anyone through the URL to the function: the two permissions every public
    # URL needs, and no IAM principal (the URL would not check one).
    permissions = sorted(
        (p["Properties"]["Action"], p["Properties"]["Principal"])
        for p in _of_type(template, "AWS::Lambda::Permission").values()
    )
    assert permissions == [("lambda:InvokeFunction", "*"), ("lambda:InvokeFunctionUrl", "*")]
    warnings = [
        entry["data"]
        for entries in keyed.metadata["keys"].values()
        for entry in entries
        if entry["type"] == "aws:cdk:warning"
    ]
    assert all("PUBLIC" not in str(warning) for warning in warnings)
    assert any(  # the check can fail: the same file carries other entries
        entry["type"] == "aws:cdk:logicalId"
        for entries in keyed.metadata["keys"].values()
        for entry in entries
    )


def test_the_outputs_name_the_table_and_the_auth_type(keyed: Keyed) -> None:
    template = keyed.templates["keys"]
    table_id, _ = _one(template, "AWS::DynamoDB::Table")
    outputs = template["Outputs"]
    assert outputs[API_KEYS_TABLE_OUTPUT]["Value"] == {"Ref": table_id}
    assert outputs[AUTH_TYPE_OUTPUT]["Value"] == "API_KEY"
    assert API_KEYS_TABLE_OUTPUT == "ApiKeysTableName"


def test_contributor_insights_rank_keys_by_output_tokens_and_by_requests(keyed: Keyed) -> None:
    """Each rule reads the relay's own log group, as JSON, keyed by the key's id, and only the
    request lines of keyed requests (both fields present)."""
    template = keyed.templates["keys"]
    _, function = _one(template, "AWS::Lambda::Function")
    log_group = function["Properties"]["LoggingConfig"]["LogGroup"]
    rules = {
        r["Properties"]["RuleName"]: r["Properties"]
        for r in _of_type(template, "AWS::CloudWatch::InsightRule").values()
    }
    assert sorted(rules) == [
        "jumpstream-keys-relay-top-keys-by-output-tokens",
        "jumpstream-keys-relay-top-keys-by-requests",
    ]
    bodies = {name: json.loads(_joined(rule["RuleBody"])) for name, rule in rules.items()}
    filters = [
        {"Match": "$.key_id", "IsPresent": True},
        {"Match": "$.output_tokens", "IsPresent": True},
    ]
    common = {
        "Schema": {"Name": "CloudWatchLogRule", "Version": 1},
        "LogGroupNames": [f"<Ref {log_group['Ref']}>"],
        "LogFormat": "JSON",
    }
    assert bodies["jumpstream-keys-relay-top-keys-by-output-tokens"] == {
        **common,
        "Contribution": {"Keys": ["$.key_id"], "Filters": filters, "ValueOf": "$.output_tokens"},
        "AggregateOn": "Sum",
    }
    assert bodies["jumpstream-keys-relay-top-keys-by-requests"] == {
        **common,
        "Contribution": {"Keys": ["$.key_id"], "Filters": filters},
        "AggregateOn": "Count",
    }
    assert all(rule["RuleState"] == "ENABLED" for rule in rules.values())


def test_the_dashboard_shows_the_top_keys_of_each_rule(keyed: Keyed) -> None:
    template = keyed.templates["keys"]
    rule_ids = {
        r["Properties"]["RuleName"]: logical_id
        for logical_id, r in _of_type(template, "AWS::CloudWatch::InsightRule").items()
    }
    _, dashboard = _one(template, "AWS::CloudWatch::Dashboard")
    body = json.loads(_joined(dashboard["Properties"]["DashboardBody"]))
    ranked = [w for w in body["widgets"] if "insightRule" in w["properties"]]
    prefix = "jumpstream-keys-relay-top-keys-by"
    assert [w["properties"]["insightRule"] for w in ranked] == [
        {
            "maxContributorCount": TOP_KEYS,
            "orderBy": "Sum",
            "ruleName": f"<GetAtt {rule_ids[f'{prefix}-{what}']}.RuleName>",
        }
        for what in ("output-tokens", "requests")
    ]
    for widget in ranked:
        assert widget["type"] == "metric"
        assert widget["properties"]["region"] == "eu-west-1"
        assert widget["properties"]["view"] == "timeSeries"
        assert widget["width"] == 12
    # One row of their own, below the failures and above the fleet, side by side.
    assert [(w["x"], w["y"]) for w in ranked] == [(0, 12), (12, 12)]
    fleet = [w for w in body["widgets"] if w["properties"].get("title", "").startswith("GPU")]
    assert fleet[0]["y"] == 18
    # The Refused graph draws every ErrorType the relay writes, the new kinds included.
    (refused,) = [
        w for w in body["widgets"] if w["properties"].get("title", "").startswith("Refused")
    ]
    assert "ErrorType" in json.dumps(refused)


def test_keyed_stacks_are_nag_and_lint_clean(keyed: Keyed) -> None:
    """cdk-nag passes; its one acknowledged DynamoDB finding is the unprotected environment's
    point-in-time recovery, with its reason."""
    (nag,) = [r for r in keyed.report["pluginReports"] if r["pluginName"] == "AwsSolutions"]
    assert (nag["conclusion"], nag["violations"]) == ("success", [])
    ddb = [f for f in nag["suppressedViolations"] if f["ruleName"].startswith("AwsSolutions-DDB")]
    assert [(f["ruleName"], c["constructPath"]) for f in ddb for c in f["violatingConstructs"]] == [
        ("AwsSolutions-DDB3", "jumpstream-keys-relay/Relay/ApiKeys/Table/Resource")
    ]
    assert "termination protection" in ddb[0]["reason"]
    assert lint([str(path) for path in keyed.files.values()], "eu-west-1") == []


@pytest.mark.parametrize(
    ("relay", "says"),
    [
        (
            {"auth": "API_KEY"},
            'environment \'t\'.relay: auth = "API_KEY" needs reserved_concurrency',
        ),
        (
            {
                "auth": "API_KEY",
                "reserved_concurrency": 2,
                "invoker_arns": ["arn:aws:iam::123456789012:role/app"],
            },
            "environment 't'.relay: invoker_arns grant IAM access, which the URL does not check "
            'with auth = "API_KEY" (the function checks keys); drop one or the other',
        ),
        (
            {"key_tokens_per_day": 1000},
            "environment 't'.relay: key_tokens_per_day applies to API keys only; set auth = "
            '"API_KEY" or drop it',
        ),
        (
            {"auth": "NONE", "reserved_concurrency": 2, "key_requests_per_minute": 10,
             "key_tokens_per_month": 10},
            "environment 't'.relay: key_requests_per_minute, key_tokens_per_month apply to API "
            'keys only; set auth = "API_KEY" or drop them',
        ),
        (
            {"auth": "API_KEY", "reserved_concurrency": 2, "key_requests_per_minute": 0},
            "environment 't'.relay.key_requests_per_minute must be at least 1 and at most "
            f"{KEY_REQUESTS_PER_MINUTE.ceiling}, got 0",
        ),
        (
            {"auth": "API_KEY", "reserved_concurrency": 2, "key_tokens_per_month": 10**13},
            "environment 't'.relay.key_tokens_per_month must be at least 1 and at most "
            f"{KEY_TOKENS_PER_MONTH.ceiling}, got {10**13}",
        ),
        (
            {"auth": "API_KEY", "reserved_concurrency": 2, "key_tokens_per_day": 1.5},
            "environment 't'.relay.key_tokens_per_day must be a whole number, got 1.5",
        ),
        (
            {"auth": "API_KEYS"},
            "environment 't'.relay.auth must be one of AWS_IAM, NONE, API_KEY, not 'API_KEYS'",
        ),
    ],
)  # fmt: skip
def test_key_settings_that_cannot_work_are_refused_in_one_line(relay: dict, says: str) -> None:
    with pytest.raises(ConfigError) as refused:
        resolve_environment("t", {**BASE, "relay": relay})
    assert str(refused.value).startswith(says)
    assert "\n" not in str(refused.value)


def test_limits_reach_the_config_at_their_ceiling() -> None:
    ceiling = KEY_TOKENS_PER_DAY.ceiling
    relay = {"auth": "API_KEY", "reserved_concurrency": 2, "key_tokens_per_day": ceiling}
    config = resolve_environment("t", {**BASE, "relay": relay}).relay
    assert (config.api_keys, config.url_auth_type, config.key_tokens_per_day) == (
        True,
        "NONE",
        ceiling,
    )
    assert (config.key_requests_per_minute, config.key_tokens_per_month) == (None, None)
    default = resolve_environment("t", BASE).relay
    assert (default.api_keys, default.url_auth_type) == (False, "AWS_IAM")


def _contribution(rule: dict, line: dict) -> tuple[str, float] | None:
    """What a rule takes from one JSON log line, as Contributor Insights reads it: None when a
    filter excludes the line, else the contributor's key and the line's value (1 when counted).
    Only what these rules use: `$.field` paths and IsPresent filters."""

    def field(path: str) -> str:
        name = path.removeprefix("$.")
        assert re.fullmatch(r"[a-z_]+", name), path
        return name

    contribution = rule["Contribution"]
    for condition in contribution["Filters"]:
        assert set(condition) == {"Match", "IsPresent"}, condition
        if (field(condition["Match"]) in line) != condition["IsPresent"]:
            return None
    (key,) = contribution["Keys"]
    value_of = contribution.get("ValueOf")
    return line[field(key)], (line[field(value_of)] if value_of else 1)


def test_the_rules_read_the_request_lines_the_relay_writes() -> None:
    """The relay's own request lines, written by its Powertools logger: a keyed request counts
    for its key with its output tokens; a request without a key counts for no key."""
    import io
    import logging

    from aws_lambda_powertools import Logger
    from streamer.observability import RequestRecord

    from stacks.key_insights import insight_rule_body

    stream = io.StringIO()
    logger = Logger(service="test-key-insights", logger_handler=logging.StreamHandler(stream))
    keyed = RequestRecord(request_id="r1", method="POST", path="/v1/chat/completions")
    keyed.key_id, keyed.generated_tokens = "0123456789ab", 42
    anonymous = RequestRecord(request_id="r2", method="POST", path="/generate")
    anonymous.error_type = "unauthorized"
    for record in (keyed, anonymous):
        logger.info("request finished", extra=record.fields())
    lines = [json.loads(text) for text in stream.getvalue().splitlines()]
    assert len(lines) == 2
    tokens = insight_rule_body("group", value_of=LogField.OUTPUT_TOKENS)
    requests = insight_rule_body("group", value_of=None)
    assert [_contribution(tokens, line) for line in lines] == [("0123456789ab", 42), None]
    assert [_contribution(requests, line) for line in lines] == [("0123456789ab", 1), None]
