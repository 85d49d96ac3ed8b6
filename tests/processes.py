"""Whether processes still run, read from /proc: what the process-group tests check after a stop."""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path


def is_running(pid: int) -> bool:
    """True while `pid` exists and is not a zombie (a reaped-late zombie no longer runs)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def wait_until_gone(pids: Iterable[int], *, guard_seconds: float) -> bool:
    """Poll until none of `pids` runs; False if some still run after the hang guard."""
    pids = set(pids)
    deadline = time.monotonic() + guard_seconds
    while time.monotonic() < deadline:
        if not any(is_running(pid) for pid in pids):
            return True
        time.sleep(0.02)
    return False
