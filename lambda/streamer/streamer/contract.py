"""The deploy contract: every name and number the function shares with what deploys and calls it.

The stack (stacks/relay.py) and `jumpstream local` write the function's environment, the Web
Adapter reads part of it, the function reads the rest (settings.py), the alarms and dashboard
read the metrics it writes (observability.py), and clients switch on the error kinds it
answers with. Each of those facts is written here once and imported everywhere else, so a
renamed variable or metric cannot leave a reader behind.

Standard library only, and nothing from this package: the stacks and the command line import
it without the function's dependencies, and the function imports it at start.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final, Generic, NamedTuple, TypeVar

__all__ = [
    "AFTER_RESTORE_PATH",
    "API_KEYS_TABLE",
    "API_KEY_HEADER",
    "AWS_LAMBDA_EXEC_WRAPPER",
    "AWS_LWA_INVOKE_MODE",
    "AWS_LWA_PORT",
    "AWS_LWA_READINESS_CHECK_PATH",
    "AWS_LWA_SNAPSTART_AFTER_RESTORE_PATH",
    "AWS_REGION",
    "CHAT_PAGE_FILES",
    "DEFAULT_PORT",
    "ENDPOINT_NAME",
    "ENGINES",
    "ENGINE_CHAT_TEMPLATE",
    "ERROR_KINDS",
    "HEALTH_PATH",
    "HOST",
    "INFERENCE_COMPONENT_NAME",
    "JUMPSTREAM_ENVIRONMENT",
    "KEY_CACHE_SECONDS",
    "KEY_REQUESTS_PER_MINUTE",
    "KEY_TOKENS_PER_DAY",
    "KEY_TOKENS_PER_MONTH",
    "LAMBDA_MAX_TIMEOUT_SECONDS",
    "LOG_PROMPTS",
    "MAX_BODY_BYTES",
    "MAX_NEW_TOKENS_LIMIT",
    "METRIC_NAMESPACE",
    "MODEL_ID",
    "MODEL_MAX_INPUT_TOKENS",
    "MODEL_MAX_TOTAL_TOKENS",
    "OPEN_PATHS",
    "PORT",
    "POWERTOOLS_METRICS_NAMESPACE",
    "POWERTOOLS_SERVICE_NAME",
    "PROMPT_TEMPLATE",
    "REFUSED_UNMETERED_KINDS",
    "RETRYABLE_KINDS",
    "SERVICE_NAME",
    "SERVING_ENGINE",
    "STREAM_ERROR_PREFIX",
    "TOKENIZER_URI",
    "UPSTREAM_CONNECT_TIMEOUT_SECONDS",
    "UPSTREAM_READ_TIMEOUT_SECONDS",
    "ApiKey",
    "Dimension",
    "ErrorKind",
    "KeyLimits",
    "KeyTable",
    "LogField",
    "Metric",
    "Variable",
    "function_environment",
    "new_api_key",
    "parse_api_key",
    "secret_digest",
]

_T = TypeVar("_T")

# --- Facts of the platform and of the service ---------------------------------------------------

#: A Lambda function runs for at most this long; no timeout of the function's may exceed it.
LAMBDA_MAX_TIMEOUT_SECONDS: Final = 900
#: Where the function listens, and where the Web Adapter connects, unless told otherwise.
DEFAULT_PORT: Final = 8080
#: The adapter's readiness check; the function answers it without calling SageMaker.
HEALTH_PATH: Final = "/health"
#: Where the adapter tells the function that Lambda restored it from a SnapStart snapshot (a POST,
#: before any invocation): the function then forgets what must not outlive the snapshot. The
#: adapter refuses callers who ask for this path themselves.
AFTER_RESTORE_PATH: Final = "/_lambda/after-restore"
#: The chat page's files: the path each is served at (the page at /chat, what it loads beside it),
#: and the file under streamer/static/. The vendored libraries' licences sit beside them, unserved.
CHAT_PAGE_FILES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "/chat": "chat.html",
        "/chat.js": "chat.js",
        "/chat.css": "chat.css",
        "/favicon.svg": "favicon.svg",
        "/vendor/marked.umd.js": "vendor/marked.umd.js",
        "/vendor/purify.min.js": "vendor/purify.min.js",
    }
)
#: The service's name in its log lines (Powertools' `service`), its start-up messages and the
#: user agent of its SageMaker calls.
SERVICE_NAME: Final = "jumpstream-relay"
#: What starts the line that reports an error in a plain-text answer, after text was sent.
STREAM_ERROR_PREFIX: Final = "[stream error]"
#: The CloudWatch namespace of the function's metrics, and of the alarms and dashboard over them.
METRIC_NAMESPACE: Final = "jumpstream"
#: The servers a model can run on, as the catalog names them (its `engine`): Hugging Face TGI;
#: AWS's Large Model Inference container (DJL Serving with vLLM); AWS's vLLM container for
#: SageMaker. Each speaks its own request body, stream and error shapes (streamer/engines.py).
ENGINES: Final = ("tgi", "lmi", "vllm")


# --- The environment ----------------------------------------------------------------------------


class Variable(NamedTuple, Generic[_T]):
    """One environment variable: its name, its value when unset (None: required, or nothing),
    and the largest value it may take, where there is one.

    (A named tuple rather than a dataclass, here and for ErrorKind: the function imports this
    module at every cold start, and a named tuple's class costs a tenth as much to make.)
    """

    name: str
    default: _T
    ceiling: _T | None = None


#: The SageMaker endpoint to invoke (required).
ENDPOINT_NAME: Final[Variable[str | None]] = Variable("ENDPOINT_NAME", None)
#: The endpoint's inference component, named in each call when the model is hosted as one.
INFERENCE_COMPONENT_NAME: Final[Variable[str | None]] = Variable("INFERENCE_COMPONENT_NAME", None)
#: The catalog's model id: the Model dimension of the metrics and the name answers give.
MODEL_ID: Final[Variable[str | None]] = Variable("MODEL_ID", None)
#: The server the model runs on, one of ENGINES: it decides the body the function sends and the
#: stream it reads back. The catalog knows it per model; the function never guesses it.
SERVING_ENGINE: Final[Variable[str]] = Variable("SERVING_ENGINE", "tgi")
#: The engine lays out chat messages with the model's own chat template (LMI and vLLM, for models
#: that have one): the function then sends `messages` as they are, and has no PROMPT_TEMPLATE.
ENGINE_CHAT_TEMPLATE: Final[Variable[bool]] = Variable("ENGINE_CHAT_TEMPLATE", False)
#: The catalog's chat layout for the model (JSON); without it only prompts are taken.
PROMPT_TEMPLATE: Final[Variable[str | None]] = Variable("PROMPT_TEMPLATE", None)
#: The most tokens one request may ask for. The ceiling is far beyond any model's context here,
#: and bounds the decoder's line limit, which grows with it.
MAX_NEW_TOKENS_LIMIT: Final[Variable[int]] = Variable("MAX_NEW_TOKENS_LIMIT", 1024, 32768)
#: The model's context as its TGI enforces it: prompt tokens plus max_new_tokens may be at most
#: MODEL_MAX_TOTAL_TOKENS, and the prompt at most MODEL_MAX_INPUT_TOKENS (the catalog's
#: MAX_TOTAL_TOKENS and MAX_INPUT_LENGTH for the container). With them, an OpenAI request without
#: max_tokens runs as long as the context allows; unset, only the limit bounds it.
MODEL_MAX_TOTAL_TOKENS: Final[Variable[int | None]] = Variable(
    "MODEL_MAX_TOTAL_TOKENS", None, 1_048_576
)
MODEL_MAX_INPUT_TOKENS: Final[Variable[int | None]] = Variable(
    "MODEL_MAX_INPUT_TOKENS", None, 1_048_576
)
#: The largest request body; SageMaker takes at most 6 MB, and the function adds a few bytes.
MAX_BODY_BYTES: Final[Variable[int]] = Variable("MAX_BODY_BYTES", 1024 * 1024, 6_000_000)
#: The longest silence awaited from the endpoint. TGI sends a keep-alive every 15 s while a
#: request waits or prefills, so 60 s of nothing means the stream is dead.
UPSTREAM_READ_TIMEOUT_SECONDS: Final[Variable[float]] = Variable(
    "UPSTREAM_READ_TIMEOUT_SECONDS", 60.0, float(LAMBDA_MAX_TIMEOUT_SECONDS)
)
UPSTREAM_CONNECT_TIMEOUT_SECONDS: Final[Variable[float]] = Variable(
    "UPSTREAM_CONNECT_TIMEOUT_SECONDS", 5.0, float(LAMBDA_MAX_TIMEOUT_SECONDS)
)
#: Prompts are never logged unless this says so.
LOG_PROMPTS: Final[Variable[bool]] = Variable("LOG_PROMPTS", False)
POWERTOOLS_METRICS_NAMESPACE: Final[Variable[str]] = Variable(
    "POWERTOOLS_METRICS_NAMESPACE", METRIC_NAMESPACE
)
POWERTOOLS_SERVICE_NAME: Final[Variable[str]] = Variable("POWERTOOLS_SERVICE_NAME", SERVICE_NAME)
#: The environment the metrics describe (their Environment dimension).
JUMPSTREAM_ENVIRONMENT: Final[Variable[str]] = Variable("JUMPSTREAM_ENVIRONMENT", "local")
#: With API keys (relay `auth = "API_KEY"`): the DynamoDB table of keys and usage. When it is set,
#: every request but those to OPEN_PATHS needs a key; the function URL itself is then public.
API_KEYS_TABLE: Final[Variable[str | None]] = Variable("API_KEYS_TABLE", None)
#: Where the model's tokenizer is (`s3://bucket/key` of its tokenizer.json, or a local file's
#: path), for models whose TGI does not report a prompt's length in tokens: the function counts
#: them itself. Unset: prompt tokens are what TGI reports, or unknown.
TOKENIZER_URI: Final[Variable[str | None]] = Variable("TOKENIZER_URI", None)
#: The environment's limits for keys: each applies to every key that does not set that limit
#: itself (unset: no limit).
KEY_REQUESTS_PER_MINUTE: Final[Variable[int | None]] = Variable(
    "KEY_REQUESTS_PER_MINUTE", None, 1_000_000
)
KEY_TOKENS_PER_DAY: Final[Variable[int | None]] = Variable("KEY_TOKENS_PER_DAY", None, 10**12)
KEY_TOKENS_PER_MONTH: Final[Variable[int | None]] = Variable("KEY_TOKENS_PER_MONTH", None, 10**12)
#: The adapter connects to AWS_LWA_PORT, else PORT, else 8080; the function listens there too.
AWS_LWA_PORT: Final[Variable[int]] = Variable("AWS_LWA_PORT", DEFAULT_PORT, 65535)
PORT: Final[Variable[int]] = Variable("PORT", DEFAULT_PORT, 65535)
#: The address to listen on; the adapter connects to 127.0.0.1.
HOST: Final[Variable[str]] = Variable("HOST", "127.0.0.1")
#: Lambda sets it; anywhere else it must be set to the endpoint's region (required).
AWS_REGION: Final[Variable[str | None]] = Variable("AWS_REGION", None)
#: The Web Adapter: Lambda runs it first, it starts the handler script and forwards invocations.
AWS_LAMBDA_EXEC_WRAPPER: Final[Variable[str]] = Variable(
    "AWS_LAMBDA_EXEC_WRAPPER", "/opt/bootstrap"
)
#: How the adapter answers: streamed, as the function URL's RESPONSE_STREAM mode needs.
AWS_LWA_INVOKE_MODE: Final[Variable[str]] = Variable("AWS_LWA_INVOKE_MODE", "response_stream")
AWS_LWA_READINESS_CHECK_PATH: Final[Variable[str]] = Variable(
    "AWS_LWA_READINESS_CHECK_PATH", HEALTH_PATH
)
#: With SnapStart: where the adapter (1.1.0 and later) posts after a restore.
AWS_LWA_SNAPSTART_AFTER_RESTORE_PATH: Final[Variable[str]] = Variable(
    "AWS_LWA_SNAPSTART_AFTER_RESTORE_PATH", AFTER_RESTORE_PATH
)
#: The most client connections the relay serves at once; past it a connection's request is
#: answered 503 (`overloaded`). Unset: as many as the process's file descriptors allow
#: (http_server.py), which is also the most it may be set to.
MAX_CONNECTIONS: Final[Variable[int | None]] = Variable("MAX_CONNECTIONS", None, 1_000_000)
#: How long a client may take to send a request's head (from connecting, or from its first
#: byte on a kept-alive connection), then its body; past either, 408 (`request_timeout`).
REQUEST_HEAD_TIMEOUT_SECONDS: Final[Variable[float]] = Variable(
    "REQUEST_HEAD_TIMEOUT_SECONDS", 10.0, float(LAMBDA_MAX_TIMEOUT_SECONDS)
)
REQUEST_BODY_TIMEOUT_SECONDS: Final[Variable[float]] = Variable(
    "REQUEST_BODY_TIMEOUT_SECONDS", 30.0, float(LAMBDA_MAX_TIMEOUT_SECONDS)
)


def function_environment(
    *,
    endpoint_name: str,
    model_id: str | None = None,
    inference_component_name: str | None = None,
    prompt_template: str | None = None,
    serving_engine: str | None = None,
    engine_chat_template: bool = False,
    max_new_tokens_limit: int | None = None,
    model_max_total_tokens: int | None = None,
    model_max_input_tokens: int | None = None,
    upstream_read_timeout_seconds: float | None = None,
    metrics_namespace: str | None = None,
    environment_name: str | None = None,
    service_name: str | None = None,
    region: str | None = None,
    port: int | None = None,
    web_adapter: bool = False,
    snap_start: bool = False,
    api_keys_table: str | None = None,
    key_requests_per_minute: int | None = None,
    key_tokens_per_day: int | None = None,
    key_tokens_per_month: int | None = None,
    tokenizer_uri: str | None = None,
    max_connections: int | None = None,
) -> dict[str, str]:
    """The function's environment variables for these values; a value left None is not set,
    so the function's default applies.

    `web_adapter` adds what the Lambda Web Adapter needs (Lambda sets AWS_REGION itself there)
    and gives it the port, which the function then reads too; without it, as on a laptop, the
    port is the function's own PORT. `snap_start` (with the adapter) has it tell the function
    when Lambda restored it from a snapshot.
    """
    environment: dict[str, str] = {}
    if web_adapter:
        for adapter_setting in (
            AWS_LAMBDA_EXEC_WRAPPER,
            AWS_LWA_INVOKE_MODE,
            AWS_LWA_READINESS_CHECK_PATH,
        ):
            environment[adapter_setting.name] = str(adapter_setting.default)
        environment[AWS_LWA_PORT.name] = str(DEFAULT_PORT if port is None else port)
        if snap_start:
            hook = AWS_LWA_SNAPSTART_AFTER_RESTORE_PATH
            environment[hook.name] = str(hook.default)
    elif port is not None:
        environment[PORT.name] = str(port)
    values: tuple[tuple[Variable[Any], object], ...] = (
        (ENDPOINT_NAME, endpoint_name),
        (MODEL_ID, model_id),
        (INFERENCE_COMPONENT_NAME, inference_component_name),
        (PROMPT_TEMPLATE, prompt_template),
        (SERVING_ENGINE, serving_engine),
        (ENGINE_CHAT_TEMPLATE, "true" if engine_chat_template else None),
        (MAX_NEW_TOKENS_LIMIT, max_new_tokens_limit),
        (MODEL_MAX_TOTAL_TOKENS, model_max_total_tokens),
        (MODEL_MAX_INPUT_TOKENS, model_max_input_tokens),
        (UPSTREAM_READ_TIMEOUT_SECONDS, upstream_read_timeout_seconds),
        (POWERTOOLS_SERVICE_NAME, service_name),
        (POWERTOOLS_METRICS_NAMESPACE, metrics_namespace),
        (JUMPSTREAM_ENVIRONMENT, environment_name),
        (AWS_REGION, region),
        (API_KEYS_TABLE, api_keys_table),
        (KEY_REQUESTS_PER_MINUTE, key_requests_per_minute),
        (KEY_TOKENS_PER_DAY, key_tokens_per_day),
        (KEY_TOKENS_PER_MONTH, key_tokens_per_month),
        (TOKENIZER_URI, tokenizer_uri),
        (MAX_CONNECTIONS, max_connections),
    )
    for variable, value in values:
        if value is not None:
            environment[variable.name] = _text(value)
    return environment


def _text(value: object) -> str:
    """A value as the function reads it back: seconds without a needless `.0` (60, not 60.0)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# --- Metrics ------------------------------------------------------------------------------------


class Metric:
    """The names of the metrics the function writes (embedded metric format, per request)."""

    # (S105: "TOKEN" in these names is the model's kind of token, not a secret.)
    REQUESTS: Final = "Requests"
    TIME_TO_FIRST_TOKEN: Final = "TimeToFirstToken"  # noqa: S105
    INTER_TOKEN_LATENCY_P50: Final = "InterTokenLatencyP50"  # noqa: S105
    INTER_TOKEN_LATENCY_P99: Final = "InterTokenLatencyP99"  # noqa: S105
    TOKENS_PER_SECOND: Final = "TokensPerSecond"
    OUTPUT_TOKENS: Final = "OutputTokens"
    CLIENT_DISCONNECTS: Final = "ClientDisconnects"
    #: Requests that failed: SageMaker, the model or the function, or after the first token.
    ERRORS: Final = "Errors"
    #: Requests refused before any text for the caller's own reason (a 4xx).
    REFUSED: Final = "Refused"
    #: Client connections refused past MAX_CONNECTIONS (http_server.py), written at most
    #: once per few seconds, never per connection.
    REFUSED_CONNECTIONS: Final = "RefusedConnections"


class Dimension:
    """The names of the metrics' dimensions: never anything per request."""

    ENVIRONMENT: Final = "Environment"
    MODEL: Final = "Model"
    #: On Errors and Refused only: the error kind.
    ERROR_TYPE: Final = "ErrorType"


class LogField:
    """Fields of the function's one log line per request that something outside it reads (the
    top-keys rules of CloudWatch Contributor Insights)."""

    #: The public id of the API key the request came with (never the secret); absent without.
    KEY_ID: Final = "key_id"
    #: The tokens the model generated for the request (on every request line).
    OUTPUT_TOKENS: Final = "output_tokens"


# --- Error kinds --------------------------------------------------------------------------------


class ErrorKind(NamedTuple):
    """What a caller gets for one kind of failure (the `type` of the function's error body).

    `openai_status` is the status on the OpenAI routes: OpenAI's clients retry 429 and 5xx,
    so throttling is 429 there, and the function's 422s are OpenAI's 400s. `retry_after` is the
    Retry-After the answer carries, in seconds, for a failure that means "not now": a client
    should try again then; None means trying again will not help (an answer may give its own,
    shorter, Retry-After). `challenge` is the WWW-Authenticate the answer carries.
    """

    status: int
    openai_status: int
    openai_type: str
    retry_after: int | None = None
    challenge: str | None = None

    @property
    def retryable(self) -> bool:
        return self.retry_after is not None


# A throttled or overloaded endpoint usually has room again within seconds; an inference
# component with no capacity is scaling out, which takes minutes.
_BUSY_SECONDS: Final = 2
_STARTING_SECONDS: Final = 60
_INVALID: Final = "invalid_request_error"
_SERVER: Final = "server_error"

#: Every error kind the function answers with. A closed list, so clients can switch on it: add
#: to it only when no kind fits.
ERROR_KINDS: Final[Mapping[str, ErrorKind]] = MappingProxyType(
    {
        "invalid_body": ErrorKind(400, 400, _INVALID),
        "invalid_request": ErrorKind(422, 400, _INVALID),
        "body_too_large": ErrorKind(413, 413, _INVALID),
        "not_acceptable": ErrorKind(406, 406, _INVALID),
        "not_found": ErrorKind(404, 404, _INVALID),
        "method_not_allowed": ErrorKind(405, 405, _INVALID),
        "validation": ErrorKind(422, 400, _INVALID),
        "overloaded": ErrorKind(503, 503, _SERVER, retry_after=_BUSY_SECONDS),
        "throttled": ErrorKind(503, 429, "rate_limit_exceeded", retry_after=_BUSY_SECONDS),
        "unavailable": ErrorKind(503, 503, _SERVER, retry_after=_BUSY_SECONDS),
        "no_capacity": ErrorKind(503, 503, _SERVER, retry_after=_STARTING_SECONDS),
        "model_error": ErrorKind(502, 502, _SERVER),
        "upstream_error": ErrorKind(502, 502, _SERVER),
        "upstream_timeout": ErrorKind(504, 504, _SERVER),
        "incomplete_stream": ErrorKind(502, 502, _SERVER),
        "internal_error": ErrorKind(500, 500, _SERVER),
        # With API keys: the same answer whether the key is missing, unknown, revoked or
        # expired, so a caller learns nothing about keys it does not hold.
        "unauthorized": ErrorKind(401, 401, _INVALID, challenge="Bearer"),
        # A key's requests per minute are spent until the minute ends (its answer says when).
        "rate_limited": ErrorKind(429, 429, "rate_limit_exceeded", retry_after=60),
        # A key's token budget is spent: trying again helps only after the day or month ends.
        "quota_exceeded": ErrorKind(429, 429, "insufficient_quota"),
        # A client took longer than REQUEST_HEAD_TIMEOUT_SECONDS or REQUEST_BODY_TIMEOUT_SECONDS
        # to send its request.
        "request_timeout": ErrorKind(408, 408, _INVALID),
    }
)
#: The kinds that say "not now" rather than "no": a client waiting for an answer tries again.
RETRYABLE_KINDS: Final = frozenset(name for name, kind in ERROR_KINDS.items() if kind.retryable)


# --- API keys -----------------------------------------------------------------------------------
#
# `jumpstream keys create` makes a key and writes its record; the function reads the record and
# counts usage beside it. A key is `jsk_<id>_<secret>`: the id is public (it names the key in
# `keys list`, the usage table and the log lines), the secret is 256 random bits of which the
# table holds only a SHA-256 digest. A digest without a slow hash is enough for a secret that
# cannot be guessed: a slow hash defends only low-entropy secrets such as passwords.

#: Besides `Authorization: Bearer <key>` (what OpenAI's clients send), the key may come here.
API_KEY_HEADER: Final = "x-api-key"
#: What needs no key: the adapter's readiness check and the chat page's own files (the page then
#: asks for a key and sends it with each request); with SnapStart, the adapter's hook too (served
#: only then: the adapter refuses callers who ask for it, and only when it knows the path).
OPEN_PATHS: Final = frozenset({HEALTH_PATH, *CHAT_PAGE_FILES})
#: How long the function may act on a key's record it read: a revoked key stops working within
#: this many seconds (plus the request in flight).
KEY_CACHE_SECONDS: Final = 30
#: Refusals of callers without a valid key: counted as Refused whatever the method, since that is
#: where a leaked or probing client shows.
REFUSED_UNMETERED_KINDS: Final = frozenset({"unauthorized", "rate_limited", "quota_exceeded"})

_KEY_PREFIX: Final = "jsk_"
_KEY_ID_HEX_DIGITS: Final = 12
_KEY_SECRET_BYTES: Final = 32
# The whole key, matched before anything else is done with it: the id in lower-case hex, the
# secret in URL-safe base64 (what secrets.token_urlsafe writes: 43 characters for 32 bytes).
_KEY_PATTERN: Final = re.compile(r"jsk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")


class ApiKey(NamedTuple):
    """A key as it is handed out (`text`), and its two parts."""

    key_id: str
    secret: str

    @property
    def text(self) -> str:
        return f"{_KEY_PREFIX}{self.key_id}_{self.secret}"


def new_api_key() -> ApiKey:
    """A fresh key: 48 random bits of id, 256 of secret."""
    return ApiKey(
        key_id=secrets.token_hex(_KEY_ID_HEX_DIGITS // 2),
        secret=secrets.token_urlsafe(_KEY_SECRET_BYTES),
    )


def parse_api_key(text: str) -> ApiKey | None:
    """The key in `text`, or None when it is not one (which the caller answers like a wrong key)."""
    match = _KEY_PATTERN.fullmatch(text)
    if match is None:
        return None
    return ApiKey(key_id=match.group(1), secret=match.group(2))


def secret_digest(secret: str) -> str:
    """What the table holds instead of the secret."""
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


class KeyTable:
    """The DynamoDB table of keys and usage: its attribute names and item layout.

    One partition per key (`pk` = the key's id), holding
    - the key's record (`sk` = RECORD): its name, secret digest, creation time, optional expiry
      and revocation time, and its own limits;
    - its usage per UTC day (`sk` = `day#YYYY-MM-DD`): requests, prompt tokens and output tokens,
      and the time of its last request, added to (ADD) when each answer ends; a month's budget is
      the sum of its days, read with one Query;
    - its request count per UTC minute (`sk` = `minute#YYYY-MM-DDTHH:MM`), added to with a
      condition that it stays within the key's rate, so concurrent functions share one count;
      DynamoDB deletes these an hour after the minute (`ttl`).
    Times are whole seconds since the epoch.
    """

    PARTITION_KEY: Final = "pk"
    SORT_KEY: Final = "sk"
    #: The table's time-to-live attribute (only the per-minute counts carry it).
    TTL: Final = "ttl"
    RECORD: Final = "key"
    DAY_PREFIX: Final = "day#"
    MINUTE_PREFIX: Final = "minute#"
    # The record's attributes.
    NAME: Final = "name"
    SECRET_DIGEST: Final = "secret_sha256"  # noqa: S105 (an attribute name)
    CREATED_AT: Final = "created_at"
    EXPIRES_AT: Final = "expires_at"
    REVOKED_AT: Final = "revoked_at"
    REQUESTS_PER_MINUTE: Final = "requests_per_minute"
    TOKENS_PER_DAY: Final = "tokens_per_day"
    TOKENS_PER_MONTH: Final = "tokens_per_month"
    # The usage items' attributes (and the minute items' count: REQUESTS).
    REQUESTS: Final = "requests"
    PROMPT_TOKENS: Final = "prompt_tokens"
    OUTPUT_TOKENS: Final = "output_tokens"
    LAST_USED_AT: Final = "last_used_at"

    @staticmethod
    def day(day_iso: str) -> str:
        """The sort key of a day's usage, from its date as `YYYY-MM-DD`."""
        return KeyTable.DAY_PREFIX + day_iso

    @staticmethod
    def minute(minute_iso: str) -> str:
        """The sort key of a minute's request count, from `YYYY-MM-DDTHH:MM`."""
        return KeyTable.MINUTE_PREFIX + minute_iso

    @staticmethod
    def item_key(key_id: str, sort: str) -> dict[str, dict[str, str]]:
        """The primary key of one of a key's items (DynamoDB's low-level attribute values)."""
        return {KeyTable.PARTITION_KEY: {"S": key_id}, KeyTable.SORT_KEY: {"S": sort}}

    @staticmethod
    def number(item: Mapping[str, Mapping[str, str]], attribute: str) -> int | None:
        """A whole-number attribute of an item, None where the item has none."""
        value = item.get(attribute)
        if value is None or "N" not in value:
            return None
        return int(value["N"])


class KeyLimits(NamedTuple):
    """A key's limits, or an environment's defaults for keys; None: no limit of that kind (for a
    key: the environment's applies). Read from and written to a key's record by the function and
    by `jumpstream keys`."""

    requests_per_minute: int | None = None
    tokens_per_day: int | None = None
    tokens_per_month: int | None = None

    def over(self, defaults: KeyLimits) -> KeyLimits:
        """These limits, each unset one taken from `defaults`."""
        return KeyLimits(
            *(
                own if own is not None else default
                for own, default in zip(self, defaults, strict=True)
            )
        )

    @classmethod
    def from_item(cls, item: Mapping[str, Mapping[str, str]]) -> KeyLimits:
        """The limits a key's record holds (DynamoDB's low-level attribute values)."""
        return cls(*(KeyTable.number(item, attribute) for attribute in _LIMIT_ATTRIBUTES))

    def item(self) -> dict[str, dict[str, str]]:
        """The record's attributes for these limits (those set)."""
        return {
            attribute: {"N": str(value)}
            for attribute, value in zip(_LIMIT_ATTRIBUTES, self, strict=True)
            if value is not None
        }


# The record's attributes that hold KeyLimits' fields, in their order.
_LIMIT_ATTRIBUTES: Final = (
    KeyTable.REQUESTS_PER_MINUTE,
    KeyTable.TOKENS_PER_DAY,
    KeyTable.TOKENS_PER_MONTH,
)
