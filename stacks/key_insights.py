"""Who uses the relay most, by API key: Contributor Insights rules over the relay's log group,
and the dashboard widgets that rank their top keys.

The relay writes one JSON line per request (streamer/observability.py). With API keys that line
names the key by its public id (the contract's LogField.KEY_ID; never the secret), and every
request line says how many tokens it generated (LogField.OUTPUT_TOKENS). One rule adds up output
tokens per key, the other counts requests per key; both read only lines that carry both fields, so
a request's other log lines, and requests refused before a key was known, count for no key.
CloudWatch evaluates the rules as the lines arrive: nothing is asked of the function, and the keys'
table is not read. The rules bill per rule and per matching line, so they exist only with
relay.auth "API_KEY".
"""

from __future__ import annotations

from typing import Any, Final

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_logs as logs
from constructs import Construct
from streamer.contract import LogField

from stacks.deployment import environment_prefix
from stacks.metrics import PERIOD

__all__ = [
    "TOP_KEYS",
    "KeyInsights",
    "TopContributorsWidget",
    "insight_rule_body",
]

#: How many keys each widget ranks.
TOP_KEYS: Final = 10


def insight_rule_body(log_group_name: str, *, value_of: str | None) -> dict[str, Any]:
    """A Contributor Insights rule (schema CloudWatchLogRule 1) over the relay's request lines,
    keyed by the key's id: summing `value_of` of each line, or counting lines when None."""
    contribution: dict[str, Any] = {
        "Keys": [f"$.{LogField.KEY_ID}"],
        "Filters": [
            {"Match": f"$.{field}", "IsPresent": True}
            for field in (LogField.KEY_ID, LogField.OUTPUT_TOKENS)
        ],
    }
    if value_of is not None:
        contribution["ValueOf"] = f"$.{value_of}"
    return {
        "Schema": {"Name": "CloudWatchLogRule", "Version": 1},
        "LogGroupNames": [log_group_name],
        "LogFormat": "JSON",
        "Contribution": contribution,
        "AggregateOn": "Count" if value_of is None else "Sum",
    }


class TopContributorsWidget(cloudwatch.ConcreteWidget):
    """A dashboard graph of a Contributor Insights rule's top contributors, one line each.

    CloudWatch draws this from the rule itself (a metric widget with `insightRule`, as the
    console writes it); aws-cdk-lib has no widget for it, and a metric math expression
    (INSIGHT_RULE_METRIC) gives one series for all contributors, not one per key.
    """

    def __init__(
        self,
        *,
        title: str,
        rule_name: str,
        region: str,
        top: int = TOP_KEYS,
        width: int = 12,
        height: int = 6,
    ) -> None:
        super().__init__(width, height)
        self._properties = {
            "title": title,
            "region": region,
            "view": "timeSeries",
            "stacked": False,
            "period": PERIOD.to_seconds(),
            "legend": {"position": "right"},
            "insightRule": {"maxContributorCount": top, "orderBy": "Sum", "ruleName": rule_name},
        }

    def to_json(self) -> list[Any]:
        return [
            {
                "type": "metric",
                "x": self._x,
                "y": self._y,
                "width": self.width,
                "height": self.height,
                "properties": self._properties,
            }
        ]


class KeyInsights(Construct):
    """The two rules (`<prefix>-relay-top-keys-by-output-tokens` and `...-by-requests`, named
    so an operator can ask for a report on the command line) and their widgets."""

    def __init__(
        self, scope: Construct, construct_id: str, *, environment: str, log_group: logs.ILogGroup
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        prefix = f"{environment_prefix(environment)}-relay-top-keys-by"
        self.by_output_tokens = cloudwatch.CfnInsightRule(
            self,
            "ByOutputTokens",
            rule_name=f"{prefix}-output-tokens",
            rule_state="ENABLED",
            rule_body=stack.to_json_string(
                insight_rule_body(log_group.log_group_name, value_of=LogField.OUTPUT_TOKENS)
            ),
        )
        self.by_requests = cloudwatch.CfnInsightRule(
            self,
            "ByRequests",
            rule_name=f"{prefix}-requests",
            rule_state="ENABLED",
            rule_body=stack.to_json_string(
                insight_rule_body(log_group.log_group_name, value_of=None)
            ),
        )
        self.widgets: list[cloudwatch.IWidget] = [
            TopContributorsWidget(
                title=f"Top {TOP_KEYS} API keys by output tokens",
                rule_name=self.by_output_tokens.attr_rule_name,
                region=stack.region,
            ),
            TopContributorsWidget(
                title=f"Top {TOP_KEYS} API keys by requests",
                rule_name=self.by_requests.attr_rule_name,
                region=stack.region,
            ),
        ]
