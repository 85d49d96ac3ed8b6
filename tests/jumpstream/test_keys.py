"""`python -m jumpstream keys ...` against the local DynamoDB-compatible server, with real boto3.

Each test gets a table of its own on one server per module (the server is a child process, as
`jumpstream local --api-keys` runs it). `--env` is tested against moto's CloudFormation and
DynamoDB in this process: a stack like the relay's, whose output names the table.
"""

from __future__ import annotations

import io
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws
from streamer.contract import (
    KEY_CACHE_SECONDS,
    KEY_REQUESTS_PER_MINUTE,
    ApiKey,
    KeyTable,
    parse_api_key,
    secret_digest,
)

from jumpstream import keys
from jumpstream.cli import main
from jumpstream.local_dynamodb import (
    LocalDynamoDB,
    _OneAtATime,
    create_keys_table,
    local_client,
    start_local_dynamodb,
)
from jumpstream.procs import LineBuffer
from stacks.deployment import API_KEYS_TABLE_OUTPUT

DAY = 86_400


@pytest.fixture(scope="module")
def server() -> Iterator[LocalDynamoDB]:
    with start_local_dynamodb(sink=LineBuffer()) as running:
        yield running


@pytest.fixture(autouse=True)
def no_aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing of the machine's AWS set-up: the local server gets placeholder credentials."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def table(server: LocalDynamoDB) -> str:
    name = f"keys-{uuid.uuid4().hex[:12]}"
    create_keys_table(server.client(), name)
    return name


class Run:
    """One command's exit status and what it wrote."""

    def __init__(self, *argv: str) -> None:
        out, err = io.StringIO(), io.StringIO()
        self.status = main(list(argv), stdout=out, stderr=err)
        self.stdout = out.getvalue()
        self.stderr = err.getvalue()


def keys_cli(server: LocalDynamoDB, table: str, command: str, *more: str) -> Run:
    return Run("keys", command, "--table", table, "--endpoint-url", server.endpoint_url, *more)


def items(server: LocalDynamoDB, table: str) -> list[dict[str, Any]]:
    return server.client().scan(TableName=table)["Items"]


def record(server: LocalDynamoDB, table: str, key_id: str) -> dict[str, Any]:
    return server.client().get_item(
        TableName=table,
        Key={KeyTable.PARTITION_KEY: {"S": key_id}, KeyTable.SORT_KEY: {"S": KeyTable.RECORD}},
    )["Item"]


def put_day(
    server: LocalDynamoDB, table: str, key_id: str, day: str, counts: tuple[int, int, int]
) -> None:
    """A day of usage, as the relay writes it."""
    requests, prompt_tokens, output_tokens = counts
    server.client().put_item(
        TableName=table,
        Item={
            KeyTable.PARTITION_KEY: {"S": key_id},
            KeyTable.SORT_KEY: {"S": KeyTable.day(day)},
            KeyTable.REQUESTS: {"N": str(requests)},
            KeyTable.PROMPT_TOKENS: {"N": str(prompt_tokens)},
            KeyTable.OUTPUT_TOKENS: {"N": str(output_tokens)},
            KeyTable.LAST_USED_AT: {"N": str(_midnight(day))},
        },
    )


def _midnight(day: str) -> int:
    return int(datetime.combine(date.fromisoformat(day), datetime.min.time(), UTC).timestamp())


def created(run: Run) -> ApiKey:
    assert run.status == 0, run.stderr
    key = parse_api_key(run.stdout.strip())
    assert key is not None, run.stdout
    return key


# --- create -------------------------------------------------------------------------------------


def test_create_prints_the_key_once_and_the_table_holds_only_its_digest(
    server: LocalDynamoDB, table: str
) -> None:
    before = int(time.time())
    run = keys_cli(
        server, table, "create", "--name", "mobile app", "--rpm", "60",
        "--tokens-per-day", "200000", "--expires", "30",
    )  # fmt: skip
    key = created(run)
    assert run.stdout == key.text + "\n"  # the key alone: a script captures it with $(...)
    assert key.secret not in run.stderr
    assert f"created key {key.key_id} (mobile app, expires in 30 days)" in run.stderr
    assert "shown this once" in run.stderr
    stored = record(server, table, key.key_id)
    assert stored[KeyTable.SECRET_DIGEST] == {"S": secret_digest(key.secret)}
    assert stored[KeyTable.NAME] == {"S": "mobile app"}
    assert stored[KeyTable.REQUESTS_PER_MINUTE] == {"N": "60"}
    assert stored[KeyTable.TOKENS_PER_DAY] == {"N": "200000"}
    assert KeyTable.TOKENS_PER_MONTH not in stored
    created_at = int(stored[KeyTable.CREATED_AT]["N"])
    assert before <= created_at <= int(time.time())
    assert int(stored[KeyTable.EXPIRES_AT]["N"]) == created_at + 30 * DAY
    assert key.secret not in json.dumps(items(server, table))


def test_create_json_gives_the_key_and_its_id(server: LocalDynamoDB, table: str) -> None:
    run = keys_cli(server, table, "create", "--name", "ci", "--tokens-per-month", "5", "--json")
    document = json.loads(run.stdout)
    key = parse_api_key(document["key"])
    assert key is not None
    assert document == {"key": key.text, "key_id": key.key_id, "name": "ci"}
    assert record(server, table, key.key_id)[KeyTable.TOKENS_PER_MONTH] == {"N": "5"}


def test_create_never_overwrites_a_key_with_the_same_id(
    server: LocalDynamoDB, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = created(keys_cli(server, table, "create", "--name", "first"))
    fresh = ApiKey("0123456789ab", "s" * 43)
    drawn = iter([ApiKey(first.key_id, "x" * 43), fresh])
    monkeypatch.setattr(keys, "new_api_key", lambda: next(drawn))
    second = created(keys_cli(server, table, "create", "--name", "second"))
    assert second == fresh
    assert record(server, table, first.key_id)[KeyTable.NAME] == {"S": "first"}
    assert record(server, table, first.key_id)[KeyTable.SECRET_DIGEST] == {
        "S": secret_digest(first.secret)
    }

    monkeypatch.setattr(keys, "new_api_key", lambda: ApiKey(first.key_id, "y" * 43))
    refused = keys_cli(server, table, "create", "--name", "third")
    assert refused.status == 1
    assert refused.stdout == ""
    assert refused.stderr == (
        f"jumpstream keys create: 3 fresh key ids were all taken in {table}; try again\n"
    )
    assert len(items(server, table)) == 2


# --- list ---------------------------------------------------------------------------------------


def test_list_shows_ids_names_limits_and_last_use_but_no_secret(
    server: LocalDynamoDB, table: str
) -> None:
    mobile = created(keys_cli(server, table, "create", "--name", "mobile", "--rpm", "60"))
    partner = created(
        keys_cli(server, table, "create", "--name", "partner", "--tokens-per-month", "1000")
    )
    put_day(server, table, mobile.key_id, "2026-11-30", (1, 2, 3))
    put_day(server, table, mobile.key_id, "2026-12-02", (1, 2, 3))
    run = keys_cli(server, table, "list")
    assert run.status == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].split()[:4] == ["ID", "NAME", "STATUS", "CREATED"]
    # Oldest first; two keys made in the same second come in the order of their ids.
    by_id = {line.split()[0]: line for line in lines[1:]}
    assert sorted(line.split()[:3] for line in lines[1:]) == sorted(
        [[mobile.key_id, "mobile", "active"], [partner.key_id, "partner", "active"]]
    )
    assert "2026-12-02 00:00:00Z" in by_id[mobile.key_id]  # the newest day's last use
    assert by_id[partner.key_id].endswith("1000  -")  # partner: month budget, never used

    listed = {
        entry["key_id"]: entry
        for entry in json.loads(keys_cli(server, table, "list", "--json").stdout)
    }
    assert listed[mobile.key_id]["requests_per_minute"] == 60
    assert listed[mobile.key_id]["last_used_at"] == "2026-12-02T00:00:00Z"
    assert listed[partner.key_id]["tokens_per_month"] == 1000
    assert listed[partner.key_id]["last_used_at"] is None
    for key in (mobile, partner):
        for shown in (run.stdout, run.stderr, json.dumps(listed)):
            assert key.secret not in shown
            assert secret_digest(key.secret) not in shown
    assert "secret" not in json.dumps(listed)


def test_list_of_an_empty_table_says_how_to_make_a_key(server: LocalDynamoDB, table: str) -> None:
    run = keys_cli(server, table, "list")
    assert (run.status, run.stdout) == (0, "")
    assert "make one with `keys create --name NAME`" in run.stderr
    assert json.loads(keys_cli(server, table, "list", "--json").stdout) == []


# --- revoke -------------------------------------------------------------------------------------


def test_revoke_marks_the_key_and_says_when_it_takes_effect(
    server: LocalDynamoDB, table: str
) -> None:
    key = created(keys_cli(server, table, "create", "--name", "leaked"))
    run = keys_cli(server, table, "revoke", key.key_id)
    assert run.status == 0, run.stderr
    assert f"revoked key {key.key_id}" in run.stdout
    assert f"within {KEY_CACHE_SECONDS} seconds" in run.stdout
    revoked_at = int(record(server, table, key.key_id)[KeyTable.REVOKED_AT]["N"])
    # Revoking again keeps the first time.
    assert keys.revoke_key(server.client(), table, key.key_id, now=revoked_at + 99) == revoked_at
    listed = json.loads(keys_cli(server, table, "list", "--json").stdout)
    assert listed[0]["status"] == "revoked"


def test_revoke_of_an_unknown_id_is_refused_and_writes_nothing(
    server: LocalDynamoDB, table: str
) -> None:
    created(keys_cli(server, table, "create", "--name", "kept"))
    run = keys_cli(server, table, "revoke", "0123456789ab")
    assert run.status == 2
    assert run.stderr == (
        "jumpstream keys revoke: no key with id '0123456789ab' (`keys list` shows the ids)\n"
    )
    assert len(items(server, table)) == 1


def test_a_whole_key_given_as_an_id_is_refused_without_repeating_its_secret(
    server: LocalDynamoDB, table: str, capsys: pytest.CaptureFixture[str]
) -> None:
    key = created(keys_cli(server, table, "create", "--name", "oops"))
    with pytest.raises(SystemExit) as refused:
        keys_cli(server, table, "revoke", key.text)
    assert refused.value.code == 2
    err = capsys.readouterr().err
    assert f"that is a whole key, secret included: give only its id ({key.key_id})" in err
    assert key.secret not in err
    assert KeyTable.REVOKED_AT not in record(server, table, key.key_id)


# --- usage --------------------------------------------------------------------------------------


def test_usage_tables_each_day_and_key_with_totals(server: LocalDynamoDB, table: str) -> None:
    mobile = created(keys_cli(server, table, "create", "--name", "mobile"))
    partner = created(keys_cli(server, table, "create", "--name", "partner"))
    today = datetime.now(UTC).date()
    yesterday = (today - timedelta(days=1)).isoformat()
    long_ago = (today - timedelta(days=10)).isoformat()
    put_day(server, table, mobile.key_id, today.isoformat(), (3, 30, 300))
    put_day(server, table, mobile.key_id, yesterday, (2, 20, 200))
    put_day(server, table, partner.key_id, today.isoformat(), (1, 10, 100))
    put_day(server, table, partner.key_id, long_ago, (50, 500, 5000))  # outside --days 7
    # A per-minute count is not usage.
    server.client().put_item(
        TableName=table,
        Item={
            KeyTable.PARTITION_KEY: {"S": mobile.key_id},
            KeyTable.SORT_KEY: {"S": KeyTable.minute(f"{today.isoformat()}T10:00")},
            KeyTable.REQUESTS: {"N": "7"},
            KeyTable.TTL: {"N": str(int(time.time()) + 3600)},
        },
    )

    run = keys_cli(server, table, "usage")
    assert run.status == 0, run.stderr
    rows = [line.split() for line in run.stdout.splitlines()]
    assert rows == [
        ["DAY", "(UTC)", "KEY", "NAME", "REQUESTS", "PROMPT", "TOKENS", "OUTPUT", "TOKENS"],
        [yesterday, mobile.key_id, "mobile", "2", "20", "200"],
        [today.isoformat(), mobile.key_id, "mobile", "3", "30", "300"],
        [today.isoformat(), partner.key_id, "partner", "1", "10", "100"],
        ["total", "6", "60", "600"],
    ]

    document = json.loads(keys_cli(server, table, "usage", "--days", "30", "--json").stdout)
    assert document["days"] == 30
    assert document["total"] == {"requests": 56, "prompt_tokens": 560, "output_tokens": 5600}
    assert document["usage"][0] == {
        "day": long_ago, "key_id": partner.key_id, "name": "partner",
        "requests": 50, "prompt_tokens": 500, "output_tokens": 5000,
    }  # fmt: skip

    only = json.loads(keys_cli(server, table, "usage", "--key", mobile.key_id, "--json").stdout)
    assert {row["key_id"] for row in only["usage"]} == {mobile.key_id}
    assert only["total"] == {"requests": 5, "prompt_tokens": 50, "output_tokens": 500}


def test_usage_of_an_unknown_key_is_refused(server: LocalDynamoDB, table: str) -> None:
    run = keys_cli(server, table, "usage", "--key", "ffffffffffff")
    assert run.status == 2
    assert run.stderr == (
        "jumpstream keys usage: no key with id 'ffffffffffff' (`keys list` shows the ids)\n"
    )


def test_usage_without_requests_says_so(server: LocalDynamoDB, table: str) -> None:
    created(keys_cli(server, table, "create", "--name", "idle"))
    run = keys_cli(server, table, "usage", "--days", "3")
    assert (run.status, run.stdout, run.stderr) == (0, "", "no requests in the last 3 days (UTC)\n")


# --- The secret, everywhere -----------------------------------------------------------------------


def test_the_secret_appears_only_in_creates_stdout(server: LocalDynamoDB, table: str) -> None:
    create = keys_cli(server, table, "create", "--name", "watched", "--rpm", "5")
    key = created(create)
    put_day(server, table, key.key_id, "2026-12-01", (1, 1, 1))
    later = [
        keys_cli(server, table, "list"),
        keys_cli(server, table, "list", "--json"),
        keys_cli(server, table, "usage", "--days", "366", "--json"),
        keys_cli(server, table, "usage", "--key", key.key_id),
        keys_cli(server, table, "revoke", key.key_id),
        keys_cli(server, table, "revoke", "000000000000"),
    ]
    written = create.stderr + "".join(run.stdout + run.stderr for run in later)
    assert key.key_id in written
    assert key.secret not in written
    assert secret_digest(key.secret) not in written
    assert key.secret not in json.dumps(items(server, table))


# --- Bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["create", "--name", "x", "--rpm", "0"], "argument --rpm: must be 1 or more (got 0)"),
        (
            ["create", "--name", "x", "--rpm", str(KEY_REQUESTS_PER_MINUTE.ceiling + 1)],
            f"argument --rpm: must be at most {KEY_REQUESTS_PER_MINUTE.ceiling}",
        ),
        (
            ["create", "--name", "x", "--tokens-per-day", "-5"],
            "argument --tokens-per-day: must be 1 or more (got -5)",
        ),
        (
            ["create", "--name", "x", "--tokens-per-day", "1", "--tokens-per-month", "2"],
            "argument --tokens-per-month: not allowed with argument --tokens-per-day",
        ),
        (["create", "--name", "  "], "argument --name: a key needs a name"),
        (["create", "--name", "x\ty"], "argument --name: a name is at most 64 printable"),
        (["create", "--name", "x", "--expires", "0"], "argument --expires: must be 1 or more"),
        (["usage", "--days", "0"], "argument --days: must be 1 or more (got 0)"),
        (["usage", "--days", "367"], "argument --days: must be at most 366 (got 367)"),
        (["create"], "the following arguments are required: --name"),
    ],
)
def test_bad_input_is_one_clear_line_and_status_2(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as refused:
        main(["keys", *argv, "--table", "t", "--endpoint-url", "http://127.0.0.1:9"])
    assert refused.value.code == 2
    assert says in capsys.readouterr().err.splitlines()[-1]


def test_a_table_that_does_not_exist_is_named(server: LocalDynamoDB) -> None:
    run = keys_cli(server, "nosuch", "list")
    assert run.status == 2
    assert run.stderr == (
        f"jumpstream keys list: table nosuch in us-east-1 at {server.endpoint_url} does not exist\n"
    )


def test_a_table_without_a_region_asks_for_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.delenv("AWS_REGION", raising=False)
    run = Run("keys", "list", "--table", "t")
    assert (run.status, run.stderr) == (
        2,
        "jumpstream keys list: which region is table t in? Give --region\n",
    )


def test_endpoint_url_goes_with_table_not_env() -> None:
    run = Run("keys", "list", "--env", "dev", "--endpoint-url", "http://127.0.0.1:9")
    assert run.status == 2
    assert "--endpoint-url goes with --table" in run.stderr


# --- --env --------------------------------------------------------------------------------------

#: Enough of the relay stack for CloudFormation (moto's): the keys' table and its output.
_RELAY_STACK = {
    "Resources": {
        "ApiKeys": {
            "Type": "AWS::DynamoDB::Table",
            "Properties": {
                "KeySchema": [
                    {"AttributeName": KeyTable.PARTITION_KEY, "KeyType": "HASH"},
                    {"AttributeName": KeyTable.SORT_KEY, "KeyType": "RANGE"},
                ],
                "AttributeDefinitions": [
                    {"AttributeName": KeyTable.PARTITION_KEY, "AttributeType": "S"},
                    {"AttributeName": KeyTable.SORT_KEY, "AttributeType": "S"},
                ],
                "BillingMode": "PAY_PER_REQUEST",
            },
        }
    },
    "Outputs": {API_KEYS_TABLE_OUTPUT: {"Value": {"Ref": "ApiKeys"}}},
}


def test_env_finds_the_table_in_the_relay_stacks_output(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        cloudformation = boto3.client("cloudformation", region_name="us-east-1")
        cloudformation.create_stack(
            StackName="jumpstream-dev-relay", TemplateBody=json.dumps(_RELAY_STACK)
        )
        outputs = cloudformation.describe_stacks(StackName="jumpstream-dev-relay")["Stacks"][0]
        table = outputs["Outputs"][0]["OutputValue"]
        key = created(Run("keys", "create", "--env", "dev", "--name", "deployed"))
        stored = boto3.client("dynamodb", region_name="us-east-1").get_item(
            TableName=table,
            Key={
                KeyTable.PARTITION_KEY: {"S": key.key_id},
                KeyTable.SORT_KEY: {"S": KeyTable.RECORD},
            },
        )["Item"]
        assert stored[KeyTable.SECRET_DIGEST] == {"S": secret_digest(key.secret)}
        listed = json.loads(Run("keys", "list", "--env", "dev", "--json").stdout)
        assert [entry["key_id"] for entry in listed] == [key.key_id]


def test_env_without_the_keys_table_says_what_to_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    without_keys = {"Resources": {"Nothing": {"Type": "AWS::SNS::Topic"}}}
    with mock_aws():
        boto3.client("cloudformation", region_name="us-east-1").create_stack(
            StackName="jumpstream-dev-relay", TemplateBody=json.dumps(without_keys)
        )
        run = Run("keys", "list", "--env", "dev")
    assert run.status == 2
    assert run.stderr == (
        "jumpstream keys list: stack jumpstream-dev-relay in us-east-1 has no ApiKeysTableName "
        'output (status CREATE_COMPLETE): is the relay\'s auth "API_KEY" (environments.toml) '
        "and its deploy finished?\n"
    )


# --- The local server ---------------------------------------------------------------------------


def test_the_local_server_lets_one_request_at_a_time_into_moto() -> None:
    """The wrapper itself: requests on many threads, never two inside at once."""
    inside = 0
    most = 0
    guard = threading.Lock()

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        nonlocal inside, most
        with guard:
            inside += 1
            most = max(most, inside)
        time.sleep(0.005)
        with guard:
            inside -= 1
        start_response("200 OK", [])
        return [b"ok"]

    serialized = _OneAtATime(app)
    threads = [
        threading.Thread(target=lambda: serialized({}, lambda *args: None)) for _ in range(16)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most == 1


def test_concurrent_conditional_updates_stay_within_their_limit(
    server: LocalDynamoDB, table: str
) -> None:
    """As the relay counts a key's requests per minute: 16 clients race to add to a count
    capped at 10; exactly 10 succeed and the count is 10 (moto alone let 12 through)."""
    limit = 10
    accepted = 0
    counted = threading.Lock()
    minute = {
        KeyTable.PARTITION_KEY: {"S": "0123456789ab"},
        KeyTable.SORT_KEY: {"S": KeyTable.minute("2026-12-01T10:00")},
    }

    def add_requests() -> None:
        nonlocal accepted
        client = local_client(server.endpoint_url)
        for _ in range(5):
            try:
                client.update_item(
                    TableName=table,
                    Key=minute,
                    UpdateExpression="ADD #requests :one",
                    ConditionExpression="attribute_not_exists(#requests) OR #requests < :limit",
                    ExpressionAttributeNames={"#requests": KeyTable.REQUESTS},
                    ExpressionAttributeValues={":one": {"N": "1"}, ":limit": {"N": str(limit)}},
                )
            except client.exceptions.ConditionalCheckFailedException:
                continue
            with counted:
                accepted += 1

    threads = [threading.Thread(target=add_requests) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stored = server.client().get_item(TableName=table, Key=minute)["Item"]
    assert (accepted, stored[KeyTable.REQUESTS]) == (limit, {"N": str(limit)})


def test_the_local_table_is_laid_out_as_the_stacks(server: LocalDynamoDB) -> None:
    client = server.client()
    described = client.describe_table(TableName=server.table_name)["Table"]
    assert described["KeySchema"] == [
        {"AttributeName": KeyTable.PARTITION_KEY, "KeyType": "HASH"},
        {"AttributeName": KeyTable.SORT_KEY, "KeyType": "RANGE"},
    ]
    assert described["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    ttl = client.describe_time_to_live(TableName=server.table_name)["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": KeyTable.TTL}
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", server.endpoint_url)
    assert server.child.poll() is None
