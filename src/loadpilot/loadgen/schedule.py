"""When each request should leave: a constant rate, a linear ramp, or a replayed trace of per-period counts.

A schedule is a list of intended send times (seconds after the start), worked out in advance and never adjusted
to how fast answers come back: that is what makes the load open-loop. The HTTP generator measures every
request's latency from its intended time, so a generator that falls behind its schedule shows it as latency.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from loadpilot.errors import PermanentError

MAX_REQUESTS = 100_000_000  # a schedule beyond this is almost surely a typo (and would take hours)


class ScheduleError(PermanentError):
    """A schedule's parameters or trace file are invalid; the message names the option or the line."""


@dataclass(frozen=True)
class Segment:
    """A stretch of a schedule whose rate changes linearly from `rate_from` to `rate_to` (requests/s)."""

    start: float
    length: float
    rate_from: float
    rate_to: float

    @property
    def count(self) -> int:
        """How many requests the segment sends: the area under its rate, to the nearest whole request."""
        return round((self.rate_from + self.rate_to) / 2 * self.length)


@dataclass(frozen=True)
class Schedule:
    """Intended send times: `total` requests over `duration` seconds, described for people by `label`."""

    label: str
    segments: tuple[Segment, ...]

    @property
    def total(self) -> int:
        """How many requests the schedule sends."""
        return sum(s.count for s in self.segments)

    @property
    def duration(self) -> float:
        """Seconds from the start to the end of the last segment."""
        return self.segments[-1].start + self.segments[-1].length if self.segments else 0.0

    def send_times(self) -> Iterator[float]:
        """Every request's intended send time, in seconds after the start, in order."""
        for segment in self.segments:
            yield from _ramp_times(segment)

    def rate_at(self, t: float) -> float:
        """The intended rate (requests/s) at `t` seconds after the start: what a progress display compares with."""
        for s in self.segments:
            if s.start <= t < s.start + s.length:
                return s.rate_from + (s.rate_to - s.rate_from) * (t - s.start) / s.length
        return 0.0


def _ramp_times(segment: Segment) -> Iterator[float]:
    """Times where the cumulative count of a linearly changing rate reaches 0, 1, 2, ... requests.

    The count by time t is N(t) = r1 t + (r2 - r1) t^2 / (2 L); request i leaves when N(t) = i, solved in the
    form 2i / (r1 + sqrt(r1^2 + 4 a i)) that stays exact when the rate is constant (a = 0). A constant rate thus
    spreads its requests evenly: request i at i / r.
    """
    r1 = segment.rate_from
    slope = (segment.rate_to - r1) / (2 * segment.length)
    for i in range(segment.count):
        denominator = r1 + math.sqrt(max(0.0, r1 * r1 + 4 * slope * i))
        yield segment.start + (2 * i / denominator if denominator > 0 else 0.0)


def constant(rate: float, duration: float) -> Schedule:
    """`rate` requests/s, evenly spaced, for `duration` seconds."""
    return ramp(rate, rate, duration)


def ramp(rate_from: float, rate_to: float, duration: float) -> Schedule:
    """A rate changing linearly from `rate_from` to `rate_to` over `duration` seconds (either may be 0)."""
    _check_duration(duration)
    for name, rate in (("start", rate_from), ("end", rate_to)):
        if not (math.isfinite(rate) and rate >= 0):
            raise ScheduleError(f"--rate/--ramp: the {name} rate {rate!r} must be a number >= 0")
    if rate_from == 0 and rate_to == 0:
        raise ScheduleError("--rate/--ramp: the rate must be above 0")
    label = f"{rate_from:g} req/s" if rate_from == rate_to else f"ramp {rate_from:g} -> {rate_to:g} req/s"
    return _checked(Schedule(f"{label} for {duration:g} s", (Segment(0.0, duration, rate_from, rate_to),)))


def trace(path: Path, speedup: float = 1.0, duration: float | None = None) -> Schedule:
    """Replay a trace file of `period,count` lines: each period lasts `period` seconds and holds `count` requests.

    The requests of a period are spread evenly over it. `speedup` shortens every period by that factor (the counts
    stay, so the rate grows by it); `duration` (seconds, after speeding up) cuts the replay short. Blank lines and
    lines starting with `#` are skipped, and so is a first line `period,count`. Errors name the line.
    """
    if not (math.isfinite(speedup) and speedup > 0):
        raise ScheduleError(f"--speedup: {speedup!r} must be a number > 0")
    if duration is not None:
        _check_duration(duration)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ScheduleError(f"--trace: cannot read {path}: {exc}") from None
    periods: list[Segment] = []
    start = 0.0
    for number, line in enumerate(lines, 1):
        length, count = _trace_line(path, number, line)
        if length is None or count is None:
            continue
        length /= speedup
        rate = count / length
        if duration is not None:
            if start >= duration - 1e-9:
                break
            length = min(length, duration - start)  # keep the share of the last period that fits
        periods.append(Segment(start, length, rate, rate))
        start += length
    if not periods:
        raise ScheduleError(f"--trace: {path} holds no `period,count` lines")
    speed = f" at {speedup:g}x" if speedup != 1 else ""
    return _checked(Schedule(f"trace {path.name}{speed}: {len(periods)} periods", tuple(periods)))


def _trace_line(path: Path, number: int, line: str) -> tuple[float | None, int | None]:
    """One trace line as (period seconds, count), or (None, None) for a line to skip."""
    text = line.strip()
    if not text or text.startswith("#") or (number == 1 and text.replace(" ", "").lower() == "period,count"):
        return None, None
    where = f"--trace: {path}:{number}"
    fields = [f.strip() for f in text.split(",")]
    if len(fields) != 2:
        raise ScheduleError(f"{where}: expected `period,count` (two fields), got {text!r}")
    try:
        length = float(fields[0])
    except ValueError:
        raise ScheduleError(f"{where}: period {fields[0]!r} is not a number of seconds") from None
    if not (math.isfinite(length) and length > 0):
        raise ScheduleError(f"{where}: period {fields[0]!r} must be > 0 seconds")
    try:
        count = int(fields[1])
    except ValueError:
        raise ScheduleError(f"{where}: count {fields[1]!r} is not a whole number") from None
    if count < 0:
        raise ScheduleError(f"{where}: count {count} must be >= 0")
    return length, count


def _check_duration(duration: float) -> None:
    if not (math.isfinite(duration) and duration > 0):
        raise ScheduleError(f"--duration: {duration!r} must be a number of seconds > 0")


def _checked(schedule: Schedule) -> Schedule:
    total = schedule.total
    if total > MAX_REQUESTS:
        raise ScheduleError(f"the schedule asks for {total:,} requests, more than {MAX_REQUESTS:,}; lower the rate")
    if total == 0:
        raise ScheduleError(f"the schedule ({schedule.label}) sends no request; raise the rate or the duration")
    return schedule
