"""The relay's configuration, read once from the environment at start.

Everything is checked before the server binds its port: a Lambda function that starts with a bad
setting should die at once with one line that says which variable is wrong and what it must be,
not accept traffic and fail every request.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import contract
from .answer_room import ContextWindow
from .contract import Variable
from .engines import engine_named
from .prompt_template import PromptTemplate, TemplateError

__all__ = ["Settings", "SettingsError", "load_settings"]

# SageMaker's own patterns for EndpointName and InferenceComponentName (at most 63 characters).
_SAGEMAKER_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
# us-east-1, us-gov-west-1, cn-north-1, eu-central-2 ...: lower-case words joined by hyphens.
_REGION = re.compile(r"[a-z]{2,}(-[a-z0-9]+)+")
# DynamoDB's TableName pattern.
_TABLE_NAME = re.compile(r"[a-zA-Z0-9_.-]{3,255}")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


class SettingsError(ValueError):
    """A missing or invalid setting; its message is the one line printed before exiting."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """What the relay needs to know, validated and typed."""

    endpoint_name: str
    region: str
    inference_component_name: str | None = None
    model_id: str | None = None
    #: The server the model runs on (contract.ENGINES): the body sent, the stream read back.
    serving_engine: str = contract.SERVING_ENGINE.default
    #: The engine lays out chats with the model's own chat template: messages go as they are.
    engine_chat_template: bool = contract.ENGINE_CHAT_TEMPLATE.default
    #: How the deployed model lays out a chat for the relay; None: the relay lays out none
    #: (only `inputs` are taken, unless the engine lays out chats itself).
    prompt_template: PromptTemplate | None = None
    max_new_tokens_limit: int = contract.MAX_NEW_TOKENS_LIMIT.default
    #: The model's context as its engine enforces it; None: not known to the relay.
    context_window: ContextWindow | None = None
    max_body_bytes: int = contract.MAX_BODY_BYTES.default
    upstream_read_timeout_seconds: float = contract.UPSTREAM_READ_TIMEOUT_SECONDS.default
    upstream_connect_timeout_seconds: float = contract.UPSTREAM_CONNECT_TIMEOUT_SECONDS.default
    log_prompts: bool = contract.LOG_PROMPTS.default
    #: The relay's metrics: the stack sets both, and its alarms and dashboard read the same.
    metrics_namespace: str = contract.POWERTOOLS_METRICS_NAMESPACE.default
    environment_name: str = contract.JUMPSTREAM_ENVIRONMENT.default
    #: The `service` of every log line.
    service_name: str = contract.POWERTOOLS_SERVICE_NAME.default
    host: str = contract.HOST.default
    port: int = contract.DEFAULT_PORT
    #: With API keys: the table of keys and usage (None: the function URL's own auth applies).
    api_keys_table: str | None = None
    #: The environment's limits for keys that set none of their own (None: no limit).
    key_requests_per_minute: int | None = None
    key_tokens_per_day: int | None = None
    key_tokens_per_month: int | None = None
    #: The model's tokenizer, where the function counts prompt tokens itself.
    tokenizer_uri: str | None = None
    #: With SnapStart: the Web Adapter posts to AFTER_RESTORE_PATH after a restore (and refuses
    #: callers who ask for it); without, the path is not served at all.
    snapstart_hook: bool = False
    #: The server's limits (http_server.py): None is as many connections as the process's
    #: file descriptors allow.
    max_connections: int | None = None
    request_head_timeout_seconds: float = contract.REQUEST_HEAD_TIMEOUT_SECONDS.default
    request_body_timeout_seconds: float = contract.REQUEST_BODY_TIMEOUT_SECONDS.default

    @property
    def model_name(self) -> str:
        """The model's name in answers and metrics: the catalog's id, else the endpoint's."""
        return self.model_id or self.endpoint_name


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Read and check every setting; raise SettingsError naming the first bad variable."""
    serving_engine = _serving_engine(environ)
    prompt_template = _prompt_template(environ)
    return Settings(
        endpoint_name=_sagemaker_name(environ, contract.ENDPOINT_NAME, required=True) or "",
        region=_region(environ),
        inference_component_name=_sagemaker_name(
            environ, contract.INFERENCE_COMPONENT_NAME, required=False
        ),
        model_id=_optional(environ, contract.MODEL_ID),
        serving_engine=serving_engine,
        engine_chat_template=_engine_chat_template(environ, serving_engine, prompt_template),
        prompt_template=prompt_template,
        max_new_tokens_limit=_integer(environ, contract.MAX_NEW_TOKENS_LIMIT),
        context_window=_context_window(environ),
        max_body_bytes=_integer(environ, contract.MAX_BODY_BYTES),
        upstream_read_timeout_seconds=_seconds(environ, contract.UPSTREAM_READ_TIMEOUT_SECONDS),
        upstream_connect_timeout_seconds=_seconds(
            environ, contract.UPSTREAM_CONNECT_TIMEOUT_SECONDS
        ),
        log_prompts=_boolean(environ, contract.LOG_PROMPTS),
        metrics_namespace=_metric_name(environ, contract.POWERTOOLS_METRICS_NAMESPACE),
        environment_name=_metric_name(environ, contract.JUMPSTREAM_ENVIRONMENT),
        service_name=_optional(environ, contract.POWERTOOLS_SERVICE_NAME)
        or contract.POWERTOOLS_SERVICE_NAME.default,
        host=_host(environ),
        port=_port(environ),
        api_keys_table=_table_name(environ, contract.API_KEYS_TABLE),
        key_requests_per_minute=_limit(environ, contract.KEY_REQUESTS_PER_MINUTE),
        key_tokens_per_day=_limit(environ, contract.KEY_TOKENS_PER_DAY),
        key_tokens_per_month=_limit(environ, contract.KEY_TOKENS_PER_MONTH),
        tokenizer_uri=_tokenizer_uri(environ),
        snapstart_hook=_snapstart_hook(environ),
        max_connections=_limit(environ, contract.MAX_CONNECTIONS),
        request_head_timeout_seconds=_seconds(environ, contract.REQUEST_HEAD_TIMEOUT_SECONDS),
        request_body_timeout_seconds=_seconds(environ, contract.REQUEST_BODY_TIMEOUT_SECONDS),
    )


def _optional(environ: Mapping[str, str], variable: Variable[Any]) -> str | None:
    """An unset or blank variable is absent: Lambda consoles make empty values easy to leave."""
    value = environ.get(variable.name, "").strip()
    return value or None


def _prompt_template(environ: Mapping[str, str]) -> PromptTemplate | None:
    """The catalog's prompt template for the deployed model, as the stack wrote it (JSON)."""
    raw = _optional(environ, contract.PROMPT_TEMPLATE)
    if raw is None:
        return None
    try:
        return PromptTemplate.from_json(raw)
    except TemplateError as error:
        raise SettingsError(f"{contract.PROMPT_TEMPLATE.name} {error}.") from None


def _serving_engine(environ: Mapping[str, str]) -> str:
    """One of the engines the relay speaks; the catalog names it per model."""
    variable = contract.SERVING_ENGINE
    value = _optional(environ, variable) or variable.default
    if value not in contract.ENGINES:
        raise SettingsError(
            f"{variable.name} must be one of {', '.join(contract.ENGINES)} (got {value!r})."
        )
    return value


def _engine_chat_template(
    environ: Mapping[str, str], serving_engine: str, prompt_template: PromptTemplate | None
) -> bool:
    """Whether the engine lays out chats itself: only one that can, and never besides the
    relay's own layout (a chat would then have two)."""
    variable = contract.ENGINE_CHAT_TEMPLATE
    if not _boolean(environ, variable):
        return False
    if engine_named(serving_engine).chat is None:
        raise SettingsError(
            f"{variable.name} needs an engine that lays out chats itself, and "
            f"{contract.SERVING_ENGINE.name} is {serving_engine}: give the model a "
            f"{contract.PROMPT_TEMPLATE.name} instead."
        )
    if prompt_template is not None:
        raise SettingsError(
            f"{variable.name} and {contract.PROMPT_TEMPLATE.name} exclude each other: the "
            "engine lays out chats, so the relay has no prompt template."
        )
    return True


def _metric_name(environ: Mapping[str, str], variable: Variable[str]) -> str:
    """A CloudWatch namespace or dimension value: 1-255 printable ASCII characters."""
    value = _optional(environ, variable) or variable.default
    if len(value) > 255 or not value.isascii() or not value.isprintable():
        raise SettingsError(
            f"{variable.name} must be 1 to 255 printable ASCII characters (got {value!r})."
        )
    return value


def _sagemaker_name(
    environ: Mapping[str, str], variable: Variable[str | None], *, required: bool
) -> str | None:
    value = _optional(environ, variable)
    if value is None:
        if required:
            raise SettingsError(
                f"{variable.name} is not set; set it to the SageMaker endpoint's name."
            )
        return None
    if not _SAGEMAKER_NAME.fullmatch(value):
        raise SettingsError(
            f"{variable.name} must be a SageMaker name: 1 to 63 letters, digits and hyphens, "
            f"starting and ending with a letter or digit (got {value!r})."
        )
    return value


def _region(environ: Mapping[str, str]) -> str:
    name = contract.AWS_REGION.name
    value = _optional(environ, contract.AWS_REGION)
    if value is None:
        raise SettingsError(f"{name} is not set; set it to the endpoint's region, e.g. us-east-1.")
    if not _REGION.fullmatch(value):
        raise SettingsError(f"{name} must be a region name such as us-east-1 (got {value!r}).")
    return value


def _integer(environ: Mapping[str, str], variable: Variable[int]) -> int:
    """A whole number from 1 to the variable's ceiling."""
    default, high = variable.default, variable.ceiling
    assert high is not None  # every integer setting has one
    raw = _optional(environ, variable)
    if raw is None:
        return default
    try:
        value = int(raw, 10)
    except ValueError:
        value = None
    if value is None or not 1 <= value <= high:
        raise SettingsError(
            f"{variable.name} must be a whole number from 1 to {high} (got {raw!r})."
        )
    return value


def _limit(environ: Mapping[str, str], variable: Variable[int | None]) -> int | None:
    """An optional whole number from 1 to the variable's ceiling; unset is no limit."""
    if _optional(environ, variable) is None:
        return None
    return _integer(environ, variable)  # type: ignore[arg-type]


def _context_window(environ: Mapping[str, str]) -> ContextWindow | None:
    """The model's MAX_TOTAL_TOKENS and MAX_INPUT_LENGTH; the prompt's limit may be left out,
    and is then the most a prompt could be (one token less than the total)."""
    total = _limit(environ, contract.MODEL_MAX_TOTAL_TOKENS)
    prompt = _limit(environ, contract.MODEL_MAX_INPUT_TOKENS)
    if total is None:
        if prompt is not None:
            raise SettingsError(
                f"{contract.MODEL_MAX_INPUT_TOKENS.name} needs "
                f"{contract.MODEL_MAX_TOTAL_TOKENS.name} too."
            )
        return None
    if prompt is None:
        prompt = total - 1
    if prompt >= total:
        raise SettingsError(
            f"{contract.MODEL_MAX_INPUT_TOKENS.name} must be less than "
            f"{contract.MODEL_MAX_TOTAL_TOKENS.name} (got {prompt} and {total})."
        )
    return ContextWindow(max_total_tokens=total, max_input_tokens=prompt)


def _table_name(environ: Mapping[str, str], variable: Variable[str | None]) -> str | None:
    """A DynamoDB table name: 3 to 255 letters, digits, `_`, `-` and `.`."""
    value = _optional(environ, variable)
    if value is not None and not _TABLE_NAME.fullmatch(value):
        raise SettingsError(
            f"{variable.name} must be a DynamoDB table name: 3 to 255 letters, digits, "
            f"'_', '-' and '.' (got {value!r})."
        )
    return value


def _snapstart_hook(environ: Mapping[str, str]) -> bool:
    """Whether the Web Adapter calls the SnapStart hook, at the one path the function serves."""
    variable = contract.AWS_LWA_SNAPSTART_AFTER_RESTORE_PATH
    value = _optional(environ, variable)
    if value is None:
        return False
    if value != contract.AFTER_RESTORE_PATH:
        raise SettingsError(
            f"{variable.name} must be {contract.AFTER_RESTORE_PATH} (got {value!r})."
        )
    return True


def _tokenizer_uri(environ: Mapping[str, str]) -> str | None:
    """`s3://bucket/key`, or an absolute path to a local file."""
    value = _optional(environ, contract.TOKENIZER_URI)
    if value is None:
        return None
    bucket, _, key = value.removeprefix("s3://").partition("/")
    if value.startswith("s3://") and bucket and key:
        return value
    if value.startswith("/"):
        return value
    raise SettingsError(
        f"{contract.TOKENIZER_URI.name} must be s3://bucket/key or an absolute file path "
        f"(got {value!r})."
    )


def _seconds(environ: Mapping[str, str], variable: Variable[float]) -> float:
    """A number of seconds greater than 0, at most Lambda's longest run: more is a typo."""
    default, high = variable.default, variable.ceiling
    assert high is not None  # every timeout has one
    raw = _optional(environ, variable)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 < value <= high):
        raise SettingsError(
            f"{variable.name} must be a number of seconds greater than 0 and at most "
            f"{high:g} (got {raw!r})."
        )
    return value


def _boolean(environ: Mapping[str, str], variable: Variable[bool]) -> bool:
    raw = _optional(environ, variable)
    if raw is None:
        return variable.default
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise SettingsError(f"{variable.name} must be true or false (got {raw!r}).")


def _host(environ: Mapping[str, str]) -> str:
    """An address literal: the adapter connects to 127.0.0.1, so a name buys nothing and a typo
    in one would only surface as a resolver error from deep inside the server."""
    value = _optional(environ, contract.HOST)
    if value is None:
        return contract.HOST.default
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise SettingsError(
            f"{contract.HOST.name} must be an IP address to listen on, such as 127.0.0.1 or "
            f"0.0.0.0 (got {value!r})."
        ) from None
    return value


def _port(environ: Mapping[str, str]) -> int:
    """The adapter connects to AWS_LWA_PORT, else PORT, else the default: listen on the same."""
    adapters = _optional(environ, contract.AWS_LWA_PORT)
    return _integer(environ, contract.AWS_LWA_PORT if adapters is not None else contract.PORT)
