"""``python -m jumpstream keys create|list|revoke|usage``: the keys' table, for people and scripts.

Where the table is: an environment's (``--env``: the name its relay stack outputs, the region of
environments.toml), or one named with ``--table``, optionally on a local DynamoDB-compatible
server (``--endpoint-url``). What each command prints goes to stdout (a table, or JSON with
``--json``), what it says about it to stderr; `create` writes the key alone on stdout, once, so a
script can capture it. Every failure is one line on stderr: exit status 2 for the caller's
mistake (an unknown key, an environment without keys), 1 when AWS or the server failed.
Times are UTC.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, TextIO

from streamer.contract import KEY_CACHE_SECONDS, KeyLimits, Variable, parse_api_key

from jumpstream import arguments
from jumpstream.deployed import DeployedError, api_keys_table
from jumpstream.keys import (
    DayUsage,
    KeyRecord,
    KeysError,
    UnknownKey,
    create_key,
    key_usage,
    list_keys,
    revoke_key,
)
from jumpstream.signing import HOW_TO_GET_CREDENTIALS

__all__ = [
    "MAX_NAME_LENGTH",
    "MAX_USAGE_DAYS",
    "TableLocation",
    "key_id",
    "key_name",
    "limit",
    "open_table",
    "run_create",
    "run_list",
    "run_revoke",
    "run_usage",
    "usage_days",
]

MAX_NAME_LENGTH: Final = 64
#: How far back `usage` looks at most: a year and a day, so any last month or year fits.
MAX_USAGE_DAYS: Final = 366
_NONE: Final = "-"


@dataclass(frozen=True, slots=True, kw_only=True)
class TableLocation:
    """Where the keys' table is: an environment's, or a named one (on a local server)."""

    env: str | None = None
    table: str | None = None
    region: str | None = None
    endpoint_url: str | None = None


# --- Values of the command line (argparse types: one clear line, exit status 2) -----------------


def limit(variable: Variable[int | None]) -> Callable[[str], int]:
    """A limit's value: a whole number from 1 to the ceiling the relay accepts for it."""
    return lambda text: _at_most(text, variable.ceiling)


def usage_days(text: str) -> int:
    """How many days `usage` covers: 1 to MAX_USAGE_DAYS."""
    return _at_most(text, MAX_USAGE_DAYS)


def _at_most(text: str, ceiling: int | None) -> int:
    value = arguments.positive_int(text)
    if ceiling is not None and value > ceiling:
        raise argparse.ArgumentTypeError(f"must be at most {ceiling} (got {text})")
    return value


def key_name(text: str) -> str:
    """A key's name: what `list` and `usage` show beside its id."""
    name = text.strip()
    if not name:
        raise argparse.ArgumentTypeError("a key needs a name, e.g. the app or team it is for")
    if len(name) > MAX_NAME_LENGTH or not name.isprintable():
        raise argparse.ArgumentTypeError(
            f"a name is at most {MAX_NAME_LENGTH} printable characters"
        )
    return name


def key_id(text: str) -> str:
    """A key's id; a whole key given by mistake is refused without being repeated."""
    key = parse_api_key(text)
    if key is not None:
        raise argparse.ArgumentTypeError(
            f"that is a whole key, secret included: give only its id ({key.key_id})"
        )
    return text


# --- The commands -------------------------------------------------------------------------------


def run_create(
    location: TableLocation,
    *,
    name: str,
    limits: KeyLimits,
    expires_in_days: int | None,
    as_json: bool,
    stdout: TextIO,
    stderr: TextIO,
) -> int:
    def create(client: Any, table: str) -> int:
        key = create_key(client, table, name=name, limits=limits, expires_in_days=expires_in_days)
        if as_json:
            stdout.write(json.dumps({"key": key.text, "key_id": key.key_id, "name": name}) + "\n")
        else:
            stdout.write(key.text + "\n")
        stdout.flush()
        expiry = "" if expires_in_days is None else f", expires in {expires_in_days} days"
        stderr.write(
            f"created key {key.key_id} ({name}{expiry}) in table {table}. The key above is shown "
            "this once and stored nowhere: hand it over now. Callers send it as "
            "`Authorization: Bearer KEY`.\n"
        )
        return 0

    return _against_table(location, "create", create, stderr)


def run_list(location: TableLocation, *, as_json: bool, stdout: TextIO, stderr: TextIO) -> int:
    def show(client: Any, table: str) -> int:
        records = list_keys(client, table)
        now = int(datetime.now(UTC).timestamp())
        if as_json:
            stdout.write(json.dumps([_record_json(record, now) for record in records]) + "\n")
        elif not records:
            stderr.write(f"no keys in table {table}: make one with `keys create --name NAME`\n")
        else:
            stdout.write(_render_keys(records, now) + "\n")
        return 0

    return _against_table(location, "list", show, stderr)


def run_revoke(location: TableLocation, key: str, *, stdout: TextIO, stderr: TextIO) -> int:
    def revoke(client: Any, table: str) -> int:
        revoked_at = revoke_key(client, table, key)
        stdout.write(
            f"revoked key {key} at {_time(revoked_at)}; the relay refuses it within "
            f"{KEY_CACHE_SECONDS} seconds (as long as it may keep a key's record)\n"
        )
        return 0

    return _against_table(location, "revoke", revoke, stderr)


def run_usage(
    location: TableLocation,
    *,
    days: int,
    key: str | None,
    as_json: bool,
    stdout: TextIO,
    stderr: TextIO,
) -> int:
    def show(client: Any, table: str) -> int:
        rows = key_usage(client, table, days=days, key_id=key)
        if as_json:
            document = {
                "days": days,
                "usage": [_usage_json(row) for row in rows],
                "total": _counts(rows),
            }
            stdout.write(json.dumps(document) + "\n")
        elif not rows:
            stderr.write(f"no requests in the last {days} days (UTC)\n")
        else:
            stdout.write(_render_usage(rows) + "\n")
        return 0

    return _against_table(location, "usage", show, stderr)


# --- Reaching the table -------------------------------------------------------------------------


def open_table(location: TableLocation) -> tuple[Any, str, str | None]:
    """A DynamoDB client for the table, its name and region. Raises DeployedError (--env).

    A local server (``endpoint_url``) gets the caller's credentials when there are any (DynamoDB
    Local keeps a database per access key) and placeholders otherwise.
    """
    import boto3

    from jumpstream.local_dynamodb import LOCAL_CREDENTIAL, LOCAL_REGION

    region = location.region
    if location.env is not None:
        table, env_region = api_keys_table(location.env)
        region = region or env_region
    else:
        assert location.table is not None
        table = location.table
    if location.endpoint_url is None:
        return boto3.client("dynamodb", region_name=region), table, region
    session = boto3.Session(region_name=region or LOCAL_REGION)
    placeholders: dict[str, str] = {}
    if session.get_credentials() is None:
        placeholders = {
            "aws_access_key_id": LOCAL_CREDENTIAL,
            "aws_secret_access_key": LOCAL_CREDENTIAL,
        }
    client = session.client("dynamodb", endpoint_url=location.endpoint_url, **placeholders)
    return client, table, session.region_name


def _against_table(
    location: TableLocation, command: str, work: Callable[[Any, str], int], stderr: TextIO
) -> int:
    """Run ``work`` with the table's client; every failure becomes one line on stderr."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
    )

    def fail(status: int, why: str) -> int:
        stderr.write(f"jumpstream keys {command}: {why}\n")
        return status

    try:
        client, table, region = open_table(location)
    except DeployedError as error:
        return fail(2, str(error))
    except NoRegionError:
        return fail(2, f"which region is table {location.table} in? Give --region")
    where = f"table {table}" + (f" in {region}" if region else "")
    if location.endpoint_url is not None:
        where += f" at {location.endpoint_url}"
    try:
        return work(client, table)
    except UnknownKey as error:
        return fail(2, str(error))
    except KeysError as error:
        return fail(1, str(error))
    except NoCredentialsError:
        return fail(1, f"no AWS credentials found to reach {where}; {HOW_TO_GET_CREDENTIALS}")
    except EndpointConnectionError as error:
        return fail(1, f"cannot reach {where}: {error}")
    except ClientError as error:
        details = error.response.get("Error", {})
        if details.get("Code") == "ResourceNotFoundException":
            return fail(2, f"{where} does not exist")
        return fail(1, f"{where}: {details.get('Message') or error}")
    except BotoCoreError as error:
        return fail(1, f"{where}: {error}")


# --- What the commands print --------------------------------------------------------------------


def _time(seconds: int | None) -> str:
    if seconds is None:
        return _NONE
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _iso(seconds: int | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def _shown(value: int | None) -> str:
    return _NONE if value is None else str(value)


def _render(header: Sequence[str], rows: Sequence[Sequence[str]], numeric: set[int]) -> str:
    """Columns as wide as their widest cell; numbers aligned right."""
    widths = [max(len(row[column]) for row in (header, *rows)) for column in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(width) if column in numeric else cell.ljust(width)
            for column, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join(line(row) for row in (header, *rows))


def _render_keys(records: Sequence[KeyRecord], now: int) -> str:
    header = (
        *("ID", "NAME", "STATUS", "CREATED (UTC)", "EXPIRES", "REVOKED"),
        *("RPM", "TOKENS/DAY", "TOKENS/MONTH", "LAST USED"),
    )
    rows = [
        (
            record.key_id,
            record.name,
            record.status(now),
            _time(record.created_at),
            _time(record.expires_at),
            _time(record.revoked_at),
            _shown(record.limits.requests_per_minute),
            _shown(record.limits.tokens_per_day),
            _shown(record.limits.tokens_per_month),
            _time(record.last_used_at),
        )
        for record in records
    ]
    return _render(header, rows, numeric={6, 7, 8})


def _record_json(record: KeyRecord, now: int) -> dict[str, object]:
    return {
        "key_id": record.key_id,
        "name": record.name,
        "status": record.status(now),
        "created_at": _iso(record.created_at),
        "expires_at": _iso(record.expires_at),
        "revoked_at": _iso(record.revoked_at),
        "requests_per_minute": record.limits.requests_per_minute,
        "tokens_per_day": record.limits.tokens_per_day,
        "tokens_per_month": record.limits.tokens_per_month,
        "last_used_at": _iso(record.last_used_at),
    }


def _counts(rows: Sequence[DayUsage]) -> dict[str, int]:
    """The rows' requests and tokens added up."""
    return {
        "requests": sum(row.requests for row in rows),
        "prompt_tokens": sum(row.prompt_tokens for row in rows),
        "output_tokens": sum(row.output_tokens for row in rows),
    }


def _usage_json(row: DayUsage) -> dict[str, object]:
    return {"day": row.day, "key_id": row.key_id, "name": row.name, **_counts([row])}


def _render_usage(rows: Sequence[DayUsage]) -> str:
    header = ("DAY (UTC)", "KEY", "NAME", "REQUESTS", "PROMPT TOKENS", "OUTPUT TOKENS")
    cells = [
        (row.day, row.key_id, row.name, *(str(value) for value in _counts([row]).values()))
        for row in rows
    ]
    total = _counts(rows)
    cells.append(("total", "", "", *(str(value) for value in total.values())))
    return _render(header, cells, numeric={3, 4, 5})
