"""Holt's linear trend (double exponential smoothing) for observations at uneven times, with its noise.

The level follows the observations, the trend is their smoothed slope per second; the forecast h seconds ahead
is level + trend x h. The noise is the smoothed size of the one-step forecast errors. The trend, an exponential
average (weight beta) of level changes that carry that noise, has a standard error of about
sqrt(beta / (2 - beta)) x noise per interval; `rise` counts only the slope beyond one standard error, so a
slope that noise alone could make buys nothing. Pure: the state is a value, updated into a new one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# The level moves halfway to each new observation: it follows a rise within two evaluations.
LEVEL_ALPHA = 0.5
# The slope is averaged over about three evaluations, so a single noisy reading does not make a trend.
TREND_BETA = 0.3
# The noise is the mean absolute one-step error over about five evaluations.
NOISE_GAMMA = 0.2


@dataclass(frozen=True, slots=True)
class Holt:
    """A smoothed level, its slope per second, the typical one-step error, and the last observation's time."""

    level: float
    trend: float
    at: float
    noise: float = 0.0
    step_s: float = 0.0  # the last interval between observations

    def forecast(self, horizon_s: float) -> float:
        """The value expected `horizon_s` seconds after the last observation."""
        return self.level + self.trend * horizon_s

    def rise(self, horizon_s: float) -> float:
        """How much the value is expected to grow over `horizon_s`, counting only the slope beyond one
        standard error (0 when flat, falling, or no steeper than noise could make it)."""
        if self.step_s <= 0:
            return 0.0
        standard_error = math.sqrt(TREND_BETA / (2 - TREND_BETA)) * self.noise / self.step_s
        return max(0.0, self.trend - standard_error) * horizon_s


def observe(
    previous: Holt | None,
    value: float,
    at: float,
    alpha: float = LEVEL_ALPHA,
    beta: float = TREND_BETA,
    gamma: float = NOISE_GAMMA,
) -> Holt:
    """Fold one observation into the smoothing; the first one starts it flat, one at the same time replaces
    nothing (the same reading seen twice is not new evidence)."""
    if previous is None:
        return Holt(value, 0.0, at)
    dt = at - previous.at
    if dt <= 0:
        return previous
    expected = previous.level + previous.trend * dt
    level = alpha * value + (1 - alpha) * expected
    trend = beta * (level - previous.level) / dt + (1 - beta) * previous.trend
    error = abs(value - expected)
    noise = error if previous.step_s == 0 else gamma * error + (1 - gamma) * previous.noise
    return Holt(level, trend, at, noise, dt)
