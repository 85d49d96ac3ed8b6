"""What the Lambda Web Adapter tells the relay about the invocation: its id and its deadline.

Behind the adapter there is no handler context object: it forwards Lambda's context as JSON in
`x-amzn-lambda-context` (its `request_id` is what CloudWatch shows for the invocation, its
`deadline` the epoch millisecond at which Lambda stops the function), and the function URL's
request context in `x-amzn-request-context` (`requestId`). Run outside Lambda, neither is there:
the relay makes its own id and has no deadline but its upstream read timeout.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Mapping
from typing import Final

__all__ = ["request_id_from", "seconds_left_from"]

# The id goes into a response header and the logs: accept only what real ids look like.
_SAFE_ID: Final = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_SOURCES: Final = (("x-amzn-lambda-context", "request_id"), ("x-amzn-request-context", "requestId"))
# Lambda's context headers are small; anything longer is not worth parsing.
_MAX_HEADER_CHARS: Final = 16 * 1024


def request_id_from(headers: Mapping[str, str]) -> str:
    """The Lambda request id, else the function URL's, else a fresh uuid4."""
    for header, key in _SOURCES:
        value = _field(headers.get(header), key)
        if value is not None:
            return value
    return str(uuid.uuid4())


def seconds_left_from(headers: Mapping[str, str], *, now: float) -> float | None:
    """Seconds until Lambda stops this invocation (`now` is epoch seconds), or None if unknown.

    The adapter serializes the runtime's context, whose deadline is `deadline` (epoch ms); some
    of its documentation says `deadline_ms`, so both are read.
    """
    document = _document(headers.get("x-amzn-lambda-context"))
    if document is None:
        return None
    for key in ("deadline", "deadline_ms"):
        value = document.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
            try:
                seconds_left = value / 1000 - now
            except OverflowError:  # an integer too large for a float: no real deadline
                return None
            return seconds_left if math.isfinite(seconds_left) else None
    return None


def _document(raw: str | None) -> dict[str, object] | None:
    if not raw or len(raw) > _MAX_HEADER_CHARS:
        return None
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return document if isinstance(document, dict) else None


def _field(raw: str | None, key: str) -> str | None:
    document = _document(raw)
    if document is None:
        return None
    value = document.get(key)
    if isinstance(value, str) and _SAFE_ID.fullmatch(value):
        return value
    return None
