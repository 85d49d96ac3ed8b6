"""API keys in their DynamoDB table: make one, list them, revoke one, read their usage.

Plain functions over a boto3 DynamoDB client and a table name, laid out as the deploy contract's
KeyTable says (the relay reads the same records and writes the usage items). The command line
(keys_command.py) only parses, calls these and prints; `jumpstream local --api-keys` and the
tests call them directly.

A key's secret leaves `create_key` once, in the ApiKey it returns, and is never read back: the
table holds only its digest, and no listing reads the digest either (each projects the attributes
it shows), so no listing, error or log line can carry it.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

from streamer.contract import ApiKey, KeyLimits, KeyTable, new_api_key, secret_digest

__all__ = [
    "DayUsage",
    "KeyRecord",
    "KeysError",
    "UnknownKey",
    "create_key",
    "key_usage",
    "list_keys",
    "revoke_key",
]

_DAY_SECONDS: Final = 86_400
#: A fresh id colliding with an existing one (48 random bits) is all but impossible, but the
#: conditional put would refuse it rather than overwrite that key: then a new key is drawn.
_CREATE_ATTEMPTS: Final = 3
_CONDITION_FAILED: Final = "ConditionalCheckFailedException"


class KeysError(Exception):
    """Why a keys operation cannot be done, in one line that never holds a secret."""


class UnknownKey(KeysError):
    """No key has that id."""

    def __init__(self, key_id: str) -> None:
        super().__init__(f"no key with id {key_id!r} (`keys list` shows the ids)")
        self.key_id = key_id


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyRecord:
    """What `keys list` shows of a key: never its secret nor the secret's digest. Times are
    whole seconds since the epoch."""

    key_id: str
    name: str
    created_at: int
    expires_at: int | None
    revoked_at: int | None
    limits: KeyLimits
    #: When its newest day of usage last saw a request (None: never used).
    last_used_at: int | None = None

    def status(self, now: int) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


@dataclass(frozen=True, slots=True, kw_only=True)
class DayUsage:
    """One key's usage on one UTC day."""

    day: str
    key_id: str
    name: str
    requests: int
    prompt_tokens: int
    output_tokens: int


# What is read of a record: everything but the secret's digest.
_SHOWN_ATTRIBUTES: Final = (
    KeyTable.PARTITION_KEY,
    KeyTable.NAME,
    KeyTable.CREATED_AT,
    KeyTable.EXPIRES_AT,
    KeyTable.REVOKED_AT,
    KeyTable.REQUESTS_PER_MINUTE,
    KeyTable.TOKENS_PER_DAY,
    KeyTable.TOKENS_PER_MONTH,
)


def create_key(
    client: Any,
    table: str,
    *,
    name: str,
    limits: KeyLimits | None = None,
    expires_in_days: int | None = None,
    now: int | None = None,
) -> ApiKey:
    """Write a new key's record (never over an existing id) and return the key, whose secret
    exists nowhere else: the table keeps only its digest."""
    created_at = int(time.time()) if now is None else now
    item: dict[str, Any] = {
        KeyTable.SORT_KEY: {"S": KeyTable.RECORD},
        KeyTable.NAME: {"S": name},
        KeyTable.CREATED_AT: {"N": str(created_at)},
    }
    if expires_in_days is not None:
        item[KeyTable.EXPIRES_AT] = {"N": str(created_at + expires_in_days * _DAY_SECONDS)}
    item.update((limits or KeyLimits()).item())
    for _ in range(_CREATE_ATTEMPTS):
        key = new_api_key()
        item[KeyTable.PARTITION_KEY] = {"S": key.key_id}
        item[KeyTable.SECRET_DIGEST] = {"S": secret_digest(key.secret)}
        try:
            client.put_item(
                TableName=table,
                Item=item,
                ConditionExpression="attribute_not_exists(#pk)",
                ExpressionAttributeNames={"#pk": KeyTable.PARTITION_KEY},
            )
        except client.exceptions.ConditionalCheckFailedException:
            continue
        return key
    raise KeysError(f"{_CREATE_ATTEMPTS} fresh key ids were all taken in {table}; try again")


def list_keys(client: Any, table: str, *, last_use: bool = True) -> list[KeyRecord]:
    """Every key's record, oldest first; with ``last_use``, when each was last used."""
    names = {f"#a{index}": attribute for index, attribute in enumerate(_SHOWN_ATTRIBUTES)}
    names["#sk"] = KeyTable.SORT_KEY
    pages = client.get_paginator("scan").paginate(
        TableName=table,
        FilterExpression="#sk = :record",
        ProjectionExpression=", ".join(name for name in names if name != "#sk"),
        ExpressionAttributeNames=names,
        ExpressionAttributeValues={":record": {"S": KeyTable.RECORD}},
    )
    records = [_record(item) for page in pages for item in page.get("Items", [])]
    if last_use:
        records = [_with_last_use(client, table, record) for record in records]
    return sorted(records, key=lambda record: (record.created_at, record.key_id))


def revoke_key(client: Any, table: str, key_id: str, *, now: int | None = None) -> int:
    """Mark the key revoked and return when it was (a key revoked before keeps that time).

    Raises UnknownKey when no key has that id: the update is conditional, so it never makes a
    record that would look like a key."""
    revoked_at = int(time.time()) if now is None else now
    try:
        answer = client.update_item(
            TableName=table,
            Key=KeyTable.item_key(key_id, KeyTable.RECORD),
            UpdateExpression="SET #revoked = if_not_exists(#revoked, :now)",
            ConditionExpression="attribute_exists(#pk)",
            ExpressionAttributeNames={
                "#revoked": KeyTable.REVOKED_AT,
                "#pk": KeyTable.PARTITION_KEY,
            },
            ExpressionAttributeValues={":now": {"N": str(revoked_at)}},
            # ALL_NEW: UPDATED_NEW leaves out a time if_not_exists kept (moto does).
            ReturnValues="ALL_NEW",
        )
    except client.exceptions.ConditionalCheckFailedException:
        raise UnknownKey(key_id) from None
    return int(answer["Attributes"][KeyTable.REVOKED_AT]["N"])


def key_usage(
    client: Any,
    table: str,
    *,
    days: int,
    key_id: str | None = None,
    today: date | None = None,
) -> list[DayUsage]:
    """Usage per key per UTC day over the last ``days`` days (today included), by day then key
    name; days without requests are left out. Raises UnknownKey for a ``key_id`` no key has."""
    last = today or datetime.now(UTC).date()
    first = last - timedelta(days=days - 1)
    keys = list_keys(client, table, last_use=False)
    if key_id is not None:
        keys = [record for record in keys if record.key_id == key_id]
        if not keys:
            raise UnknownKey(key_id)
    rows: list[DayUsage] = []
    for record in keys:
        pages = client.get_paginator("query").paginate(
            TableName=table,
            KeyConditionExpression="#pk = :id AND #sk BETWEEN :first AND :last",
            ExpressionAttributeNames={
                "#pk": KeyTable.PARTITION_KEY,
                "#sk": KeyTable.SORT_KEY,
            },
            ExpressionAttributeValues={
                ":id": {"S": record.key_id},
                ":first": {"S": KeyTable.day(first.isoformat())},
                ":last": {"S": KeyTable.day(last.isoformat())},
            },
        )
        for page in pages:
            for item in page.get("Items", []):
                rows.append(
                    DayUsage(
                        day=item[KeyTable.SORT_KEY]["S"].removeprefix(KeyTable.DAY_PREFIX),
                        key_id=record.key_id,
                        name=record.name,
                        requests=KeyTable.number(item, KeyTable.REQUESTS) or 0,
                        prompt_tokens=KeyTable.number(item, KeyTable.PROMPT_TOKENS) or 0,
                        output_tokens=KeyTable.number(item, KeyTable.OUTPUT_TOKENS) or 0,
                    )
                )
    return sorted(rows, key=lambda row: (row.day, row.name, row.key_id))


def _record(item: dict[str, Any]) -> KeyRecord:
    return KeyRecord(
        key_id=item[KeyTable.PARTITION_KEY]["S"],
        name=item.get(KeyTable.NAME, {}).get("S", ""),
        created_at=KeyTable.number(item, KeyTable.CREATED_AT) or 0,
        expires_at=KeyTable.number(item, KeyTable.EXPIRES_AT),
        revoked_at=KeyTable.number(item, KeyTable.REVOKED_AT),
        limits=KeyLimits.from_item(item),
    )


def _with_last_use(client: Any, table: str, record: KeyRecord) -> KeyRecord:
    """The record with its last use: from its newest day of usage, one item read."""
    answer = client.query(
        TableName=table,
        KeyConditionExpression="#pk = :id AND begins_with(#sk, :day)",
        ProjectionExpression="#last",
        ExpressionAttributeNames={
            "#pk": KeyTable.PARTITION_KEY,
            "#sk": KeyTable.SORT_KEY,
            "#last": KeyTable.LAST_USED_AT,
        },
        ExpressionAttributeValues={
            ":id": {"S": record.key_id},
            ":day": {"S": KeyTable.DAY_PREFIX},
        },
        ScanIndexForward=False,
        Limit=1,
    )
    items = answer.get("Items", [])
    if not items:
        return record
    return dataclasses.replace(
        record, last_used_at=KeyTable.number(items[0], KeyTable.LAST_USED_AT)
    )
