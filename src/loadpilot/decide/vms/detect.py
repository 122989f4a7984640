"""Overload and underload detection on host utilisation: THR, IQR, MAD, LR, LRR (Beloglazov & Buyya) and
Sandpiper's k-of-n with a forecast.

Each detector looks at many hosts at once through a `HostSeries`: the requested utilisation now and the host's
utilisation history (newest first, as CloudSim keeps it). The statistics copy CloudSim 3.0.3 exactly (its IQR
indices, commons-math's median, a plain least-squares line through the 10 newest values), so a simulator using
them reproduces CloudSim's figures; with too little history each falls back to a static threshold of 0.7.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

Floats = NDArray[np.float64]
Bools = NDArray[np.bool_]
Ints = NDArray[np.intp]

HISTORY_WIDTH = 30  # values of history kept per VM (CloudSim's PowerVm.HISTORY_LENGTH)


@dataclass(frozen=True)
class HostSeries:
    """What a detector sees of k hosts: utilisation requested now, and history (k, L) newest first.

    `length` is each history's length once trailing (oldest) zeros are trimmed, `migration_intervals` how many
    decision intervals the host's longest migration takes (LR predicts that far ahead).
    """

    utilisation: Floats
    history: Floats
    length: Ints
    migration_intervals: Floats


def trimmed_length(history: Floats) -> Ints:
    """Length of each row once its trailing zeros are cut, as CloudSim's MathUtil.trimZeroTail (an all-zero row
    keeps one value)."""
    width = history.shape[1]
    if width and history.shape[0] and (history[:, -1] != 0).all():
        return np.full(history.shape[0], width, dtype=np.intp)
    nonzero = history != 0
    last = width - np.argmax(nonzero[:, ::-1], axis=1)
    return np.asarray(np.where(nonzero.any(axis=1), last, min(width, 1)), dtype=np.intp)


class Detector(Protocol):
    """Tells which hosts are overloaded; `values` is the number each verdict was made from (for the reason)."""

    @property
    def name(self) -> str:
        """The detector's short name."""
        ...

    @property
    def history_width(self) -> int:
        """How many of the newest history values verdicts depend on (0: none; callers build no more)."""
        ...

    def evaluate(self, series: HostSeries) -> tuple[Bools, Floats]:
        """Verdicts and the figure behind each (utilisation, threshold or prediction)."""
        ...

    def evaluate_one(
        self, utilisation: float, history: Sequence[float], length: int, migration_intervals: float = 0.0
    ) -> bool | None:
        """The verdict on one host (its history trimmed to `length`) without arrays, exactly as `evaluate` would
        give it; None, for any host, when only `evaluate` can (its figures depend on the hosts evaluated with it)."""
        ...

    def describe(self, value: float, utilisation: float) -> str:
        """A sentence saying why a host with this figure was found overloaded."""
        ...


@dataclass(frozen=True)
class StaticThreshold:
    """Overloaded when the requested utilisation exceeds a fixed threshold (THR)."""

    threshold: float
    name: str = "thr"
    history_width: int = 0

    def evaluate(self, series: HostSeries) -> tuple[Bools, Floats]:
        """A host is overloaded when utilisation > threshold."""
        return series.utilisation > self.threshold, np.full(series.utilisation.shape, self.threshold)

    def evaluate_one(
        self, utilisation: float, history: Sequence[float], length: int, migration_intervals: float = 0.0
    ) -> bool | None:
        """utilisation > threshold."""
        return utilisation > self.threshold

    def describe(self, value: float, utilisation: float) -> str:
        """Why: utilisation over the threshold."""
        return f"utilisation {utilisation:.2f} > threshold {value:.2f}"


def _uniform(length: Ints) -> int | None:
    """The common length when every row has the same one (the usual case), else None."""
    if length.size and (length == length[0]).all():
        return int(length[0])
    return None


def _sorted_prefix(history: Floats, length: Ints, n: int | None) -> Floats:
    """Each row's first `length` values sorted, the rest +inf (so the order statistics below stay per row); `n` is
    `_uniform(length)`, worked out once by the caller."""
    if n is not None:
        return np.sort(history[:, :n], axis=1)
    cols = np.arange(history.shape[1])
    padded = np.where(cols[None, :] < length[:, None], history, np.inf)
    return np.sort(padded, axis=1)


def _median_sorted(sorted_rows: Floats, length: Ints, n: int | None) -> Floats:
    """commons-math Percentile(50) of each sorted row's first `length` values (`n`: `_uniform(length)`)."""
    if n is not None:
        if n == 1:
            return np.asarray(sorted_rows[:, 0])
        middle = 0.5 * (n + 1)
        below = int(middle)
        lower = sorted_rows[:, below - 1]
        if middle == below:
            return np.asarray(lower)
        return np.asarray(lower + (middle - below) * (sorted_rows[:, below] - lower))
    pos = 0.5 * (length + 1)
    floor = np.floor(pos).astype(np.intp)
    d = pos - floor
    rows = np.arange(len(length))
    lower = sorted_rows[rows, np.maximum(floor - 1, 0)]
    upper = sorted_rows[rows, np.minimum(floor, sorted_rows.shape[1] - 1)]
    mid = lower + d * (upper - lower)
    result = np.where(pos < 1, sorted_rows[rows, 0], mid)
    return np.asarray(np.where(pos >= length, sorted_rows[rows, np.maximum(length - 1, 0)], result))


def _median_of_sorted(values: list[float]) -> float:
    """`_median_sorted` of one sorted row, on plain floats."""
    n = len(values)
    if n == 1:
        return values[0]
    middle = 0.5 * (n + 1)
    below = int(middle)
    lower = values[below - 1]
    if middle == below:
        return lower
    return lower + (middle - below) * (values[below] - lower)


def iqr(history: Floats, length: Ints) -> Floats:
    """Interquartile range per row as CloudSim's MathUtil.iqr: sorted[round(0.25(n+1))-1] .. round(0.75(n+1))-1."""
    return _iqr(history, length, _uniform(length))


def _iqr(history: Floats, length: Ints, n: int | None) -> Floats:
    """`iqr`, with `n` = `_uniform(length)` worked out by the caller."""
    s = _sorted_prefix(history, length, n)
    if n is not None:
        q1, q3 = math.floor(0.25 * (n + 1) + 0.5) - 1, math.floor(0.75 * (n + 1) + 0.5) - 1
        return np.asarray(s[:, q3] - s[:, q1])
    q1s = np.floor(0.25 * (length + 1) + 0.5).astype(np.intp) - 1
    q3s = np.floor(0.75 * (length + 1) + 0.5).astype(np.intp) - 1
    rows = np.arange(len(length))
    return np.asarray(s[rows, q3s] - s[rows, q1s])


def mad(history: Floats, length: Ints) -> Floats:
    """Median absolute deviation per row (commons-math medians), as CloudSim's MathUtil.mad."""
    return _mad(history, length, _uniform(length))


def _mad(history: Floats, length: Ints, n: int | None) -> Floats:
    """`mad`, with `n` = `_uniform(length)` worked out by the caller."""
    median = _median_sorted(_sorted_prefix(history, length, n), length, n)
    deviations = np.abs(median[:, None] - history)
    return _median_sorted(_sorted_prefix(deviations, length, n), length, n)


# Least squares through x = 1..10: prediction at x0 = a + b*x0 is linear in y; these are its pieces.
_LR_LENGTH = 10
_X = np.arange(1, _LR_LENGTH + 1, dtype=np.float64)
_X_MEAN = float(_X.mean())
_XC = _X - _X_MEAN
_SXX = float((_XC * _XC).sum())


_LR_MEAN = np.full(_LR_LENGTH, 1 / _LR_LENGTH)
_LR_SLOPE = (_XC / _SXX)[::-1].copy()  # applied to the newest-first values
_LR_MEAN_LIST = _LR_MEAN.tolist()
_LR_SLOPE_LIST = _LR_SLOPE.tolist()


def dot_rows(rows: Floats, weights: Floats) -> Floats:
    """Each row's dot product with `weights`, the products summed one by one from the first (an accumulation is
    sequential by definition): every row gets the same operations whatever rows come with it (a matrix product's
    rounding depends on them), and `dot_one` gives a row alone the same bits. So a host's verdict is the same
    told alone or among many."""
    products = rows[:, : len(weights)] * weights
    return np.asarray(np.add.accumulate(products, axis=1)[:, -1], dtype=np.float64)


def dot_one(values: Sequence[float], weights: Sequence[float]) -> float:
    """`dot_rows` for one row of plain floats, operation for operation."""
    total = values[0] * weights[0]
    for j in range(1, len(weights)):
        total += values[j] * weights[j]
    return total


def lr_prediction(history: Floats, migration_intervals: Floats) -> Floats:
    """Utilisation predicted by a least-squares line through the 10 newest values, `migration_intervals` steps
    past the newest (CloudSim's LR: x = 1..10 oldest to newest, predicted at x = 10 + intervals)."""
    mean = dot_rows(history, _LR_MEAN)
    slope = dot_rows(history, _LR_SLOPE)
    return np.asarray(mean + slope * (_LR_LENGTH + migration_intervals - _X_MEAN))


def lr_prediction_one(history: Sequence[float], migration_intervals: float) -> float:
    """`lr_prediction` for one host's history of plain floats, operation for operation."""
    mean = dot_one(history, _LR_MEAN_LIST)
    slope = dot_one(history, _LR_SLOPE_LIST)
    return mean + slope * (_LR_LENGTH + migration_intervals - _X_MEAN)


@dataclass(frozen=True)
class AdaptiveThreshold:
    """IQR or MAD: the threshold is 1 - s * spread of the host's history; overloaded when utilisation exceeds it.

    With fewer than `min_history` values the static threshold `fallback` decides (CloudSim: 12 and 0.7).
    """

    spread: str  # "iqr" or "mad"
    safety: float
    fallback: float = 0.7
    min_history: int = 12
    history_width: int = HISTORY_WIDTH

    @property
    def name(self) -> str:
        """The detector's short name."""
        return self.spread

    def evaluate(self, series: HostSeries) -> tuple[Bools, Floats]:
        """Threshold per host from the spread of its history; fallback threshold where history is short."""
        f = _iqr if self.spread == "iqr" else _mad
        n = _uniform(series.length)
        if n is not None and n >= self.min_history:  # the usual case: every host has as much history, enough
            thresholds = 1 - self.safety * f(series.history, series.length, n)
            return series.utilisation > thresholds, thresholds
        thresholds = np.full(series.utilisation.shape, self.fallback)
        enough = series.length >= self.min_history
        if enough.any():
            length = series.length[enough]
            thresholds[enough] = 1 - self.safety * f(series.history[enough], length, _uniform(length))
        return series.utilisation > thresholds, thresholds

    def evaluate_one(
        self, utilisation: float, history: Sequence[float], length: int, migration_intervals: float = 0.0
    ) -> bool | None:
        """The same statistics on plain floats (order statistics and IEEE arithmetic: the same values)."""
        if length < self.min_history:
            return utilisation > self.fallback
        values = sorted(history[:length])
        if self.spread == "iqr":
            spread = (
                values[math.floor(0.75 * (length + 1) + 0.5) - 1] - values[math.floor(0.25 * (length + 1) + 0.5) - 1]
            )
        else:
            median = _median_of_sorted(values)
            spread = _median_of_sorted(sorted(abs(median - x) for x in history[:length]))
        return utilisation > 1 - self.safety * spread

    def describe(self, value: float, utilisation: float) -> str:
        """Why: utilisation over the adaptive threshold."""
        return f"utilisation {utilisation:.2f} > {self.spread} threshold {value:.2f} (1 - {self.safety} x spread)"


@dataclass(frozen=True)
class LocalRegression:
    """LR (and LRR, identical in CloudSim 3.0.3): overloaded when safety x predicted utilisation >= 1."""

    safety: float
    fallback: float = 0.7
    robust: bool = False
    history_width: int = 10

    @property
    def name(self) -> str:
        """The detector's short name."""
        return "lrr" if self.robust else "lr"

    def evaluate(self, series: HostSeries) -> tuple[Bools, Floats]:
        """Prediction per host; fallback threshold where fewer than 10 values are known."""
        enough = series.length >= _LR_LENGTH
        if enough.all():
            predicted = self.safety * lr_prediction(series.history, series.migration_intervals)
            return predicted >= 1, predicted
        over = series.utilisation > self.fallback
        values = np.full(series.utilisation.shape, np.nan)
        if enough.any():
            predicted = self.safety * lr_prediction(series.history[enough], series.migration_intervals[enough])
            over[enough] = predicted >= 1
            values[enough] = predicted
        return over, values

    def evaluate_one(
        self, utilisation: float, history: Sequence[float], length: int, migration_intervals: float = 0.0
    ) -> bool | None:
        """The same prediction on plain floats, operation for operation."""
        if length < _LR_LENGTH:
            return utilisation > self.fallback
        return self.safety * lr_prediction_one(history, migration_intervals) >= 1

    def describe(self, value: float, utilisation: float) -> str:
        """Why: the regression's prediction, or the fallback threshold."""
        if math.isnan(value):
            return f"utilisation {utilisation:.2f} > {self.fallback} (short history)"
        return f"{self.name}: {self.safety} x predicted utilisation = {value:.2f} >= 1"


@dataclass(frozen=True)
class KOfN:
    """Sandpiper: overloaded when k of the last n observations exceed the threshold and the forecast does too.

    The forecast is an exponentially weighted moving average of the history (weight `alpha` on the newest),
    plus its trend, one step ahead.
    """

    threshold: float
    k: int = 3
    n: int = 5
    alpha: float = 0.5
    name: str = "kofn"
    history_width: int = HISTORY_WIDTH

    def evaluate(self, series: HostSeries) -> tuple[Bools, Floats]:
        """k of n recent values over the threshold, and the forecast over it too; the forecast is returned where
        the k of n hold (nan elsewhere)."""
        width = min(self.n, series.history.shape[1])
        recent = series.history[:, :width]
        valid = np.arange(width)[None, :] < series.length[:, None]
        persistent = ((recent > self.threshold) & valid).sum(axis=1) >= self.k
        forecast = np.full(len(persistent), np.nan)  # only where it decides: the others are not overloaded anyway
        if persistent.any():
            forecast[persistent] = ewma_forecast(series.history[persistent], series.length[persistent], self.alpha)
        return persistent & (forecast > self.threshold), forecast

    def evaluate_one(
        self, utilisation: float, history: Sequence[float], length: int, migration_intervals: float = 0.0
    ) -> bool | None:
        """The same count and forecast on plain floats, operation for operation."""
        recent = history[: min(self.n, len(history), length)]
        if sum(x > self.threshold for x in recent) < self.k:
            return False
        weights = _holt_weights(length, len(history), self.alpha, 1.0)
        return dot_one(history, weights.tolist()) > self.threshold

    def describe(self, value: float, utilisation: float) -> str:
        """Why: persistent and forecast overload."""
        return f"{self.k} of the last {self.n} values > {self.threshold:.2f} and forecast {value:.2f} > it"


def ewma_forecast(history: Floats, length: Ints, alpha: float, horizon: float = 1.0) -> Floats:
    """One-step-ahead forecast per row: Holt's linear smoothing over the history (oldest to newest). The
    smoothing is linear in the values, so each row is a dot product (`dot_rows`) with the weights of its length."""
    common = _uniform(length)
    if common is not None:  # the usual case: the same weights for all rows
        return dot_rows(history, _holt_weights(common, history.shape[1], alpha, horizon))
    out = np.zeros(history.shape[0])
    for n in np.unique(length).tolist():
        rows = length == n
        out[rows] = dot_rows(history[rows], _holt_weights(int(n), history.shape[1], alpha, horizon))
    return out


@lru_cache(maxsize=256)
def _holt_weights(length: int, width: int, alpha: float, horizon: float) -> Floats:
    """What each history value weighs in Holt's forecast of a row `length` values long."""
    return _holt(np.eye(width), np.full(width, length), alpha, horizon)


def _holt(history: Floats, length: Ints, alpha: float, horizon: float) -> Floats:
    """Holt's linear smoothing, row by row: level starts at the oldest value, trend at 0."""
    k, width = history.shape
    level = np.zeros(k)
    trend = np.zeros(k)
    started = np.zeros(k, dtype=bool)
    for col in range(width - 1, -1, -1):
        present = col < length
        value = history[:, col]
        first = present & ~started
        level = np.where(first, value, level)
        update = present & started
        new_level = alpha * value + (1 - alpha) * (level + trend)
        trend = np.where(update, alpha * (new_level - level) + (1 - alpha) * trend, trend)
        level = np.where(update, new_level, level)
        started |= present
    return np.asarray(level + horizon * trend)


def make_detector(name: str, parameter: float) -> Detector:
    """A detector from its CloudSim name ("thr", "iqr", "mad", "lr", "lrr", "kofn") and parameter."""
    if name == "thr":
        return StaticThreshold(parameter)
    if name in ("iqr", "mad"):
        return AdaptiveThreshold(name, parameter)
    if name in ("lr", "lrr"):
        return LocalRegression(parameter, robust=name == "lrr")
    if name == "kofn":
        return KOfN(parameter)
    raise ValueError(f"unknown overload detector {name!r} (known: thr, iqr, mad, lr, lrr, kofn)")
