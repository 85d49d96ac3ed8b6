"""The deploy contract: the function reads exactly the names and defaults it declares, accepts the
environment it renders, writes exactly the metrics it names, and its error table covers every
kind the function raises, with the statuses callers have always had.

The stack's and `jumpstream local`'s environments are checked against the same function in
tests/stacks/test_relay_template.py and tests/jumpstream/test_cli_local.py.
"""

from __future__ import annotations

import ast
import functools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import streamer
from streamer import contract
from streamer.answer_room import ContextWindow
from streamer.contract import (
    ERROR_KINDS,
    RETRYABLE_KINDS,
    Dimension,
    Metric,
    Variable,
    function_environment,
)
from streamer.observability import (
    MetricsContext,
    RequestRecord,
    refused_connections_metrics,
    request_metrics,
)
from streamer.settings import Settings, SettingsError, load_settings

from jumpstream import client

PACKAGE = Path(streamer.__file__).resolve().parent
REPO = PACKAGE.parents[2]
REQUIRED = {contract.ENDPOINT_NAME.name: "e", contract.AWS_REGION.name: "eu-west-1"}
VARIABLES = [value for value in vars(contract).values() if isinstance(value, Variable)]

# Each setting the function reads: its variable, a value other than the default, and the field
# of Settings that value must reach.
READ = [
    (contract.ENDPOINT_NAME, "other-endpoint", "endpoint_name", "other-endpoint"),
    (contract.AWS_REGION, "ap-northeast-1", "region", "ap-northeast-1"),
    (contract.INFERENCE_COMPONENT_NAME, "ic-1", "inference_component_name", "ic-1"),
    (contract.MODEL_ID, "m", "model_id", "m"),
    (contract.SERVING_ENGINE, "vllm", "serving_engine", "vllm"),
    (contract.MAX_NEW_TOKENS_LIMIT, "77", "max_new_tokens_limit", 77),
    (contract.MAX_BODY_BYTES, "4096", "max_body_bytes", 4096),
    (contract.UPSTREAM_READ_TIMEOUT_SECONDS, "12.5", "upstream_read_timeout_seconds", 12.5),
    (contract.UPSTREAM_CONNECT_TIMEOUT_SECONDS, "3", "upstream_connect_timeout_seconds", 3.0),
    (contract.LOG_PROMPTS, "true", "log_prompts", True),
    (contract.POWERTOOLS_METRICS_NAMESPACE, "team/llm", "metrics_namespace", "team/llm"),
    (contract.POWERTOOLS_SERVICE_NAME, "my-relay", "service_name", "my-relay"),
    (contract.JUMPSTREAM_ENVIRONMENT, "prod", "environment_name", "prod"),
    (contract.HOST, "0.0.0.0", "host", "0.0.0.0"),
    (contract.PORT, "9000", "port", 9000),
    (contract.AWS_LWA_PORT, "9001", "port", 9001),
    (contract.API_KEYS_TABLE, "jumpstream-dev-keys", "api_keys_table", "jumpstream-dev-keys"),
    (contract.KEY_REQUESTS_PER_MINUTE, "60", "key_requests_per_minute", 60),
    (contract.KEY_TOKENS_PER_DAY, "100000", "key_tokens_per_day", 100_000),
    (contract.KEY_TOKENS_PER_MONTH, "2000000", "key_tokens_per_month", 2_000_000),
    (
        contract.AWS_LWA_SNAPSTART_AFTER_RESTORE_PATH,
        contract.AFTER_RESTORE_PATH,
        "snapstart_hook",
        True,
    ),
    (contract.TOKENIZER_URI, "s3://b/m/tokenizer.json", "tokenizer_uri", "s3://b/m/tokenizer.json"),
    (contract.MAX_CONNECTIONS, "64", "max_connections", 64),
    (contract.REQUEST_HEAD_TIMEOUT_SECONDS, "2.5", "request_head_timeout_seconds", 2.5),
    (contract.REQUEST_BODY_TIMEOUT_SECONDS, "4", "request_body_timeout_seconds", 4.0),
    (
        contract.MODEL_MAX_TOTAL_TOKENS,
        "4096",
        "context_window",
        ContextWindow(max_total_tokens=4096, max_input_tokens=4095),
    ),
]
# Read only with MODEL_MAX_TOTAL_TOKENS, and only with an engine that lays out chats itself:
# tests/streamer/test_settings.py.
READ_WITH_ANOTHER = {contract.MODEL_MAX_INPUT_TOKENS, contract.ENGINE_CHAT_TEMPLATE}
# What only the Web Adapter reads; PROMPT_TEMPLATE is read in tests/streamer/test_settings.py.
ADAPTER_ONLY = {
    contract.AWS_LAMBDA_EXEC_WRAPPER,
    contract.AWS_LWA_INVOKE_MODE,
    contract.AWS_LWA_READINESS_CHECK_PATH,
}


def test_every_variable_is_read_or_set_and_named_once() -> None:
    names = [variable.name for variable in VARIABLES]
    assert len(names) == len(set(names))
    covered = (
        {variable for variable, *_ in READ}
        | READ_WITH_ANOTHER
        | ADAPTER_ONLY
        | {contract.PROMPT_TEMPLATE}
    )
    assert set(VARIABLES) == covered


@pytest.mark.parametrize(
    ("variable", "raw", "field", "value"), READ, ids=[row[0].name for row in READ]
)
def test_settings_read_the_contracts_name(
    variable: Variable[Any], raw: str, field: str, value: object
) -> None:
    assert getattr(load_settings({**REQUIRED, variable.name: raw}), field) == value


def test_settings_default_to_the_contracts_defaults() -> None:
    settings = load_settings(REQUIRED)
    # The hook's variable is the adapter's: its default is the path the stack writes with
    # SnapStart, and the function reads whether it is set at all.
    for variable, _, field, _ in READ:
        if variable is contract.AWS_LWA_SNAPSTART_AFTER_RESTORE_PATH:
            assert getattr(settings, field) is False
        elif variable.default is not None:
            assert getattr(settings, field) == variable.default, variable.name
    # The typed defaults of Settings itself are the same ones.
    assert settings == Settings(endpoint_name="e", region="eu-west-1")
    assert settings.port == contract.DEFAULT_PORT


@pytest.mark.parametrize(
    "variable",
    [
        contract.MAX_NEW_TOKENS_LIMIT,
        contract.MAX_BODY_BYTES,
        contract.UPSTREAM_READ_TIMEOUT_SECONDS,
        contract.UPSTREAM_CONNECT_TIMEOUT_SECONDS,
        contract.PORT,
        contract.AWS_LWA_PORT,
    ],
    ids=lambda variable: variable.name,
)
def test_the_ceiling_is_the_largest_value_the_function_takes(variable: Variable[Any]) -> None:
    ceiling = variable.ceiling
    assert ceiling is not None
    load_settings({**REQUIRED, variable.name: str(ceiling)})
    with pytest.raises(SettingsError, match=variable.name):
        load_settings({**REQUIRED, variable.name: str(ceiling + 1)})


def test_no_timeout_outlasts_lambda() -> None:
    for variable in (
        contract.UPSTREAM_READ_TIMEOUT_SECONDS,
        contract.UPSTREAM_CONNECT_TIMEOUT_SECONDS,
    ):
        assert variable.ceiling == contract.LAMBDA_MAX_TIMEOUT_SECONDS


def test_the_rendered_environment_is_read_back_as_the_values_it_was_made_from() -> None:
    environment = function_environment(
        endpoint_name="jumpstream-dev",
        model_id="huggingface-llm-mistral-7b-instruct",
        inference_component_name="ic-1",
        prompt_template=json.dumps({"user": "U: {content}", "assistant": "A: {content}"}),
        max_new_tokens_limit=2048,
        upstream_read_timeout_seconds=contract.UPSTREAM_READ_TIMEOUT_SECONDS.default,
        metrics_namespace="ns",
        environment_name="dev",
        service_name="svc",
        region="us-west-2",
        port=18080,
    )
    assert environment[contract.UPSTREAM_READ_TIMEOUT_SECONDS.name] == "60"
    settings = load_settings(environment)
    assert (settings.endpoint_name, settings.model_id) == (
        "jumpstream-dev",
        "huggingface-llm-mistral-7b-instruct",
    )
    assert settings.inference_component_name == "ic-1"
    assert settings.prompt_template is not None
    assert settings.max_new_tokens_limit == 2048
    assert settings.upstream_read_timeout_seconds == 60.0
    assert (settings.metrics_namespace, settings.environment_name) == ("ns", "dev")
    assert (settings.service_name, settings.region, settings.port) == ("svc", "us-west-2", 18080)


@pytest.mark.parametrize("engine", ["lmi", "vllm"])
def test_an_engine_that_lays_out_chats_is_read_back_as_rendered(engine: str) -> None:
    environment = function_environment(
        endpoint_name="e", region="us-east-1", serving_engine=engine, engine_chat_template=True
    )
    settings = load_settings(environment)
    assert (settings.serving_engine, settings.engine_chat_template) == (engine, True)
    assert settings.prompt_template is None


def test_behind_the_web_adapter_the_port_is_the_adapters_and_its_own_settings_are_set() -> None:
    environment = function_environment(endpoint_name="e", web_adapter=True)
    assert environment == {
        "AWS_LAMBDA_EXEC_WRAPPER": "/opt/bootstrap",
        "AWS_LWA_INVOKE_MODE": "response_stream",
        "AWS_LWA_READINESS_CHECK_PATH": "/health",
        "AWS_LWA_PORT": "8080",
        "ENDPOINT_NAME": "e",
    }
    # The adapter checks the path the function serves, on the port the function listens on.
    assert load_settings({**environment, **REQUIRED}).port == contract.DEFAULT_PORT
    assert environment[contract.AWS_LWA_READINESS_CHECK_PATH.name] == contract.HEALTH_PATH


def test_values_left_out_are_not_set() -> None:
    assert function_environment(endpoint_name="e") == {"ENDPOINT_NAME": "e"}


# --- Metrics -------------------------------------------------------------------------------------


def test_the_function_writes_exactly_the_metrics_and_dimensions_the_contract_names() -> None:
    record = RequestRecord(request_id="r", method="POST", path="/", started=0.0, status=502)
    record.first_text_at = 0.5
    record.text_times = [0.5, 0.6, 0.8]
    record.tokens = 3
    record.client_disconnected = True
    record.error_type = "model_error"
    context = MetricsContext(namespace=contract.METRIC_NAMESPACE, environment="dev", model="m")
    document = request_metrics(record, context)
    written = {
        metric["Name"]
        for directive in document["_aws"]["CloudWatchMetrics"]
        for metric in directive["Metrics"]
    }
    dimensions = {
        name
        for directive in document["_aws"]["CloudWatchMetrics"]
        for dimension_set in directive["Dimensions"]
        for name in dimension_set
    }
    refused = RequestRecord(request_id="r", method="POST", path="/", status=422)
    refused.error_type = "invalid_request"
    refused_document = request_metrics(refused, context)
    written |= {
        metric["Name"]
        for directive in refused_document["_aws"]["CloudWatchMetrics"]
        for metric in directive["Metrics"]
    }
    connections_document = refused_connections_metrics(3, context)
    written |= {
        metric["Name"]
        for directive in connections_document["_aws"]["CloudWatchMetrics"]
        for metric in directive["Metrics"]
    }
    assert written == _constants(Metric)
    assert dimensions == _constants(Dimension)
    assert {d["Namespace"] for d in document["_aws"]["CloudWatchMetrics"]} == {"jumpstream"}


def _constants(namespace: type) -> set[str]:
    return {value for name, value in vars(namespace).items() if name.isupper()}


# --- Error kinds ---------------------------------------------------------------------------------

# What callers get, as docs/api.md documents it: a change here is a change of the public API.
STATUSES = {
    "invalid_body": (400, 400, "invalid_request_error"),
    "invalid_request": (422, 400, "invalid_request_error"),
    "body_too_large": (413, 413, "invalid_request_error"),
    "not_acceptable": (406, 406, "invalid_request_error"),
    "not_found": (404, 404, "invalid_request_error"),
    "method_not_allowed": (405, 405, "invalid_request_error"),
    "validation": (422, 400, "invalid_request_error"),
    "overloaded": (503, 503, "server_error"),
    "throttled": (503, 429, "rate_limit_exceeded"),
    "unavailable": (503, 503, "server_error"),
    "no_capacity": (503, 503, "server_error"),
    "model_error": (502, 502, "server_error"),
    "upstream_error": (502, 502, "server_error"),
    "upstream_timeout": (504, 504, "server_error"),
    "incomplete_stream": (502, 502, "server_error"),
    "internal_error": (500, 500, "server_error"),
    "unauthorized": (401, 401, "invalid_request_error"),
    "rate_limited": (429, 429, "rate_limit_exceeded"),
    "quota_exceeded": (429, 429, "insufficient_quota"),
    "request_timeout": (408, 408, "invalid_request_error"),
}


def test_each_kind_keeps_its_statuses_and_openai_type() -> None:
    table = {
        name: (kind.status, kind.openai_status, kind.openai_type)
        for name, kind in ERROR_KINDS.items()
    }
    assert table == STATUSES


def test_the_kinds_that_say_not_now_carry_retry_after_and_the_client_retries_them() -> None:
    not_now = {"no_capacity", "overloaded", "throttled", "unavailable", "rate_limited"}
    assert not_now == RETRYABLE_KINDS
    for name, kind in ERROR_KINDS.items():
        assert (kind.retry_after is not None) == (name in RETRYABLE_KINDS)
        # Every 503 says "not now"; of the 429s, a spent budget does not.
        assert (kind.status == 503 or name == "rate_limited") == kind.retryable
    assert client.RETRYABLE_KINDS == RETRYABLE_KINDS


def test_the_table_covers_exactly_the_kinds_the_function_raises() -> None:
    raised = set()
    for path in PACKAGE.rglob("*.py"):
        raised |= _kinds_named(_tree(path))
    assert raised == set(ERROR_KINDS)


@functools.cache
def _tree(path: Path) -> ast.Module:
    """A module's syntax tree, parsed once for all the tests that read it."""
    return ast.parse(path.read_text(encoding="utf-8"))


def _kinds_named(tree: ast.AST) -> set[str]:
    """Kinds given to an error (`ApiError(kind="x")`, `UpstreamError("x", ...)`, `cls("x", ...)`)
    or written to the record (`record.error_type = "x"`, `kind="x"` for a writer)."""
    kinds: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            for keyword in node.keywords:
                if keyword.arg == "kind" and isinstance(keyword.value, ast.Constant):
                    kinds.add(keyword.value.value)
            name = getattr(node.func, "id", None)
            if name in {"ApiError", "UpstreamError", "cls"} and node.args:
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    kinds.add(first.value)
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            for target in node.targets:
                if isinstance(target, ast.Attribute) and target.attr == "error_type":
                    kinds.add(node.value.value)
    return kinds


# --- One place ------------------------------------------------------------------------------------

# The modules that read the contract: each name it holds may appear in them only as the
# contract's constant, never spelled out again. (The namespace's value, "jumpstream", is also
# the project's own name, which answers may give as the model's owner.)
READERS = [
    *sorted(PACKAGE.rglob("*.py")),
    REPO / "stacks" / "relay.py",
    REPO / "stacks" / "metrics.py",
    REPO / "stacks" / "dashboard.py",
    REPO / "stacks" / "config.py",
    REPO / "stacks" / "deployment.py",
    REPO / "jumpstream" / "local.py",
    REPO / "jumpstream" / "client.py",
    REPO / "jumpstream" / "preview.py",
]
NAMES = (
    {variable.name for variable in VARIABLES}
    | {contract.AWS_LAMBDA_EXEC_WRAPPER.default, contract.AWS_LWA_INVOKE_MODE.default}
    | _constants(Metric)
    | _constants(Dimension)
    | {contract.SERVICE_NAME}
)
# The routes' own paths: in the function and the stack that points the adapter at one.
PATHS = {contract.HEALTH_PATH, contract.AFTER_RESTORE_PATH}
ROUTE_READERS = [
    *sorted(PACKAGE.rglob("*.py")),
    REPO / "stacks" / "relay.py",
    REPO / "jumpstream" / "local.py",
]


def test_names_the_contract_holds_are_spelled_only_there() -> None:
    literals = _literals({*READERS, *ROUTE_READERS})
    spelled = {
        (path.relative_to(REPO).as_posix(), text)
        for path, text in literals
        if text in NAMES or (text in PATHS and path in ROUTE_READERS)
    }
    assert spelled == set()


def _literals(paths: set[Path]) -> set[tuple[Path, str]]:
    """Every string literal of these modules but their `__all__` (which names their own
    constants), with the module it is in."""
    found = set()
    for path in paths:
        if path.name == "contract.py":
            continue
        tree = _tree(path)
        exported = {
            id(element)
            for node in tree.body
            if isinstance(node, ast.Assign)
            and any(getattr(target, "id", None) == "__all__" for target in node.targets)
            for element in ast.walk(node.value)
        }
        found |= {
            (path, node.value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in exported
        }
    return found


def test_importing_the_contract_imports_only_the_standard_library() -> None:
    script = (
        "import sys; before = set(sys.modules); import streamer.contract; "
        "print('\\n'.join(sorted(set(sys.modules) - before)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = {name.split(".")[0] for name in result.stdout.split()}
    assert loaded - {"streamer"} <= sys.stdlib_module_names
    assert {name for name in result.stdout.split() if name.startswith("streamer")} == {
        "streamer",
        "streamer.contract",
    }
