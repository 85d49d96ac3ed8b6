"""Stop sequences cut from the streamed answer, however tokens split them.

TGI stops generating once its text ends with a stop sequence, but the stop sequence itself is part
of what it streams. A chat caller asked for the assistant's answer, not for the `\\nUser:` that
began the next turn, and OpenAI's API promises the stop sequence is not returned. So the relay
holds back only a suffix that could still grow into a stop sequence, lets everything else go out
as soon as it arrives, and drops a stop sequence once it is complete, with anything after it.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["StopSequenceTrimmer"]


class StopSequenceTrimmer:
    """A text transform (`feed`/`flush`) whose output never contains a stop sequence.

    The output equals the input cut before the first occurrence of any stop sequence (or the
    whole input when none occurs). Once a stop sequence was seen, everything after it is dropped.
    """

    def __init__(self, stop_sequences: Iterable[str]) -> None:
        self._stops = tuple(stop for stop in stop_sequences if stop)
        self._held = ""
        self._stopped = False

    @property
    def stopped(self) -> bool:
        """True once a stop sequence was found and cut."""
        return self._stopped

    def feed(self, text: str) -> str:
        if self._stopped:
            return ""
        buffered = self._held + text
        cut = self._first_stop(buffered)
        if cut is not None:
            self._held = ""
            self._stopped = True
            return buffered[:cut]
        keep = self._partial_stop_suffix(buffered)
        self._held = buffered[len(buffered) - keep :]
        return buffered[: len(buffered) - keep]

    def flush(self) -> str:
        held, self._held = self._held, ""
        return held

    def _first_stop(self, text: str) -> int | None:
        found = [index for stop in self._stops if (index := text.find(stop)) >= 0]
        return min(found) if found else None

    def _partial_stop_suffix(self, text: str) -> int:
        """The length of the longest suffix of `text` that is a proper prefix of a stop."""
        longest = 0
        for stop in self._stops:
            for length in range(min(len(stop) - 1, len(text)), longest, -1):
                if text.endswith(stop[:length]):
                    longest = length
                    break
        return longest
