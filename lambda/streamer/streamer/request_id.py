"""Which id a request goes by, so a caller's report can be found in the logs.

Behind the Lambda Web Adapter there is no handler context object: the adapter forwards Lambda's
context as JSON in `x-amzn-lambda-context` (its `request_id` is what CloudWatch shows for the
invocation), and the function URL's request context in `x-amzn-request-context` (`requestId`).
Run outside Lambda, neither is there and the relay makes its own.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from typing import Final

__all__ = ["request_id_from"]

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


def _field(raw: str | None, key: str) -> str | None:
    if not raw or len(raw) > _MAX_HEADER_CHARS:
        return None
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not isinstance(document, dict):
        return None
    value = document.get(key)
    if isinstance(value, str) and _SAFE_ID.fullmatch(value):
        return value
    return None
