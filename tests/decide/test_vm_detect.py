"""Overload detectors on hand-made series, computed the way CloudSim 3.0.3 computes them."""

from __future__ import annotations

import numpy as np
import pytest

from loadpilot.decide.vms.detect import (
    AdaptiveThreshold,
    HostSeries,
    KOfN,
    LocalRegression,
    StaticThreshold,
    iqr,
    lr_prediction,
    mad,
    make_detector,
    trimmed_length,
)
from loadpilot.decide.vms.power import HP_G4, HP_G5


def series(util: float, history: list[float], intervals: float = 1.0) -> HostSeries:
    h = np.array([history + [0.0] * (30 - len(history))])
    return HostSeries(np.array([util]), h, trimmed_length(h), np.array([intervals]))


def test_static_threshold_is_strictly_above() -> None:
    d = StaticThreshold(0.8)
    assert not d.evaluate(series(0.8, []))[0][0]
    assert d.evaluate(series(0.8000001, []))[0][0]


def test_trimmed_length_cuts_trailing_zeros_and_keeps_one_of_all_zero() -> None:
    h = np.array([[0.5, 0.0, 0.3, 0.0, 0.0], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1.0]])
    assert trimmed_length(h).tolist() == [3, 1, 5]


def test_iqr_uses_cloudsims_rounded_indices() -> None:
    values = [0.1, 0.9, 0.3, 0.7, 0.5, 0.2, 0.8, 0.4, 0.6, 0.05, 0.95, 0.15]  # n = 12
    s = sorted(values)
    q1, q3 = round(0.25 * 13 + 1e-9) - 1, int(0.75 * 13 + 0.5) - 1  # Java Math.round: 3.25 -> 3, 9.75 -> 10
    expected = s[q3] - s[q1]
    got = iqr(np.array([values]), np.array([12]))[0]
    assert got == pytest.approx(expected)


def test_mad_is_the_median_of_absolute_deviations() -> None:
    values = [0.2, 0.4, 0.4, 0.5, 0.9, 0.1, 0.3, 0.3, 0.6, 0.7, 0.2, 0.8, 0.5]
    median = float(np.median(values))
    expected = float(np.median(np.abs(np.array(values) - median)))
    assert mad(np.array([values]), np.array([13]))[0] == pytest.approx(expected)


def test_adaptive_thresholds_fall_back_to_0_7_with_fewer_than_12_values() -> None:
    d = AdaptiveThreshold("iqr", 1.5)
    over, thresholds = d.evaluate(series(0.75, [0.5] * 11))
    assert over[0] and thresholds[0] == 0.7
    over, thresholds = d.evaluate(series(0.75, [0.5] * 12))  # IQR 0: threshold 1
    assert not over[0] and thresholds[0] == pytest.approx(1.0)


def test_mad_threshold_is_one_minus_s_times_mad() -> None:
    history = [0.5, 0.6] * 6
    d = AdaptiveThreshold("mad", 2.5)
    _, thresholds = d.evaluate(series(0.5, history))
    assert thresholds[0] == pytest.approx(1 - 2.5 * 0.05)


def test_lr_fits_the_ten_newest_values_and_predicts_one_migration_ahead() -> None:
    newest_first = [0.9 - 0.05 * i for i in range(12)]  # rising by 0.05 per interval, newest 0.9
    predicted = lr_prediction(np.array([newest_first + [0.0] * 18]), np.array([1.0]))[0]
    assert predicted == pytest.approx(0.95)
    x = np.arange(1, 11)
    y = np.array(newest_first[:10])[::-1]
    b, a = np.polyfit(x, y, 1)
    assert predicted == pytest.approx(a + b * 11)


def test_lr_is_overloaded_when_safety_times_prediction_reaches_one() -> None:
    d = LocalRegression(1.2)
    flat = [0.84] * 10
    assert d.evaluate(series(0.1, flat))[0][0]  # 1.2 x 0.84 = 1.008
    assert not d.evaluate(series(0.99, [0.8] * 10))[0][0]  # 0.96: the current utilisation is not used
    assert d.evaluate(series(0.75, [0.8] * 9))[0][0]  # short history: fallback 0.7


def test_lrr_behaves_as_lr_as_in_cloudsim_3_0_3() -> None:
    s = series(0.5, [0.3 + 0.01 * i for i in range(20)])
    lr, lrr = make_detector("lr", 1.2), make_detector("lrr", 1.2)
    assert lr.evaluate(s)[1][0] == lrr.evaluate(s)[1][0]


def test_k_of_n_needs_persistence_and_a_forecast_over_the_threshold() -> None:
    d = KOfN(0.8, k=3, n=5)
    assert d.evaluate(series(0.9, [0.95, 0.9, 0.85, 0.5, 0.5, 0.5]))[0][0]
    assert not d.evaluate(series(0.9, [0.95, 0.5, 0.5, 0.5, 0.5]))[0][0]  # one spike
    assert not d.evaluate(series(0.9, [0.81, 0.85, 0.9, 0.95, 0.99]))[0][0]  # falling: forecast below


def test_power_tables_interpolate_between_ten_percent_points() -> None:
    assert HP_G4.power(0.0) == 86
    assert HP_G4.power(1.0) == 117
    assert HP_G5.power(0.55) == pytest.approx(118.5)
    assert HP_G5.power(1.5) == 135


def test_holt_forecast_by_weights_equals_the_recursion() -> None:
    from loadpilot.decide.vms.detect import _holt, ewma_forecast

    rng = np.random.default_rng(0)
    history = rng.uniform(0, 1, (50, 30))
    length = rng.integers(1, 31, 50)
    assert np.allclose(ewma_forecast(history, length, 0.5), _holt(history, length, 0.5, 1.0))


@pytest.mark.parametrize(
    "detector",
    [StaticThreshold(0.8), AdaptiveThreshold("iqr", 1.5), AdaptiveThreshold("mad", 2.5)],
    ids=["thr", "iqr", "mad"],
)
def test_one_hosts_verdict_alone_is_exactly_the_one_among_many(detector: StaticThreshold | AdaptiveThreshold) -> None:
    rng = np.random.default_rng(3)
    history = np.round(rng.uniform(0, 1, (400, 30)), 2)  # ties, as in the PlanetLab percentages
    history[rng.random((400, 30)) < 0.1] = 0.0
    history[:100, 20:] = 0.0  # short histories: some under 12 values, lengths differ between hosts
    history[100:110, 5:] = 0.0
    length = trimmed_length(history)
    utilisation = rng.uniform(0.5, 1.1, 400)
    verdicts, thresholds = detector.evaluate(HostSeries(utilisation, history, length, np.ones(400)))
    for verdict, threshold, u, row, n in zip(verdicts, thresholds, utilisation, history, length, strict=True):
        assert detector.evaluate_one(float(u), row.tolist(), int(n)) == bool(verdict)
        assert detector.evaluate_one(float(threshold), row.tolist(), int(n)) is False  # at the threshold: not over
    for k in (1, 7, 30):  # the same host among others gets the same verdict
        some = HostSeries(utilisation[:k], history[:k], length[:k], np.ones(k))
        assert detector.evaluate(some)[0].tolist() == verdicts[:k].tolist()


@pytest.mark.parametrize(
    "detector", [LocalRegression(1.2), KOfN(0.8), KOfN(0.5, k=2, n=3)], ids=["lr", "kofn", "kofn-2-3"]
)
def test_forecasting_detectors_tell_one_host_alone_as_among_many(detector: LocalRegression | KOfN) -> None:
    rng = np.random.default_rng(5)
    history = rng.uniform(0.3, 1.0, (400, 30))  # values near every threshold, so verdicts go both ways
    history[:100, 20:] = 0.0
    history[100:120, 6:] = 0.0  # LR's fallback below 10 values
    length = trimmed_length(history)
    utilisation = rng.uniform(0.5, 1.1, 400)
    intervals = rng.integers(0, 4, 400).astype(np.float64)
    verdicts, _ = detector.evaluate(HostSeries(utilisation, history, length, intervals))
    assert 20 < verdicts.sum() < 380
    for verdict, u, row, n, m in zip(verdicts, utilisation, history, length, intervals, strict=True):
        assert detector.evaluate_one(float(u), row.tolist(), int(n), float(m)) == bool(verdict)
    for k in (1, 7, 30):  # among others, and with other rows beside it, the same verdict
        some = HostSeries(utilisation[-k:], history[-k:], length[-k:], intervals[-k:])
        assert detector.evaluate(some)[0].tolist() == verdicts[-k:].tolist()


def test_power_curves_price_many_hosts_as_the_tables_price_one() -> None:
    from loadpilot.decide.vms.power import PowerCurves, table_matrix

    curves = PowerCurves(table_matrix([HP_G4, HP_G5]))
    u = np.concatenate([np.linspace(-0.2, 1.2, 281), [0.55, 0.1, 0.3, 0.7]])
    kind = np.arange(len(u)) % 2
    watts = curves.power(kind, u)
    assert watts.tolist() == [(HP_G4, HP_G5)[k].power(float(x)) for k, x in zip(kind, u, strict=True)]
    inside = (u >= 0) & (u <= 1)
    assert curves.power_from(kind[inside] * curves.width, u[inside]).tolist() == watts[inside].tolist()
