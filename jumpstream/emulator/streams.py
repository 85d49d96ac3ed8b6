"""Bookkeeping of the streams the emulator served, and the gate that ``[[hold@N]]`` waits at.

Why: relay tests must observe the upstream side of a stream — did the relay's client go away
when its own client did, did it read the first piece before the second was sent — and that is
only visible from the server. ``GET /_emulator/streams`` reports these records and
``POST /_emulator/release`` opens the gate.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

StreamState = Literal["open", "completed", "disconnected"]
#: Records kept; older ones are dropped so a long benchmark cannot grow memory without bound.
MAX_RECORDS = 10_000


@dataclass(slots=True, kw_only=True)
class StreamRecord:
    """One served stream. Mutable on purpose: it is the live state the server updates."""

    id: str
    state: StreamState = "open"
    tokens_sent: int = 0
    held: bool = False

    def finish(self, state: StreamState) -> None:
        """Settle the state once; a stream that completed cannot later become disconnected."""
        if self.state == "open":
            self.state = state

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "state": self.state,
            "tokens_sent": self.tokens_sent,
            "held": self.held,
        }


class StreamRegistry:
    """All stream records of one app, plus the release gate shared by held streams."""

    def __init__(self) -> None:
        self._records: deque[StreamRecord] = deque(maxlen=MAX_RECORDS)
        self._gate = asyncio.Event()

    def open(self, stream_id: str) -> StreamRecord:
        return self.add(StreamRecord(id=stream_id))

    def add(self, record: StreamRecord) -> StreamRecord:
        self._records.append(record)
        return record

    def snapshot(self) -> list[dict[str, Any]]:
        return [record.to_json() for record in self._records]

    async def hold(self, record: StreamRecord) -> None:
        """Wait until the next :meth:`release`; the record says it is held meanwhile."""
        gate = self._gate
        record.held = True
        try:
            await gate.wait()
        finally:
            record.held = False

    def release(self) -> int:
        """Let every stream held now go on; return how many were held."""
        held = sum(1 for record in self._records if record.held)
        self._gate.set()
        self._gate = asyncio.Event()
        return held
