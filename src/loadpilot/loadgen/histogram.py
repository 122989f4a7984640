"""A log-linear latency histogram (HdrHistogram's layout): fixed memory per decade, ~0.4 % error, mergeable.

Values are durations in seconds, kept as whole microseconds. Below 256 µs every microsecond has its own bucket;
above, every power of two is split into 128 equal buckets, so a bucket is never wider than 1/128 of the values
it holds and a reported percentile (the middle of its bucket) is within 1/256 (0.4 %) of a value that was
recorded. Recording is a few integer operations, which matters at thousands of requests per second, and two
histograms add up exactly, so per-worker or per-interval histograms merge into one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

SUB_BITS = 7  # 2**7 = 128 buckets per power of two
SUB_COUNT = 1 << SUB_BITS
UNIT_S = 1e-6  # values are counted in whole microseconds


def bucket_of(micros: int) -> int:
    """The index of the bucket that holds `micros` (>= 0); indexes grow with the value."""
    shift = max(0, micros.bit_length() - SUB_BITS - 1)
    return (shift << SUB_BITS) + (micros >> shift)


def bucket_bounds(index: int) -> tuple[int, int]:
    """The values (microseconds) bucket `index` holds: [low, high)."""
    if index < 2 * SUB_COUNT:
        return index, index + 1
    shift = (index >> SUB_BITS) - 1
    low = (index - (shift << SUB_BITS)) << shift
    return low, low + (1 << shift)


@dataclass(frozen=True)
class Summary:
    """What a histogram says about its values, in seconds; zeros when it is empty."""

    count: int
    mean: float
    min: float
    p50: float
    p90: float
    p95: float
    p99: float
    p999: float
    max: float


class Histogram:
    """Counts of durations in log-linear buckets, with the exact count, sum, min and max beside them."""

    __slots__ = ("_counts", "count", "max_us", "min_us", "total_us")

    def __init__(self) -> None:
        self._counts: dict[int, int] = {}
        self.count = 0
        self.total_us = 0
        self.min_us = 0
        self.max_us = 0

    def record(self, seconds: float) -> None:
        """Count one duration (negative ones count as zero: a clock cannot run backwards by much)."""
        micros = round(seconds * 1_000_000) if seconds > 0 else 0
        index = bucket_of(micros)
        counts = self._counts
        counts[index] = counts.get(index, 0) + 1
        if self.count == 0 or micros < self.min_us:
            self.min_us = micros
        if micros > self.max_us:
            self.max_us = micros
        self.count += 1
        self.total_us += micros

    def merge(self, other: Histogram) -> None:
        """Add `other`'s values to this histogram (as if each had been recorded here)."""
        if not other.count:
            return
        for index, n in other._counts.items():
            self._counts[index] = self._counts.get(index, 0) + n
        self.min_us = other.min_us if self.count == 0 else min(self.min_us, other.min_us)
        self.max_us = max(self.max_us, other.max_us)
        self.count += other.count
        self.total_us += other.total_us

    def percentile(self, q: float) -> float:
        """The value (seconds) at or below which a fraction `q` (0..1) of the values lie; 0.0 when empty.

        Nearest rank: the value of rank ceil(q * count); q = 0 gives the minimum, q = 1 the maximum (both exact).
        """
        return self.percentiles([q])[0]

    def percentiles(self, qs: Sequence[float]) -> list[float]:
        """percentile() for each of `qs`, in one pass over the buckets."""
        if any(not 0.0 <= q <= 1.0 for q in qs):
            raise ValueError(f"percentiles must be fractions in 0..1, got {list(qs)}")
        if not self.count:
            return [0.0] * len(qs)
        ranks = sorted((max(1, math.ceil(q * self.count)), i) for i, q in enumerate(qs))
        out = [0.0] * len(qs)
        seen, at = 0, 0
        for index in sorted(self._counts):
            seen += self._counts[index]
            while at < len(ranks) and ranks[at][0] <= seen:
                out[ranks[at][1]] = self._value_in(index) * UNIT_S
                at += 1
            if at == len(ranks):
                break
        return out

    def _value_in(self, index: int) -> float:
        """The value reported for a bucket: its middle, kept within the exact min and max."""
        low, high = bucket_bounds(index)
        middle = low if high - low == 1 else (low + high - 1) / 2
        return min(max(middle, self.min_us), self.max_us)

    def summary(self) -> Summary:
        """Count, mean, min, p50, p90, p95, p99, p99.9 and max, in seconds."""
        p50, p90, p95, p99, p999 = self.percentiles([0.5, 0.9, 0.95, 0.99, 0.999])
        mean = self.total_us / self.count * UNIT_S if self.count else 0.0
        return Summary(self.count, mean, self.min_us * UNIT_S, p50, p90, p95, p99, p999, self.max_us * UNIT_S)

    @classmethod
    def of(cls, values: Iterable[float]) -> Histogram:
        """A histogram holding `values` (seconds)."""
        hist = cls()
        for value in values:
            hist.record(value)
        return hist
