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

from .prompt_template import PromptTemplate, TemplateError

__all__ = ["Settings", "SettingsError", "load_settings"]

# SageMaker's own patterns for EndpointName and InferenceComponentName (at most 63 characters).
_SAGEMAKER_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
# us-east-1, us-gov-west-1, cn-north-1, eu-central-2 ...: lower-case words joined by hyphens.
_REGION = re.compile(r"[a-z]{2,}(-[a-z0-9]+)+")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
# SageMaker takes request bodies of at most 6 MB; the relay adds a few bytes to what it receives.
_MAX_BODY_CEILING = 6_000_000
# Far beyond any model's context here (Mistral's is 8192), and what the stack's config allows; it
# also bounds the decoder's line limit, which grows with this number.
_MAX_NEW_TOKENS_CEILING = 32768
# A Lambda function runs for at most 900 s; anything longer is a typo.
_MAX_TIMEOUT_SECONDS = 900.0
# The longest silence the relay waits for from the upstream. TGI sends a keep-alive every 15 s
# while a request waits or prefills, so 60 s of nothing means the stream is dead; the stack sets
# the same value.
_DEFAULT_READ_TIMEOUT_SECONDS = 60.0


class SettingsError(ValueError):
    """A missing or invalid setting; its message is the one line printed before exiting."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """What the relay needs to know, validated and typed."""

    endpoint_name: str
    region: str
    inference_component_name: str | None = None
    model_id: str | None = None
    #: How the deployed model lays out a chat; None: the relay takes only `inputs`.
    prompt_template: PromptTemplate | None = None
    max_new_tokens_limit: int = 1024
    max_body_bytes: int = 1024 * 1024
    upstream_read_timeout_seconds: float = _DEFAULT_READ_TIMEOUT_SECONDS
    upstream_connect_timeout_seconds: float = 5.0
    log_prompts: bool = False
    #: The relay's metrics: the stack sets both, and its alarms and dashboard read the same.
    metrics_namespace: str = "jumpstream"
    environment_name: str = "local"
    host: str = "127.0.0.1"
    port: int = 8080


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Read and check every setting; raise SettingsError naming the first bad variable."""
    return Settings(
        endpoint_name=_sagemaker_name(environ, "ENDPOINT_NAME", required=True) or "",
        region=_region(environ),
        inference_component_name=_sagemaker_name(
            environ, "INFERENCE_COMPONENT_NAME", required=False
        ),
        model_id=_optional(environ, "MODEL_ID"),
        prompt_template=_prompt_template(environ),
        max_new_tokens_limit=_integer(
            environ, "MAX_NEW_TOKENS_LIMIT", default=1024, low=1, high=_MAX_NEW_TOKENS_CEILING
        ),
        max_body_bytes=_integer(
            environ, "MAX_BODY_BYTES", default=1024 * 1024, low=1, high=_MAX_BODY_CEILING
        ),
        upstream_read_timeout_seconds=_seconds(
            environ, "UPSTREAM_READ_TIMEOUT_SECONDS", default=_DEFAULT_READ_TIMEOUT_SECONDS
        ),
        upstream_connect_timeout_seconds=_seconds(
            environ, "UPSTREAM_CONNECT_TIMEOUT_SECONDS", default=5.0
        ),
        log_prompts=_boolean(environ, "LOG_PROMPTS", default=False),
        metrics_namespace=_metric_name(environ, "POWERTOOLS_METRICS_NAMESPACE", "jumpstream"),
        environment_name=_metric_name(environ, "JUMPSTREAM_ENVIRONMENT", "local"),
        host=_host(environ),
        port=_port(environ),
    )


def _optional(environ: Mapping[str, str], name: str) -> str | None:
    """An unset or blank variable is absent: Lambda consoles make empty values easy to leave."""
    value = environ.get(name, "").strip()
    return value or None


def _prompt_template(environ: Mapping[str, str]) -> PromptTemplate | None:
    """The catalog's prompt template for the deployed model, as the stack wrote it (JSON)."""
    raw = _optional(environ, "PROMPT_TEMPLATE")
    if raw is None:
        return None
    try:
        return PromptTemplate.from_json(raw)
    except TemplateError as error:
        raise SettingsError(f"PROMPT_TEMPLATE {error}.") from None


def _metric_name(environ: Mapping[str, str], name: str, default: str) -> str:
    """A CloudWatch namespace or dimension value: 1-255 printable ASCII characters."""
    value = _optional(environ, name) or default
    if len(value) > 255 or not value.isascii() or not value.isprintable():
        raise SettingsError(f"{name} must be 1 to 255 printable ASCII characters (got {value!r}).")
    return value


def _sagemaker_name(environ: Mapping[str, str], name: str, *, required: bool) -> str | None:
    value = _optional(environ, name)
    if value is None:
        if required:
            raise SettingsError(f"{name} is not set; set it to the SageMaker endpoint's name.")
        return None
    if not _SAGEMAKER_NAME.fullmatch(value):
        raise SettingsError(
            f"{name} must be a SageMaker name: 1 to 63 letters, digits and hyphens, "
            f"starting and ending with a letter or digit (got {value!r})."
        )
    return value


def _region(environ: Mapping[str, str]) -> str:
    value = _optional(environ, "AWS_REGION")
    if value is None:
        raise SettingsError(
            "AWS_REGION is not set; set it to the endpoint's region, e.g. us-east-1."
        )
    if not _REGION.fullmatch(value):
        raise SettingsError(f"AWS_REGION must be a region name such as us-east-1 (got {value!r}).")
    return value


def _integer(environ: Mapping[str, str], name: str, *, default: int, low: int, high: int) -> int:
    raw = _optional(environ, name)
    if raw is None:
        return default
    try:
        value = int(raw, 10)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise SettingsError(f"{name} must be a whole number from {low} to {high} (got {raw!r}).")
    return value


def _seconds(environ: Mapping[str, str], name: str, *, default: float) -> float:
    raw = _optional(environ, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 < value <= _MAX_TIMEOUT_SECONDS):
        raise SettingsError(
            f"{name} must be a number of seconds greater than 0 and at most "
            f"{_MAX_TIMEOUT_SECONDS:g} (got {raw!r})."
        )
    return value


def _boolean(environ: Mapping[str, str], name: str, *, default: bool) -> bool:
    raw = _optional(environ, name)
    if raw is None:
        return default
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise SettingsError(f"{name} must be true or false (got {raw!r}).")


def _host(environ: Mapping[str, str]) -> str:
    """An address literal: the adapter connects to 127.0.0.1, so a name buys nothing and a typo
    in one would only surface as a resolver error from deep inside the server."""
    value = _optional(environ, "HOST")
    if value is None:
        return "127.0.0.1"
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise SettingsError(
            f"HOST must be an IP address to listen on, such as 127.0.0.1 or 0.0.0.0 "
            f"(got {value!r})."
        ) from None
    return value


def _port(environ: Mapping[str, str]) -> int:
    """The adapter connects to AWS_LWA_PORT, else PORT, else 8080: listen on the same one."""
    name = "AWS_LWA_PORT" if _optional(environ, "AWS_LWA_PORT") is not None else "PORT"
    return _integer(environ, name, default=8080, low=1, high=65535)
