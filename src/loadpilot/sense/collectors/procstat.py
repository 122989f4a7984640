"""One process's CPU time, RSS and name from a single read of /proc/<pid>/stat.

The process collector reads every process of a group every tick; psutil reads two files per process (stat and
statm) and wraps each in several calls, three times the cost of this one read. Elsewhere than Linux, psutil.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import psutil

_PROC = Path("/proc")
_TICKS_PER_S = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
HAVE_PROC = (_PROC / "self" / "stat").exists()


class ProcessGone(Exception):
    """The process ended (or cannot be read) between listing and reading it."""


@dataclass(frozen=True, slots=True)
class ProcStat:
    """What one reading of a process gives: CPU seconds (user + system), resident bytes and its short name."""

    cpu_s: float
    rss_bytes: int
    name: str


def read_stat(pid: int) -> ProcStat:
    """Read one process; raises ProcessGone when it no longer exists or cannot be read."""
    if not HAVE_PROC:
        return _read_with_psutil(pid)
    try:
        raw = (_PROC / str(pid) / "stat").read_bytes()
    except OSError as exc:
        raise ProcessGone(pid) from exc
    # "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after its last ")".
    close = raw.rindex(b")")
    fields = raw[close + 2 :].split()
    # After comm, field 3 (state) is fields[0]: utime is field 14, stime 15, rss (pages) 24.
    return ProcStat(
        cpu_s=(int(fields[11]) + int(fields[12])) / _TICKS_PER_S,
        rss_bytes=int(fields[21]) * _PAGE_BYTES,
        name=raw[raw.index(b"(") + 1 : close].decode(errors="replace"),
    )


def _read_with_psutil(pid: int) -> ProcStat:
    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            cpu = proc.cpu_times()
            return ProcStat(cpu.user + cpu.system, proc.memory_info().rss, proc.name())
    except psutil.Error as exc:
        raise ProcessGone(pid) from exc
