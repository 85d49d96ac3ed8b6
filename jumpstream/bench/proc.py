"""What Linux's ``/proc`` says about a process: its memory and the CPU time it has used.

Read from outside, so the relay is measured as it runs (started by ``run.sh``, which execs
Python: the child's pid is the relay's), with no code of the bench inside it. None where there is
no ``/proc`` (not Linux); the figures that need it are then NaN.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["RelayMemory", "process_cpu_seconds", "relay_memory"]

# In /proc/PID/stat, after the command name in parentheses (which may itself hold spaces and
# parentheses, hence the last ")"), field 3 (state) comes first: utime and stime, fields 14 and
# 15, are then at these positions. They count every thread of the process.
_UTIME_AFTER_NAME = 11
_STIME_AFTER_NAME = 12


@dataclass(frozen=True, slots=True, kw_only=True)
class RelayMemory:
    """``VmRSS`` (now) and ``VmHWM`` (the peak so far) of a process, in KiB."""

    rss_kib: int
    peak_kib: int


def relay_memory(pid: int) -> RelayMemory | None:
    """Memory of ``pid`` from ``/proc/PID/status``; None where there is no /proc (not Linux)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    fields: dict[str, int] = {}
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    if "VmRSS" not in fields:
        return None
    return RelayMemory(rss_kib=fields["VmRSS"], peak_kib=fields.get("VmHWM", fields["VmRSS"]))


def process_cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time ``pid`` has used so far, from ``/proc/PID/stat``.

    The kernel counts it in clock ticks (``SC_CLK_TCK``, 100 a second on Linux): a difference
    of two readings is good to 10 ms, so measure spans of many requests.
    """
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    ticks = int(fields[_UTIME_AFTER_NAME]) + int(fields[_STIME_AFTER_NAME])
    return ticks / os.sysconf("SC_CLK_TCK")
