"""DynamoDB from the event loop: botocore's serializer and parser, aws.py's signed connections.

With API keys, each request reads a key's record and writes its usage; boto3's client would block
the event loop (or cost a worker thread per call). botocore still does the protocol: its `json`
serializer builds each request from the operation's model and its parser reads each reply, an
error's code included, exactly as boto3 would. No retries here: a failed call fails the request
(closed), and the caller is told to try again.
"""

from __future__ import annotations

from typing import Any, Final

from botocore.awsrequest import HTTPHeaders
from botocore.exceptions import ClientError
from botocore.parsers import create_parser
from botocore.serialize import create_serializer

from .aws import AwsAccess
from .contract import SERVICE_NAME
from .http_types import Response, host_header

__all__ = ["DynamoDB"]

# Key lookups and counters: a few hundred bytes each way, and a stalled call holds a caller.
_TIMEOUT_SECONDS: Final = 3.0
# A reply this long is not one of these operations' (a month of days is a few KB).
_MAX_REPLY_BYTES: Final = 1024 * 1024


class DynamoDB:
    """The DynamoDB operations the function calls, by name, with boto3's parameters and
    results (low-level attribute values). A refusal raises botocore's ClientError."""

    def __init__(self, access: AwsAccess) -> None:
        self._access = access
        endpoint = access.endpoint("dynamodb")
        self._url = endpoint.url + "/"
        self._model = endpoint.model
        protocol = endpoint.model.metadata["protocol"]
        self._serializer = create_serializer(protocol, include_validation=False)
        self._parser = create_parser(protocol)
        self._host = host_header(self._url)
        self._timeouts: dict[str, float | None] = dict.fromkeys(
            ("connect", "read", "write", "pool"), _TIMEOUT_SECONDS
        )

    async def call(self, operation: str, parameters: dict[str, Any]) -> dict[str, Any]:
        """One operation (e.g. "GetItem"); raises ClientError for DynamoDB's refusals, and
        an http_types.py failure when the call does not complete."""
        model = self._model.operation_model(operation)
        serialized = self._serializer.serialize_to_request(parameters, model)
        body: bytes = serialized["body"]
        headers = {**serialized["headers"], "Host": self._host, "User-Agent": SERVICE_NAME}
        response = await self._access.post(
            service="dynamodb", url=self._url, body=body, headers=headers, timeouts=self._timeouts
        )
        try:
            reply = await _read(response)
        finally:
            await response.aclose()
        parsed = self._parser.parse(
            {
                "status_code": response.status,
                "headers": HTTPHeaders.from_pairs(
                    [(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.headers]
                ),
                "body": reply,
            },
            model.output_shape,
        )
        if response.status >= 300:
            raise ClientError(parsed, operation)
        parsed.pop("ResponseMetadata", None)
        return parsed


async def _read(response: Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.stream:
        size += len(chunk)
        if size > _MAX_REPLY_BYTES:
            raise ValueError("DynamoDB's reply is longer than any this function expects")
        chunks.append(chunk)
    return b"".join(chunks)
