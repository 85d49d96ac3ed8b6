"""The keys table for the relay's tests: the local DynamoDB server (`jumpstream local
--api-keys` runs the same), and keys made by the `keys` command's own functions."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from streamer.contract import ApiKey, KeyLimits

from jumpstream.keys import create_key, revoke_key
from jumpstream.local_dynamodb import (
    LOCAL_CREDENTIAL,
    LOCAL_REGION,
    local_client,
    start_local_dynamodb,
)
from jumpstream.procs import LineBuffer

_DAY = 24 * 3600


@dataclass(frozen=True)
class KeysTable:
    endpoint_url: str
    name: str

    def environment(self) -> dict[str, str]:
        """What a process needs to reach the table as it would reach DynamoDB."""
        return {
            "AWS_ENDPOINT_URL_DYNAMODB": self.endpoint_url,
            "AWS_DEFAULT_REGION": LOCAL_REGION,
            "AWS_ACCESS_KEY_ID": LOCAL_CREDENTIAL,
            "AWS_SECRET_ACCESS_KEY": LOCAL_CREDENTIAL,
        }

    def client(self) -> Any:
        return local_client(self.endpoint_url)

    def create_key(
        self,
        *,
        revoked: bool = False,
        expired: bool = False,
        requests_per_minute: int | None = None,
        tokens_per_day: int | None = None,
        tokens_per_month: int | None = None,
    ) -> ApiKey:
        limits = KeyLimits(
            requests_per_minute=requests_per_minute,
            tokens_per_day=tokens_per_day,
            tokens_per_month=tokens_per_month,
        )
        # An expired key: made two days ago to last one.
        now = int(time.time()) - 2 * _DAY if expired else None
        client = self.client()
        key = create_key(
            client,
            self.name,
            name="test",
            limits=limits,
            expires_in_days=1 if expired else None,
            now=now,
        )
        if revoked:
            revoke_key(client, self.name, key.key_id)
        return key


@contextmanager
def keys_table() -> Iterator[KeysTable]:
    output = LineBuffer(keep=200)
    try:
        with start_local_dynamodb(sink=output) as served:
            yield KeysTable(endpoint_url=served.endpoint_url, name=served.table_name)
    except Exception:
        print(output.render())
        raise
