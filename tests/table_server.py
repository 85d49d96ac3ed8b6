"""A keys table served over HTTP by moto's DynamoDB, for the relay and the keys command."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
from streamer.contract import ApiKey, KeyTable, new_api_key, secret_digest

_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
REGION = "us-east-1"


@dataclass(frozen=True)
class KeysTable:
    endpoint_url: str
    name: str

    def environment(self) -> dict[str, str]:
        """What a process needs to reach the table as it would reach DynamoDB."""
        return {
            "AWS_ENDPOINT_URL_DYNAMODB": self.endpoint_url,
            "AWS_DEFAULT_REGION": REGION,
            **_CREDENTIALS,
        }

    def client(self) -> Any:
        return boto3.client(
            "dynamodb",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106
        )

    def create_key(
        self,
        *,
        revoked: bool = False,
        expires_at: int | None = None,
        requests_per_minute: int | None = None,
        tokens_per_day: int | None = None,
        tokens_per_month: int | None = None,
    ) -> ApiKey:
        key = new_api_key()
        item: dict[str, Any] = {
            KeyTable.PARTITION_KEY: {"S": key.key_id},
            KeyTable.SORT_KEY: {"S": KeyTable.RECORD},
            KeyTable.NAME: {"S": "test"},
            KeyTable.SECRET_DIGEST: {"S": secret_digest(key.secret)},
            KeyTable.CREATED_AT: {"N": str(int(time.time()))},
        }
        numbers = {
            KeyTable.EXPIRES_AT: expires_at,
            KeyTable.REVOKED_AT: int(time.time()) if revoked else None,
            KeyTable.REQUESTS_PER_MINUTE: requests_per_minute,
            KeyTable.TOKENS_PER_DAY: tokens_per_day,
            KeyTable.TOKENS_PER_MONTH: tokens_per_month,
        }
        item.update({name: {"N": str(value)} for name, value in numbers.items() if value})
        self.client().put_item(TableName=self.name, Item=item)
        return key


class _OneAtATime:
    """moto applies a conditional update as a read, then a write, without a lock: two requests
    at once can both pass the condition. DynamoDB applies each atomically; so does this."""

    def __init__(self, app: Any) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: Any, start_response: Any) -> list[bytes]:
        with self._lock:
            return list(self._app(environ, start_response))


@contextmanager
def keys_table(name: str = "jumpstream-test-keys") -> Iterator[KeysTable]:
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    app = _OneAtATime(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        table = KeysTable(endpoint_url=f"http://{host}:{port}", name=name)
        table.client().create_table(
            TableName=name,
            KeySchema=[
                {"AttributeName": KeyTable.PARTITION_KEY, "KeyType": "HASH"},
                {"AttributeName": KeyTable.SORT_KEY, "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": KeyTable.PARTITION_KEY, "AttributeType": "S"},
                {"AttributeName": KeyTable.SORT_KEY, "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        yield table
    finally:
        server.shutdown()
        thread.join()
