"""One JSON log line per request, an X-Request-Id on every response, and no traceback to callers.

`RequestObserver` wraps the whole application. It names the request (see invocation.py), puts
that id on every response (errors and streams included) and in every log line written while the
request runs (Powertools' context-local keys), keeps a `RequestRecord` the handlers fill in, and
writes the record as one log line when the response has ended, which for a stream is when its
last byte went out. An exception that escapes the application is logged here and answered with a
JSON 500 if nothing was sent yet.

The same line carries the request's metrics in CloudWatch's embedded metric format (built with
Powertools' EphemeralMetrics, one per request so concurrent streams never mix): CloudWatch Logs
turns it into metrics with no API call from the function. Only requests that generate (POST)
count. Dimensions are the environment and the model, plus the error type on the error counts:
never anything per request.
"""

from __future__ import annotations

import itertools
import json
import math
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .contract import REFUSED_UNMETERED_KINDS, Dimension, LogField, Metric
from .errors import error_response, internal_error
from .invocation import request_id_from

try:
    # The log line's serializer: ~10 us less per line than the standard library's. The asset
    # bundles its wheel; where it cannot load (a bundle for another Python), json does the work.
    from orjson import OPT_NON_STR_KEYS
    from orjson import dumps as _fast_dumps
except ImportError:  # pragma: no cover - depends on the interpreter
    _fast_dumps = None

__all__ = [
    "MetricsContext",
    "RequestObserver",
    "RequestRecord",
    "current_record",
    "make_logger",
    "refused_connections_metrics",
    "request_metrics",
]

_current: ContextVar[RequestRecord | None] = ContextVar("jumpstream_request_record", default=None)


def make_logger(service_name: str) -> Logger:
    """The relay's Powertools logger, its lines marked with the service's name."""
    # Without orjson (a bundle for another Python), Powertools' own serializer.
    serializer = {} if _fast_dumps is None else {"json_serializer": _log_json}
    return Logger(service=service_name, json_deserializer=_log_message, **serializer)


def _log_message(message: str) -> Any:
    """A log line's message as Powertools writes it. It logs a message that is a JSON document
    as that document, so it tries every message as one, and a sentence costs the parser a
    raised error (~4 us a line): only a message that opens as an object or array is tried."""
    if message[:1] in ("{", "["):
        return json.loads(message)
    return message


def _log_json(document: dict[str, Any]) -> str:
    """A log line as Powertools' own serializer writes it (compact, UTF-8, anything else as
    str), by orjson; what orjson refuses (an integer past 64 bits) goes through json."""
    assert _fast_dumps is not None
    try:
        return _fast_dumps(document, default=str, option=OPT_NON_STR_KEYS).decode()
    except TypeError:
        return json.dumps(document, default=str, separators=(",", ":"), ensure_ascii=False)


@dataclass(slots=True, kw_only=True)
class RequestRecord:
    """What one request did, filled in as it happens, logged once at its end.

    Mutable on purpose: it accumulates while the response streams. It never holds the prompt
    unless LOG_PROMPTS is on.
    """

    request_id: str
    method: str
    path: str
    started: float = field(default_factory=time.perf_counter)
    status: int | None = None
    response_format: str | None = None
    first_text_at: float | None = None
    # When each visible text piece went out, for the gaps between tokens.
    text_times: list[float] = field(default_factory=list)
    # Visible text pieces sent: what the caller got, after special and empty tokens were dropped.
    tokens: int = 0
    # Visible text pieces read from the model, sent or not (a whole document waits for its end).
    pulled_tokens: int = 0
    generated_tokens: int | None = None
    finish_reason: str | None = None
    error_type: str | None = None
    error_detail: str | None = None
    client_disconnected: bool = False
    prompt_chars: int | None = None
    #: The prompt's length in tokens, where it is known.
    prompt_tokens: int | None = None
    prompt: str | None = None
    #: With API keys: the public id of the key the request came with (never its secret).
    key_id: str | None = None

    def text_sent(self) -> None:
        """Count a text piece that went out; the first one fixes the time to first token."""
        now = time.perf_counter()
        if self.first_text_at is None:
            self.first_text_at = now
        self.text_times.append(now)
        self.tokens += 1

    @property
    def output_tokens(self) -> int:
        """The tokens the model generated for this request, as the model counted them where it
        said, else the text pieces read from it (a stream cut short, a client that left, a
        whole document that failed before it was sent)."""
        if self.generated_tokens is not None:
            return self.generated_tokens
        return max(self.tokens, self.pulled_tokens)

    def fields(self) -> dict[str, Any]:
        """The log line's keys (Powertools leaves out those whose value is None)."""
        now = time.perf_counter()
        fields: dict[str, Any] = {
            "request_id": self.request_id,
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "format": self.response_format,
            "time_to_first_token_ms": _ms(self.started, self.first_text_at),
            "tokens": self.tokens,
            "generated_tokens": self.generated_tokens,
            LogField.OUTPUT_TOKENS: self.output_tokens,
            "prompt_tokens": self.prompt_tokens,
            LogField.KEY_ID: self.key_id,
            "duration_ms": _ms(self.started, now),
            "finish_reason": self.finish_reason,
            "error_type": self.error_type,
            "error_detail": self.error_detail,
            "client_disconnected": self.client_disconnected,
            "prompt_chars": self.prompt_chars,
        }
        if self.prompt is not None:
            fields["prompt"] = self.prompt
        return fields


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricsContext:
    """Where the metrics go and what they are about: the same for every request."""

    namespace: str
    environment: str
    model: str


def request_metrics(record: RequestRecord, context: MetricsContext) -> dict[str, Any]:
    """The embedded-metric-format fields for one request's log line ({} if it generated nothing).

    Two directives: the request's own figures by environment and model, and its error (if any)
    counted both by environment and model and by error type, so one alarm sees every error and
    a dashboard can split them.
    """
    if record.method != "POST":
        # A request for anything else counts only when it was refused its key, its rate or
        # its budget: that is where a leaked key or a probing client shows.
        if record.error_type in REFUSED_UNMETERED_KINDS:
            return _error_metrics(record, context, refused=True)
        return {}
    figures = _metrics(context)
    figures.add_metric(Metric.REQUESTS, MetricUnit.Count, 1)
    if record.first_text_at is not None:
        ttft = (record.first_text_at - record.started) * 1000
        figures.add_metric(Metric.TIME_TO_FIRST_TOKEN, MetricUnit.Milliseconds, round(ttft, 1))
    gaps = sorted(b - a for a, b in itertools.pairwise(record.text_times))
    if gaps:
        p50, p99 = _rank(gaps, 0.5), _rank(gaps, 0.99)
        milliseconds = MetricUnit.Milliseconds
        figures.add_metric(Metric.INTER_TOKEN_LATENCY_P50, milliseconds, round(p50 * 1000, 2))
        figures.add_metric(Metric.INTER_TOKEN_LATENCY_P99, milliseconds, round(p99 * 1000, 2))
        span = record.text_times[-1] - record.text_times[0]
        if span > 0:
            figures.add_metric(
                Metric.TOKENS_PER_SECOND, MetricUnit.CountPerSecond, round(len(gaps) / span, 1)
            )
    if record.output_tokens:
        figures.add_metric(Metric.OUTPUT_TOKENS, MetricUnit.Count, record.output_tokens)
    if record.client_disconnected:
        figures.add_metric(Metric.CLIENT_DISCONNECTS, MetricUnit.Count, 1)
    document = figures.serialize_metric_set()
    if record.error_type is not None:
        # `figures` is emptied and reused for this: `document` is already made.
        refused = record.first_text_at is None and 400 <= (record.status or 0) < 500
        extra = _error_metrics(record, context, refused=refused)
        document["_aws"]["CloudWatchMetrics"] += extra.pop("_aws")["CloudWatchMetrics"]
        document.update(extra)
    return document


def refused_connections_metrics(count: int, context: MetricsContext) -> dict[str, Any]:
    """The embedded-metric-format fields for `count` client connections refused past the
    connection limit (http_server.py writes them on a line of their own, a few seconds apart)."""
    figures = _metrics(context)
    figures.add_metric(Metric.REFUSED_CONNECTIONS, MetricUnit.Count, count)
    return figures.serialize_metric_set()


def _error_metrics(
    record: RequestRecord, context: MetricsContext, *, refused: bool
) -> dict[str, Any]:
    """The request's error counted as Refused or Errors, by environment and model and again by
    error type too (a second dimension set)."""
    assert record.error_type is not None
    errors = _metrics(context)
    errors.add_metric(Metric.REFUSED if refused else Metric.ERRORS, MetricUnit.Count, 1)
    errors.add_dimensions(
        **{
            Dimension.ENVIRONMENT: context.environment,
            Dimension.MODEL: context.model,
            Dimension.ERROR_TYPE: record.error_type,
        }
    )
    return errors.serialize_metric_set()


# One EphemeralMetrics per context, emptied before each use: making one costs ~11 us (it lists
# CloudWatch's units), and a request's metrics are made and serialized with no await between,
# so on the one event loop no two requests ever hold it at once. A serialized document shares
# nothing that a later use changes: serializing copies the names and dimensions into new
# containers, and after emptying, add_metric makes new value lists.
_REUSED: dict[MetricsContext, EphemeralMetrics] = {}


def _metrics(context: MetricsContext) -> EphemeralMetrics:
    metrics = _REUSED.get(context)
    if metrics is None:
        # service="" keeps Powertools from adding POWERTOOLS_SERVICE_NAME as a dimension: the
        # alarms and the dashboard name exactly Environment and Model.
        metrics = _REUSED[context] = EphemeralMetrics(namespace=context.namespace, service="")
    metrics.clear_metrics()
    metrics.add_dimension(Dimension.ENVIRONMENT, context.environment)
    metrics.add_dimension(Dimension.MODEL, context.model)
    return metrics


def _rank(ordered: Sequence[float], quantile: float) -> float:
    """The nearest-rank percentile of values in ascending order: a value really observed."""
    return ordered[max(0, math.ceil(quantile * len(ordered)) - 1)]


def current_record() -> RequestRecord | None:
    """The record of the request this code runs for (None outside a request)."""
    return _current.get()


def _ms(start: float, end: float | None) -> float | None:
    return None if end is None else round((end - start) * 1000, 1)


class RequestObserver:
    """ASGI middleware: request id, the per-request log line, and the last line of defence."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        logger: Logger,
        metrics: MetricsContext | None = None,
        unmetered_paths: frozenset[str] = frozenset(),
    ) -> None:
        """`unmetered_paths`: where the platform, not a caller, calls the function (the Web
        Adapter's lifecycle hooks): logged, never counted as requests."""
        self._app = app
        self._logger = logger
        self._metrics = metrics
        self._unmetered = unmetered_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        headers = _first_headers(scope)
        record = RequestRecord(
            request_id=request_id_from(headers),
            method=str(scope.get("method", "")),
            path=str(scope.get("path", "")),
        )
        request_id_header = (b"x-request-id", record.request_id.encode("ascii"))
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                record.status = int(message["status"])
                message = {**message, "headers": [*message.get("headers", []), request_id_header]}
            await send(message)

        with self._request_context(record):
            try:
                await self._app(scope, receive, send_with_id)
            except Exception as error:
                self._logger.exception("unhandled error while serving a request")
                record.error_type = "internal_error"
                record.error_detail = repr(error)
                if not started:
                    await error_response(internal_error())(scope, receive, send_with_id)
            finally:
                fields = record.fields()
                if self._metrics is not None and record.path not in self._unmetered:
                    fields.update(request_metrics(record, self._metrics))
                self._logger.info("request finished", extra=fields)

    @contextmanager
    def _request_context(self, record: RequestRecord) -> Iterator[None]:
        """Context-local: concurrent requests each see their own record and request_id key."""
        token = _current.set(record)
        self._logger.thread_safe_append_keys(request_id=record.request_id)
        try:
            yield
        finally:
            self._logger.thread_safe_remove_keys(["request_id"])
            _current.reset(token)


def _first_headers(scope: Scope) -> dict[str, str]:
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", []):
        name = raw_name.decode("latin-1").lower()
        headers.setdefault(name, raw_value.decode("latin-1"))
    return headers
