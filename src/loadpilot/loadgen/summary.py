"""How well a run held its band: mean, spread, error from the band's centre, time in band, settling time.

Readings are utilisations (fractions 0..1 of the whole machine), each the average over an interval `dt` that ends
at `t` seconds after the start. Definitions, used by `loadpilot loadgen cpu` and by the benchmark alike:

- in band: share of the run's time whose readings lie inside [low, high] (bounds included).
- settling time: seconds from the start (or from `since`, e.g. when a disturbance began) until the end of the
  first reading of the first stretch of consecutive in-band readings that lasts at least `hold_s` (3 s). A
  reading is only known at the end of its interval, so the shortest possible settling time is one interval.
  A run that never holds its band that long has no settling time (None).
- after settling: the readings from that first in-band reading on; MAE (mean absolute error) is measured from
  the band's centre over them, as is the share in band after settling.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

HOLD_S = 3.0
EPSILON = 1e-9


@dataclass(frozen=True)
class Band:
    """The utilisation band to hold, as fractions 0..1: [low, high]."""

    low: float
    high: float

    @property
    def centre(self) -> float:
        """The middle of the band: what the generator aims at."""
        return (self.low + self.high) / 2

    def contains(self, value: float) -> bool:
        """Whether `value` lies inside the band, bounds included."""
        return self.low - EPSILON <= value <= self.high + EPSILON


@dataclass(frozen=True)
class Reading:
    """The machine's total utilisation (and the generator's own share and duty) over (t - dt, t]."""

    t: float
    dt: float
    total: float
    own: float = 0.0
    duty: float = 0.0


@dataclass(frozen=True)
class Summary:
    """A run's statistics; utilisations as fractions 0..1, times in seconds; None where undefined."""

    seconds: float
    readings: int
    mean: float | None
    p5: float | None
    p95: float | None
    own_mean: float | None
    in_band: float | None
    settling_s: float | None
    in_band_settled: float | None
    mae_settled: float | None
    mae: float | None

    def as_dict(self) -> dict[str, Any]:
        """The summary as a JSON-ready dict."""
        return asdict(self)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) of `values`, interpolated linearly between closest ranks."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _share_in_band(readings: Sequence[Reading], band: Band) -> float | None:
    time = sum(r.dt for r in readings)
    if time <= 0:
        return None
    return sum(r.dt for r in readings if band.contains(r.total)) / time


def _mae(readings: Sequence[Reading], band: Band) -> float | None:
    time = sum(r.dt for r in readings)
    if time <= 0:
        return None
    return sum(r.dt * abs(r.total - band.centre) for r in readings) / time


def settled_from(readings: Sequence[Reading], band: Band, hold_s: float = HOLD_S, since: float = 0.0) -> int | None:
    """Index of the first reading (starting at or after `since`) of the first in-band stretch lasting hold_s."""
    start: int | None = None
    for i, r in enumerate(readings):
        if r.t - r.dt < since - EPSILON:
            continue
        if not band.contains(r.total):
            start = None
            continue
        if start is None:
            start = i
        first = readings[start]
        if r.t - (first.t - first.dt) >= hold_s - EPSILON:
            return start
    return None


def settling_time(readings: Sequence[Reading], band: Band, hold_s: float = HOLD_S, since: float = 0.0) -> float | None:
    """Seconds from `since` until the band was reached and then held for hold_s (see the module's definition)."""
    index = settled_from(readings, band, hold_s, since)
    return None if index is None else readings[index].t - since


def summarise(readings: Sequence[Reading], band: Band, hold_s: float = HOLD_S) -> Summary:
    """The statistics of a run's readings against its band."""
    totals = [r.total for r in readings]
    time = sum(r.dt for r in readings)
    index = settled_from(readings, band, hold_s)
    settled = readings[index:] if index is not None else []

    def weighted_mean(values: Sequence[float]) -> float | None:
        return sum(r.dt * v for r, v in zip(readings, values, strict=True)) / time if time > 0 else None

    return Summary(
        seconds=readings[-1].t if readings else 0.0,
        readings=len(readings),
        mean=weighted_mean(totals),
        p5=percentile(totals, 5) if totals else None,
        p95=percentile(totals, 95) if totals else None,
        own_mean=weighted_mean([r.own for r in readings]),
        in_band=_share_in_band(readings, band),
        settling_s=readings[index].t if index is not None else None,
        in_band_settled=_share_in_band(settled, band),
        mae_settled=_mae(settled, band),
        mae=_mae(readings, band),
    )
