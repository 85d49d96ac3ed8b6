"""Put a real TGI server behind the emulator's SageMaker front, bytes untouched.

Why: with a TGI container running locally (on a GPU box, or TGI's CPU image), the relay can be
exercised against a real model's stream while still talking the SageMaker protocol, exactly as
in AWS. The body goes to ``/generate_stream`` when it asks to stream (``"stream": true``, like
TGI's own SageMaker route decides) and to ``/generate`` otherwise; TGI's bytes come back as
PayloadParts as they arrive (through InvokeEndpoint, whole once TGI is done). TGI answering with
an HTTP error becomes SageMaker's ``ModelError``, and a connection lost mid-stream becomes
``ModelStreamError`` / ``StreamBroken``. Only TGI is forwarded to: ``--tgi-url`` is refused for
a model served by another engine.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from dataclasses import dataclass

import anyio
import httpx

from jumpstream.emulator import errors
from jumpstream.emulator.errors import SageMakerError
from jumpstream.emulator.playback import Played
from jumpstream.emulator.stream_faults import StreamFault
from jumpstream.emulator.streams import StreamRecord

#: No read timeout: a long prefill is silent for as long as it takes (TGI sends keep-alives).
TGI_TIMEOUT = httpx.Timeout(connect=10.0, read=None, write=60.0, pool=None)


@dataclass(frozen=True, slots=True, kw_only=True)
class TgiReply:
    """A successful TGI answer: its content type, and its bytes as they come (then SageMaker's
    failure, if the connection breaks)."""

    content_type: str
    parts: AsyncGenerator[Played, None]


def wants_stream(body: bytes) -> bool:
    """True when the top-level JSON has ``"stream": true`` (the only switch TGI honours)."""
    try:
        decoded = json.loads(body)
    except ValueError:
        return False
    return isinstance(decoded, dict) and decoded.get("stream") is True


class TgiRelay:
    """Forwards invocations to the TGI server at ``base_url`` through one shared client."""

    def __init__(self, base_url: str, client: httpx.AsyncClient) -> None:
        self._base_url = base_url.rstrip("/")
        self._client = client

    async def invoke(
        self,
        body: bytes,
        *,
        content_type: str,
        endpoint_name: str,
        record: StreamRecord,
    ) -> TgiReply | SageMakerError:
        route = "/generate_stream" if wants_stream(body) else "/generate"
        request = self._client.build_request(
            "POST",
            self._base_url + route,
            content=body,
            headers={"Content-Type": content_type},
            timeout=TGI_TIMEOUT,
        )
        try:
            response = await self._client.send(request, stream=True)
        except httpx.HTTPError as error:
            return errors.model_error(
                endpoint_name, 502, f"The model container could not be reached: {error!r}"
            )
        if response.status_code >= 300:
            try:
                text = (await response.aread()).decode("utf-8", "replace")
            except httpx.HTTPError:
                text = ""
            finally:
                await response.aclose()
            return errors.model_error(endpoint_name, response.status_code, text)
        return TgiReply(
            content_type=response.headers.get("content-type", "application/json"),
            parts=_relay(response, record),
        )


async def _relay(response: httpx.Response, record: StreamRecord) -> AsyncGenerator[Played, None]:
    counter = _EventCounter()
    try:
        async for chunk in response.aiter_raw():
            record.tokens_sent += counter.count(chunk)
            yield chunk
    except httpx.HTTPError:
        yield StreamFault("stream_broken")
    finally:
        with anyio.CancelScope(shield=True):
            await response.aclose()


class _EventCounter:
    """Counts ``data:`` lines across chunk boundaries, for the streams report only."""

    _MARK = b"\ndata:"

    def __init__(self) -> None:
        self._tail = b"\n"

    def count(self, chunk: bytes) -> int:
        window = self._tail + chunk
        # A tail shorter than the mark cannot hold a whole mark, so nothing is counted twice.
        self._tail = window[-(len(self._MARK) - 1) :]
        return window.count(self._MARK)
