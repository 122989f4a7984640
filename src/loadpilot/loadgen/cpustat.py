"""The machine's CPU time from /proc/stat, counted as the host collector counts it.

Busy is user+nice+system+irq+softirq+steal; idle and iowait are not busy; guest time is already inside user and
nice, so it is not added again. Times are CPU-seconds summed over every core, so the utilisation of the whole
machine over an interval is busy delta / total delta, a fraction 0..1 of all its cores.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from loadpilot.errors import PermanentError

PROC_STAT = Path("/proc/stat")
TICKS_PER_S = float(os.sysconf("SC_CLK_TCK"))
# Fields of the "cpu" line, in order; the first eight are all this needs.
BUSY_FIELDS = ("user", "nice", "system", "irq", "softirq", "steal")
FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


@dataclass(frozen=True)
class CpuTimes:
    """Cumulative CPU-seconds of the whole machine since boot: busy, and busy + idle."""

    busy: float
    total: float


def parse_cpu_line(line: str) -> CpuTimes:
    """The busy and total CPU-seconds of /proc/stat's aggregate "cpu" line.

    Kernels older than 2.6.11 lack steal (and older still irq/softirq): missing fields count as zero.
    """
    parts = line.split()
    if not parts or parts[0] != "cpu":
        raise PermanentError(f"/proc/stat: expected the aggregate 'cpu' line, got {line[:40]!r}")
    values = dict(zip(FIELDS, (int(v) for v in parts[1 : 1 + len(FIELDS)]), strict=False))
    busy = sum(values.get(name, 0) for name in BUSY_FIELDS)
    total = busy + values.get("idle", 0) + values.get("iowait", 0)
    return CpuTimes(busy / TICKS_PER_S, total / TICKS_PER_S)


def read_cpu_times(path: Path = PROC_STAT) -> CpuTimes:
    """The machine's cumulative CPU times now; raises PermanentError where /proc/stat cannot be read (not Linux)."""
    try:
        with path.open() as f:
            first = f.readline()
    except OSError as exc:
        raise PermanentError(f"cannot read {path} ({exc}); the CPU load generator needs Linux") from exc
    return parse_cpu_line(first)


def utilisation(before: CpuTimes, after: CpuTimes) -> float:
    """Busy share of the machine (0..1 of all cores) between two readings; 0 when no time passed."""
    total = after.total - before.total
    if total <= 0:
        return 0.0
    return min(1.0, max(0.0, (after.busy - before.busy) / total))
