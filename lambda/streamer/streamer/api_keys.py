"""API keys: who may call, how often, how much, and what each key used.

With `API_KEYS_TABLE` set, the function URL is public and `KeyGate` (ASGI middleware, just inside
the observer) is the door: every request but those to the open paths shows a key before anything
else runs: before routing, before the body is read, before SageMaker is called. The answer to a
missing, malformed, unknown, revoked or expired key is one and the same 401, so a caller learns
nothing about keys it does not hold; only the log line (by key id, never the secret) says which.

`KeyStore` keeps the rules, against the table laid out as contract.KeyTable says:
- a key's record is read once per KEY_CACHE_SECONDS per process (a revoked key stops within
  that), and its secret is compared by digest in constant time;
- a token budget (per UTC day, per UTC month) is read before the call and refuses once spent:
  a stream that crosses it finishes, the next request is refused (429 `quota_exceeded`);
- requests per minute are counted with one conditional UpdateItem per request, so concurrent
  functions share one count (429 `rate_limited`, Retry-After: the seconds left in the minute);
- usage (requests, prompt and output tokens per UTC day) is added when the answer ends, before
  its last byte goes out: Lambda may freeze the function once the response is complete.
Any failure to reach the table refuses the request (503): the door fails closed.
"""

from __future__ import annotations

import contextlib
import hmac
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import anyio
from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .contract import (
    API_KEY_HEADER,
    KEY_CACHE_SECONDS,
    KeyLimits,
    KeyTable,
    parse_api_key,
    secret_digest,
)
from .dynamodb import DynamoDB
from .errors import ApiError
from .observability import current_record
from .refusals import Render, refusal_response

__all__ = ["Admission", "KeyGate", "KeyStore", "presented_key"]

# Records (and unknown ids) held per process; past this, the oldest is dropped first.
_CACHE_ENTRIES: Final = 4096
# How long the end of an answer waits for its usage to be written.
_USAGE_WAIT_SECONDS: Final = 3.0
_UNAUTHORIZED_MESSAGE: Final = (
    "A valid API key is required: send it as 'Authorization: Bearer <key>' or in the "
    f"'{API_KEY_HEADER}' header."
)


@dataclass(frozen=True, slots=True, kw_only=True)
class _KeyRecord:
    digest: str
    expires_at: int | None
    revoked: bool
    limits: KeyLimits


@dataclass(frozen=True, slots=True, kw_only=True)
class Admission:
    """A request let in: by which key."""

    key_id: str


def presented_key(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The key a request shows: `Authorization: Bearer <key>`, else `x-api-key` (whatever other
    scheme Authorization carries). None when it shows none, or more than one of either header,
    or two different keys (which is ambiguous, so refused)."""
    authorization: list[bytes] = []
    api_key: list[bytes] = []
    header = API_KEY_HEADER.encode("ascii")
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"authorization":
            authorization.append(value)
        elif lowered == header:
            api_key.append(value)
    if len(authorization) > 1 or len(api_key) > 1:
        return None
    bearer = None
    if authorization:
        scheme, _, credentials = authorization[0].decode("latin-1").strip().partition(" ")
        if scheme.lower() == "bearer":
            bearer = credentials.strip()
    shown = None if not api_key else api_key[0].decode("latin-1").strip()
    if bearer is not None and shown is not None and bearer != shown:
        return None  # two different keys: which one is meant?
    # Another scheme (a signing proxy's, Basic) does not hide a key in x-api-key.
    return bearer if bearer is not None else shown


class KeyStore:
    """The rules of keys, kept against the table."""

    def __init__(
        self,
        dynamodb: DynamoDB,
        table: str,
        *,
        defaults: KeyLimits,
        logger: Logger,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._dynamodb = dynamodb
        self._table = table
        self._defaults = defaults
        self._logger = logger
        self._clock = clock
        # key id -> (when the entry goes stale on the monotonic clock, the record or None).
        self._cache: dict[str, tuple[float, _KeyRecord | None]] = {}

    async def admit(self, presented: str | None) -> Admission:
        """Let the request in, or raise the ApiError it gets."""
        key = None if presented is None else parse_api_key(presented)
        if key is None:
            raise _unauthorized("no key, or not a key")
        record = await self._record(key.key_id)
        now = self._clock()
        if record is None:
            raise _unauthorized(f"unknown key {key.key_id}")
        if not hmac.compare_digest(record.digest, secret_digest(key.secret)):
            raise _unauthorized(f"wrong secret for key {key.key_id}")
        if record.revoked:
            raise _unauthorized(f"revoked key {key.key_id}")
        if record.expires_at is not None and now >= record.expires_at:
            raise _unauthorized(f"expired key {key.key_id}")
        limits = record.limits.over(self._defaults)
        if limits.tokens_per_day is not None or limits.tokens_per_month is not None:
            await self._check_budget(key.key_id, limits, now)
        if limits.requests_per_minute is not None:
            await self._count_request(key.key_id, limits.requests_per_minute, now)
        return Admission(key_id=key.key_id)

    async def record_usage(
        self, admission: Admission, *, prompt_tokens: int, output_tokens: int
    ) -> None:
        """Add one request and its tokens to the key's usage of today (UTC)."""
        now = self._clock()
        await self._call(
            "UpdateItem",
            {
                "TableName": self._table,
                "Key": KeyTable.item_key(admission.key_id, KeyTable.day(_day(now))),
                "UpdateExpression": "ADD #r :one, #p :prompt, #o :output SET #u = :now",
                "ExpressionAttributeNames": {
                    "#r": KeyTable.REQUESTS,
                    "#p": KeyTable.PROMPT_TOKENS,
                    "#o": KeyTable.OUTPUT_TOKENS,
                    "#u": KeyTable.LAST_USED_AT,
                },
                "ExpressionAttributeValues": {
                    ":one": _number(1),
                    ":prompt": _number(prompt_tokens),
                    ":output": _number(output_tokens),
                    ":now": _number(int(now)),
                },
            },
        )

    async def _record(self, key_id: str) -> _KeyRecord | None:
        moment = time.monotonic()
        cached = self._cache.get(key_id)
        if cached is not None and cached[0] > moment:
            return cached[1]
        reply = await self._call(
            "GetItem",
            {
                "TableName": self._table,
                "Key": KeyTable.item_key(key_id, KeyTable.RECORD),
                "ConsistentRead": True,
            },
        )
        record = _parse_record(reply.get("Item"))
        self._cache.pop(key_id, None)
        if len(self._cache) >= _CACHE_ENTRIES:
            del self._cache[next(iter(self._cache))]
        self._cache[key_id] = (moment + KEY_CACHE_SECONDS, record)
        return record

    async def _check_budget(self, key_id: str, limits: KeyLimits, now: float) -> None:
        """One Query for this month's days (today's among them)."""
        today = _day(now)
        reply = await self._call(
            "Query",
            {
                "TableName": self._table,
                "KeyConditionExpression": "#pk = :id AND #sk BETWEEN :first AND :today",
                "ExpressionAttributeNames": {
                    "#pk": KeyTable.PARTITION_KEY,
                    "#sk": KeyTable.SORT_KEY,
                    "#o": KeyTable.OUTPUT_TOKENS,
                },
                "ExpressionAttributeValues": {
                    ":id": {"S": key_id},
                    ":first": {"S": KeyTable.day(today[:8] + "01")},
                    ":today": {"S": KeyTable.day(today)},
                },
                "ProjectionExpression": "#sk, #o",
            },
        )
        month = day = 0
        for item in reply.get("Items", []):
            spent = KeyTable.number(item, KeyTable.OUTPUT_TOKENS) or 0
            month += spent
            if item[KeyTable.SORT_KEY]["S"] == KeyTable.day(today):
                day = spent
        if limits.tokens_per_day is not None and day >= limits.tokens_per_day:
            raise ApiError(
                "quota_exceeded",
                f"This API key's budget of {limits.tokens_per_day} output tokens per day is "
                "spent; it renews at 00:00 UTC.",
            )
        if limits.tokens_per_month is not None and month >= limits.tokens_per_month:
            raise ApiError(
                "quota_exceeded",
                f"This API key's budget of {limits.tokens_per_month} output tokens per month "
                "is spent; it renews on the 1st at 00:00 UTC.",
            )

    async def _count_request(self, key_id: str, per_minute: int, now: float) -> None:
        """Count the request in this minute's window, unless the window is full."""
        window = int(now // 60) * 60
        minute = datetime.fromtimestamp(window, UTC).strftime("%Y-%m-%dT%H:%M")
        try:
            await self._call(
                "UpdateItem",
                {
                    "TableName": self._table,
                    "Key": KeyTable.item_key(key_id, KeyTable.minute(minute)),
                    "UpdateExpression": "ADD #r :one SET #ttl = :expires",
                    "ConditionExpression": "attribute_not_exists(#r) OR #r < :limit",
                    "ExpressionAttributeNames": {"#r": KeyTable.REQUESTS, "#ttl": KeyTable.TTL},
                    "ExpressionAttributeValues": {
                        ":one": _number(1),
                        ":limit": _number(per_minute),
                        ":expires": _number(window + 3600),
                    },
                },
                refusals=frozenset({"ConditionalCheckFailedException"}),
            )
        except _Refused:
            raise ApiError(
                "rate_limited",
                f"This API key may make {per_minute} requests per minute; try again when the "
                "minute ends.",
                retry_after=max(1, window + 60 - int(now)),
            ) from None

    async def _call(
        self,
        operation: str,
        parameters: dict[str, Any],
        *,
        refusals: frozenset[str] = frozenset(),
    ) -> dict[str, Any]:
        """One call to the table; a refusal named in `refusals` raises _Refused, any other
        failure refuses the request (503): without the table no one is let in."""
        try:
            return await self._dynamodb.call(operation, parameters)
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code in refusals:
                raise _Refused(code) from None
            self._logger.warning(
                "the API keys table refused a call",
                extra={"operation": operation, "error_code": code},
            )
            raise _unavailable(repr(error)) from None
        except Exception as error:
            self._logger.warning(
                "the API keys table could not be reached",
                extra={"operation": operation, "error_detail": repr(error)},
            )
            raise _unavailable(repr(error)) from None


class _Refused(Exception):
    """DynamoDB refused a call in a way the caller expected (a condition not met)."""


class KeyGate:
    """ASGI middleware: a key before anything else, and the key's usage at the end."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        store: KeyStore,
        open_paths: frozenset[str],
        renders: Mapping[str, Render],
        render: Render,
    ) -> None:
        """`renders` maps a path prefix to the dialect refusals under it are written in
        (OpenAI's under its mount); `render` writes the rest."""
        self._app = app
        self._store = store
        self._open = open_paths
        self._renders = renders
        self._render = render

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self._open:
            await self._app(scope, receive, send)
            return
        record = current_record()
        try:
            admission = await self._store.admit(presented_key(scope["headers"]))
        except ApiError as error:
            if record is not None:
                record.error_detail = error.detail
            await refusal_response(error, self._render_for(scope["path"]))(scope, receive, send)
            return
        if record is not None:
            record.key_id = admission.key_id
        recorded = False

        async def record_usage() -> None:
            nonlocal recorded
            recorded = True
            if record is None:
                return
            # A failure was logged by the store; the answer itself is complete.
            with (
                anyio.CancelScope(shield=True),
                anyio.move_on_after(_USAGE_WAIT_SECONDS),
                contextlib.suppress(ApiError),
            ):
                await self._store.record_usage(
                    admission,
                    prompt_tokens=record.prompt_tokens or 0,
                    output_tokens=record.output_tokens,
                )

        async def send_after_usage(message: Message) -> None:
            if (
                message["type"] == "http.response.body"
                and not message.get("more_body", False)
                and not recorded
            ):
                await record_usage()
            await send(message)

        try:
            await self._app(scope, receive, send_after_usage)
        finally:
            if not recorded:  # the client left, or the answer failed before its end
                await record_usage()

    def _render_for(self, path: str) -> Render:
        for prefix, render in self._renders.items():
            if path == prefix or path.startswith(prefix + "/"):
                return render
        return self._render


def _unauthorized(detail: str) -> ApiError:
    return ApiError("unauthorized", _UNAUTHORIZED_MESSAGE, detail=detail)


def _unavailable(detail: str) -> ApiError:
    return ApiError(
        "unavailable",
        "API keys cannot be checked right now; try again in a few seconds.",
        detail=detail,
    )


def _parse_record(item: dict[str, Any] | None) -> _KeyRecord | None:
    if item is None or KeyTable.SECRET_DIGEST not in item:
        return None
    return _KeyRecord(
        digest=item[KeyTable.SECRET_DIGEST].get("S", ""),
        expires_at=KeyTable.number(item, KeyTable.EXPIRES_AT),
        revoked=KeyTable.REVOKED_AT in item,
        limits=KeyLimits.from_item(item),
    )


def _number(value: int) -> dict[str, str]:
    return {"N": str(value)}


def _day(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d")
