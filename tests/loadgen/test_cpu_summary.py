"""Run statistics: percentiles, time in band, settling time, error after settling, as the module defines them."""

from __future__ import annotations

import pytest

from loadpilot.loadgen.summary import Band, Reading, percentile, settling_time, summarise

BAND = Band(0.45, 0.55)


def series(totals: list[float], dt: float = 1.0) -> list[Reading]:
    return [Reading(t=dt * (i + 1), dt=dt, total=v, own=v / 2, duty=0.5) for i, v in enumerate(totals)]


def test_percentile_interpolates_between_ranks() -> None:
    values = [float(v) for v in range(1, 11)]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 10.0
    assert percentile(values, 50) == pytest.approx(5.5)
    assert percentile(values, 5) == pytest.approx(1.45)
    assert percentile([3.0], 95) == 3.0
    with pytest.raises(ValueError):
        percentile([], 50)


def test_band_centre_and_bounds() -> None:
    assert BAND.centre == pytest.approx(0.5)
    assert BAND.contains(0.45) and BAND.contains(0.55) and not BAND.contains(0.5501)


def test_settling_is_the_end_of_the_first_reading_of_the_first_held_stretch() -> None:
    # In band at 2 s but only for 2 readings; then from 5 s on for good.
    readings = series([0.1, 0.5, 0.5, 0.9, 0.5, 0.5, 0.5, 0.5, 0.6, 0.5])
    assert settling_time(readings, BAND) == pytest.approx(5.0)
    assert settling_time(readings, BAND, hold_s=2.0) == pytest.approx(2.0)
    assert settling_time(readings, BAND, since=4.0) == pytest.approx(1.0)  # measured from the disturbance
    assert settling_time(series([0.5, 0.5]), BAND) is None  # never held for 3 s
    assert settling_time(series([0.5] * 20, dt=0.2), BAND) == pytest.approx(0.2)  # one reading at best


def test_summary_of_a_run() -> None:
    readings = series([0.1, 0.3, 0.52, 0.48, 0.5, 0.56, 0.5, 0.5])
    summary = summarise(readings, BAND)
    assert summary.readings == 8 and summary.seconds == pytest.approx(8.0)
    assert summary.mean == pytest.approx(sum(r.total for r in readings) / 8)
    assert summary.own_mean == pytest.approx(summary.mean / 2)
    assert summary.settling_s == pytest.approx(3.0)
    assert summary.in_band == pytest.approx(5 / 8)
    assert summary.in_band_settled == pytest.approx(5 / 6)
    assert summary.mae_settled == pytest.approx((0.02 + 0.02 + 0 + 0.06 + 0 + 0) / 6)
    assert summary.p5 is not None and summary.p95 is not None and summary.p5 < 0.2 and summary.p95 > 0.54
    as_dict = summary.as_dict()
    assert set(as_dict) >= {"mean", "p5", "p95", "mae_settled", "in_band", "settling_s"}


def test_share_in_band_is_weighted_by_time() -> None:
    readings = [Reading(1.0, 1.0, 0.5), Reading(4.0, 3.0, 0.9)]
    assert summarise(readings, BAND).in_band == pytest.approx(0.25)


def test_summary_of_a_run_that_never_settles_or_never_read() -> None:
    summary = summarise(series([0.9, 0.9]), BAND)
    assert summary.settling_s is None and summary.mae_settled is None and summary.in_band_settled is None
    assert summary.mae == pytest.approx(0.4)
    empty = summarise([], BAND)
    assert empty.readings == 0 and empty.mean is None and empty.p5 is None and empty.in_band is None
