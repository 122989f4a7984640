"""Request-rate traces: CSV files of `period,count` (requests per period), per second or per minute.

The period is a time ("1998-06-25 22:00:01", read as UTC) or a number of UNIX seconds; the resolution is the
most common step between periods. Periods missing from the file are filled by linear interpolation between
their neighbours (a gap in a log is missing data, not an idle site) and counted. A replay at speedup K plays
each period in period / K seconds at the same request rate, so a long trace runs K times faster.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from loadpilot.errors import PermanentError

FloatArray = npt.NDArray[np.float64]


class TraceError(PermanentError):
    """A trace file that cannot be read; the message names the file and the line."""


@dataclass(frozen=True)
class Trace:
    """Requests per period at a fixed resolution, from `start` (UNIX seconds), gaps filled."""

    name: str
    start: float
    period_s: float
    counts: FloatArray
    filled_mask: npt.NDArray[np.bool_] | None = None  # True where a missing period was filled in

    @property
    def filled(self) -> int:
        """How many periods of this trace were missing from the file and filled in."""
        return 0 if self.filled_mask is None else int(np.count_nonzero(self.filled_mask))

    @property
    def duration_s(self) -> float:
        """How long the trace lasts, in trace time."""
        return len(self.counts) * self.period_s

    @property
    def rates(self) -> FloatArray:
        """Requests per second in each period."""
        return self.counts / self.period_s

    def slice(self, start: float | None = None, duration_s: float | None = None) -> Trace:
        """The part from `start` (UNIX seconds; None: the beginning) lasting `duration_s` (None: to the end)."""
        first = 0 if start is None else max(0, math.floor((start - self.start) / self.period_s))
        last = len(self.counts) if duration_s is None else first + math.ceil(duration_s / self.period_s)
        counts = self.counts[first:last]
        if len(counts) == 0:
            raise TraceError(f"{self.name}: nothing in the trace from {_when(start)} for {duration_s} s")
        mask = None if self.filled_mask is None else self.filled_mask[first:last]
        return Trace(self.name, self.start + first * self.period_s, self.period_s, counts, mask)

    def replay(self, speedup: float = 1.0, step_s: float = 1.0) -> FloatArray:
        """Requests per second in each step of `step_s` of a replay `speedup` times faster than real time."""
        if speedup <= 0 or step_s <= 0:
            raise ValueError("speedup and step_s must be > 0")
        edges = np.arange(len(self.counts) + 1, dtype=np.float64) * self.period_s
        cumulative = np.concatenate(([0.0], np.cumsum(self.counts)))
        steps = max(1, math.floor(self.duration_s / speedup / step_s))
        at = np.arange(steps + 1, dtype=np.float64) * step_s * speedup
        requests = np.interp(at, edges, cumulative)
        return np.asarray(np.diff(requests) / (step_s * speedup), dtype=np.float64)


def _when(start: float | None) -> str:
    if start is None:
        return "its start"
    return dt.datetime.fromtimestamp(start, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def parse_time(text: str) -> float:
    """A period or a --start value: UNIX seconds, or an ISO date/time read as UTC."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    when = dt.datetime.fromisoformat(text)
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


def _rows(path: Path) -> tuple[list[float], list[float]]:
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except OSError as exc:
        raise TraceError(f"{path}: cannot read the trace ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise TraceError(f"{path}: not a text file") from None
    if not lines or [c.strip().lower() for c in lines[0].split(",")] != ["period", "count"]:
        raise TraceError(f"{path}:1: the header must be 'period,count'")
    periods: list[float] = []
    counts: list[float] = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split(",")
        if len(fields) != 2:
            raise TraceError(f"{path}:{number}: expected 'period,count', got {line!r}")
        try:
            period = parse_time(fields[0])
        except ValueError:
            raise TraceError(f"{path}:{number}: period {fields[0].strip()!r} is not a time or a number") from None
        try:
            count = float(fields[1])
        except ValueError:
            raise TraceError(f"{path}:{number}: count {fields[1].strip()!r} is not a number") from None
        if not math.isfinite(count) or count < 0:
            raise TraceError(f"{path}:{number}: count must be a number >= 0, got {fields[1].strip()}")
        if periods and period <= periods[-1]:
            raise TraceError(f"{path}:{number}: periods must increase ({fields[0].strip()} is not after the last)")
        periods.append(period)
        counts.append(count)
    if not periods:
        raise TraceError(f"{path}: no data rows after the header")
    return periods, counts


def load_trace(path: str | Path) -> Trace:
    """Read a `period,count` CSV; TraceError naming the file and line for anything malformed."""
    path = Path(path)
    periods, counts = _rows(path)
    times = np.asarray(periods, dtype=np.float64)
    values = np.asarray(counts, dtype=np.float64)
    if len(times) == 1:
        return Trace(path.name, float(times[0]), 1.0, values)
    steps = np.diff(times)
    period = float(np.median(steps))
    offsets = (times - times[0]) / period
    slots = np.rint(offsets).astype(np.int64)
    off_grid = np.flatnonzero(np.abs(offsets - slots) > 1e-6)
    if len(off_grid):
        line = int(off_grid[0]) + 2
        raise TraceError(f"{path}:{line}: period is not on the trace's {period:g} s grid")
    full = np.interp(np.arange(slots[-1] + 1), slots, values)
    filled = np.ones(len(full), dtype=np.bool_)
    filled[slots] = False
    return Trace(path.name, float(times[0]), period, full, filled)
