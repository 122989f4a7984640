"""Predictive scaling (ours): size the pool for the demand expected when new workers would be ready.

1. Demand now, in the metric's units summed over the pool (metric per worker x ready workers). A saturated pool
   under-reports it (its CPU tops out, it completes only what it can), so requests piling up are added back:
   the growth of requests in flight per second, converted with the pool's cost per request (load / rps).
2. Holt's linear trend over those demands, one per evaluation, forecast `horizon_s` ahead (a worker's start-up
   time plus one interval: the earliest a worker asked for now can serve). Only a rise is used, and only the
   part of its slope beyond the demand's own noise (forecast.Holt.rise), so noise does not buy workers.
3. Size for the larger of demand now and the forecast, at the target per worker, when that exceeds the current
   size by more than the tolerance; and never below what target tracking asks.
"""

from __future__ import annotations

from dataclasses import dataclass

from loadpilot.config import ScalingCheck
from loadpilot.decide.scaling import target
from loadpilot.decide.scaling.forecast import Holt, observe
from loadpilot.decide.scaling.recommendation import Recommendation, ceil_size, num, within_tolerance
from loadpilot.model import PoolView


@dataclass(frozen=True, slots=True)
class PredictiveState:
    """The demand forecaster, and the last reading of requests in flight (to see a queue grow)."""

    holt: Holt | None = None
    in_flight: float | None = None
    observed_at: float | None = None


def demand_now(view: PoolView, check: ScalingCheck, previous: PredictiveState) -> float | None:
    """The pool's load in the metric's units, with requests piling up in its queues added back."""
    value = view.metric(check.metric, check.query)
    if value is None or view.ready <= 0:
        return None
    load = value * view.ready
    if (
        view.in_flight is not None
        and previous.in_flight is not None
        and previous.observed_at is not None
        and view.observed_at > previous.observed_at
        and view.rps
        and load > 0
    ):
        growth = (view.in_flight - previous.in_flight) / (view.observed_at - previous.observed_at)
        if growth > 0:
            load += growth * load / view.rps
    return load


def recommend(
    view: PoolView, check: ScalingCheck, state: object | None, now: float
) -> tuple[Recommendation | None, object | None]:
    """The size for the forecast demand over the horizon; at least what target tracking asks."""
    previous = state if isinstance(state, PredictiveState) else PredictiveState()
    floor, _ = target.recommend(view, check, None, now)
    demand = demand_now(view, check, previous)
    if floor is None or demand is None:
        return floor, previous
    fresh = previous.observed_at is None or view.observed_at > previous.observed_at
    holt = observe(previous.holt, demand, view.observed_at) if fresh else previous.holt
    new_state = PredictiveState(holt, view.in_flight, view.observed_at) if fresh else previous
    assert holt is not None
    expected = max(demand, holt.level + holt.rise(check.horizon_s))
    inputs: dict[str, float | int | str | None] = {
        **floor.inputs,
        "demand": demand,
        "trend_per_s": holt.trend,
        "noise": holt.noise,
        "forecast": expected,
    }
    size = ceil_size(expected / check.target)
    beyond_band = not within_tolerance(expected / (check.target * max(1, view.desired)), check.tolerance)
    if not beyond_band or expected < check.target * view.desired or size <= floor.size:
        return Recommendation(floor.size, f"predictive: {floor.reason}", "predictive", inputs), new_state
    reason = (
        f"predictive: {check.metric} demand {num(demand)} rising {num(holt.trend)}/s, expected {num(expected)} "
        f"in {check.horizon_s:.0f} s; at {num(check.target)} per worker -> {size} (target alone: {floor.size})"
    )
    return Recommendation(size, reason, "predictive", inputs), new_state
