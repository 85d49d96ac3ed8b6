"""Reading a request's body within the relay's limit, whatever its Content-Length says.

The limit is checked twice: against Content-Length before anything is read (a 413 at once),
and again while reading, so a missing or lying length cannot get more than the limit into
memory.
"""

from __future__ import annotations

import re
from typing import Final

from starlette.requests import ClientDisconnect, Request

from .errors import ApiError
from .observability import current_record

__all__ = ["read_body"]

_CONTENT_LENGTH: Final = re.compile(r"[0-9]{1,20}")


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, at most `limit` bytes; ApiError 413 beyond it, 400 when cut short."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not _CONTENT_LENGTH.fullmatch(declared.strip()):
            raise ApiError(
                kind="invalid_body",
                message="The Content-Length header must be a number of bytes.",
            )
        if int(declared) > limit:
            raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
    except ClientDisconnect:
        record = current_record()
        if record is not None:
            record.client_disconnected = True
        raise ApiError(
            kind="invalid_body",
            message="The client disconnected before sending the whole body.",
        ) from None
    return b"".join(chunks)


def _too_large(limit: int) -> ApiError:
    return ApiError(
        kind="body_too_large",
        message=f"The request body must be at most {limit} bytes.",
    )
