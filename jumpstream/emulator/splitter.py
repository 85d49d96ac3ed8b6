"""Cut the container's byte stream into PayloadPart payloads.

Why: SageMaker gives no guarantee that a PayloadPart holds whole SSE events or whole UTF-8
characters, and parsers that assumed it broke in production. ``[[split:K]]`` and
``[[split:random]]`` make the emulator cut anywhere, so a relay's decoder is tested against
the worst the real service may do. Without a size, each piece of data becomes one part, which
is what a real TGI container on SageMaker typically produces (one part per event).
"""

from __future__ import annotations

from jumpstream.emulator.tokenizer import stable_hash

#: ``[[split:random]]`` draws part sizes from 1 to this many bytes.
RANDOM_PART_MAX = 40


class PartSplitter:
    """Feed bytes in, get part payloads out; bytes short of a full part wait for more."""

    def __init__(self, size: int | None = None, *, random_seed: int | None = None) -> None:
        if size is not None and size < 1:
            raise ValueError("part size must be at least 1 byte")
        self._size = size
        self._seed = random_seed
        self._pending = b""
        self._parts_cut = 0

    @property
    def passthrough(self) -> bool:
        return self._size is None and self._seed is None

    def feed(self, data: bytes) -> list[bytes]:
        """Parts that are complete once ``data`` is added."""
        if self.passthrough:
            return [data] if data else []
        self._pending += data
        parts: list[bytes] = []
        while len(self._pending) >= (size := self._next_size()):
            parts.append(self._pending[:size])
            self._pending = self._pending[size:]
            self._parts_cut += 1
        return parts

    def flush(self) -> list[bytes]:
        """Whatever is pending, as one short part: the stream pauses or ends here."""
        if not self._pending:
            return []
        part, self._pending = self._pending, b""
        self._parts_cut += 1
        return [part]

    def _next_size(self) -> int:
        if self._size is not None:
            return self._size
        # Deterministic "random" sizes from the prompt's seed: reproducible failures.
        return 1 + stable_hash(self._seed or 0, self._parts_cut) % RANDOM_PART_MAX
