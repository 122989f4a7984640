"""The latency histogram: buckets cover every value once, percentiles within 1 % of exact ones, merging adds up."""

from __future__ import annotations

import math
import random

import pytest

from loadpilot.loadgen.histogram import Histogram, bucket_bounds, bucket_of


def exact_percentile(values: list[float], q: float) -> float:
    """Nearest rank: the value of rank ceil(q * n) among the sorted values (the minimum for q = 0)."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def test_every_value_falls_inside_its_bucket_and_buckets_grow_with_values() -> None:
    previous = -1
    for micros in sorted({*range(0, 5000), *(int(1.37**k) for k in range(20, 70))}):
        index = bucket_of(micros)
        low, high = bucket_bounds(index)
        assert low <= micros < high
        assert index >= previous
        previous = index
        assert (high - low) <= max(1, low / 128)  # never wider than 1/128 of its values


@pytest.mark.parametrize(
    "draw",
    [
        lambda r: r.lognormvariate(math.log(0.005), 1.0),  # milliseconds with a long tail
        lambda r: r.uniform(0.001, 2.0),
        lambda r: r.expovariate(1 / 0.02) + 0.0005,
        lambda r: 0.2 + r.paretovariate(1.5) / 10,  # a slow server's heavy tail
    ],
)
def test_percentiles_are_within_one_percent_of_the_exact_ones(draw: object) -> None:
    rng = random.Random(7)
    values = [draw(rng) for _ in range(50_000)]  # type: ignore[operator]
    hist = Histogram.of(values)
    for q in [0.0, 0.1, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0]:
        exact = exact_percentile(values, q)
        assert hist.percentile(q) == pytest.approx(exact, rel=0.01, abs=1e-6), q
    summary = hist.summary()
    assert summary.count == len(values)
    assert summary.max == pytest.approx(max(values), abs=1e-6)
    assert summary.min == pytest.approx(min(values), abs=1e-6)
    assert summary.mean == pytest.approx(sum(values) / len(values), rel=1e-4)


def test_merged_histograms_equal_one_that_recorded_everything() -> None:
    rng = random.Random(3)
    parts = [[rng.lognormvariate(-5, 1.5) for _ in range(3000)] for _ in range(4)]
    merged = Histogram()
    for part in parts:
        merged.merge(Histogram.of(part))
    merged.merge(Histogram())  # an empty one changes nothing
    whole = Histogram.of(v for part in parts for v in part)
    assert merged.summary() == whole.summary()


def test_an_empty_histogram_reports_zeros_and_bad_fractions_are_refused() -> None:
    hist = Histogram()
    assert hist.summary().p99 == 0.0
    assert hist.percentile(0.5) == 0.0
    with pytest.raises(ValueError, match="fractions"):
        hist.percentile(99)
    hist.record(-0.5)  # a clock step backwards counts as zero
    assert hist.summary().max == 0.0
