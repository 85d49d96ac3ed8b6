"""The relay's API keys table (relay.auth = "API_KEY"): keys, their limits and their usage.

`jumpstream keys` writes each key's record; the function reads it and counts usage beside it
(the layout is the contract's KeyTable). The table is on demand (a relay's traffic comes in
bursts and idles for days), encrypted under the account's AWS-managed DynamoDB key, backed up
continuously where the environment is protected, and removed by `cdk destroy` like the rest of
the relay.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from constructs import Construct
from streamer.contract import KeyTable

from stacks.nag import acknowledge

__all__ = ["RELAY_TABLE_ACTIONS", "ApiKeysTable"]

#: All the function may do with the table: read a key's record (GetItem), count a minute's
#: requests and add a day's usage (UpdateItem, conditional and atomic), and sum a month's days
#: (Query). No Scan, PutItem or DeleteItem: keys are made, listed and revoked by `jumpstream
#: keys` with the operator's own credentials, never by the function.
RELAY_TABLE_ACTIONS = ("dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:Query")


class ApiKeysTable(Construct):
    """A DynamoDB table laid out as the contract's KeyTable says.

    Encryption: AWS-managed KMS (`aws/dynamodb`) rather than a key of the stack's own. Either
    encrypts with KMS and shows each use in CloudTrail, and cdk-nag asks for neither; the
    managed key needs no KMS permission in the function's role or in the role of whoever runs
    `jumpstream keys` (DynamoDB uses it on their behalf), costs nothing a month, and has no
    deletion window that would outlive `cdk destroy`. A customer-managed key would add only a
    key policy of our own to look after, and three KMS actions to the function.

    `point_in_time_recovery`: continuous backups for 35 days (the environments with termination
    protection on); without them a lost table is re-made by creating keys again.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, point_in_time_recovery: bool
    ) -> None:
        super().__init__(scope, construct_id)
        text = dynamodb.AttributeType.STRING
        self.table = dynamodb.Table(
            self,
            "Table",
            partition_key=dynamodb.Attribute(name=KeyTable.PARTITION_KEY, type=text),
            sort_key=dynamodb.Attribute(name=KeyTable.SORT_KEY, type=text),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            time_to_live_attribute=KeyTable.TTL,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=point_in_time_recovery
            ),
            # Termination protection guards the whole stack; once it is off, `cdk destroy` is
            # meant to remove everything, keys included (a retained table would be orphaned,
            # and a later deploy would make a new one beside it).
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        if not point_in_time_recovery:
            acknowledge(
                self.table,
                "AwsSolutions-DDB3",
                "Point-in-time recovery is on where the environment has termination protection; "
                "in an unprotected (disposable) environment a lost keys table is re-made by "
                "creating keys again, and continuous backups would bill for nothing.",
            )

    @property
    def table_name(self) -> str:
        return self.table.table_name

    def grant_relay(self, role: iam.IRole) -> None:
        """Exactly RELAY_TABLE_ACTIONS, on this table's ARN (it has no index)."""
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ReadKeysCountUsage",
                actions=list(RELAY_TABLE_ACTIONS),
                resources=[self.table.table_arn],
            )
        )
