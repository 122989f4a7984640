"""Predictive scaling (ours): size the pool for the demand expected when new workers would be ready.

1. Demand now, in the metric's units summed over the pool, a growing queue counted back in (demand.py).
2. Holt's linear trend over those demands, one per evaluation, forecast `horizon_s` ahead (a worker's start-up
   time plus one interval: the earliest a worker asked for now can serve). Only a rise is used, and only the
   part of its slope beyond the demand's own noise (forecast.Holt.rise), so noise does not buy workers.
3. Size for the larger of demand now and the forecast, at the target per worker, when that exceeds the current
   size by more than the tolerance; and never below what target tracking asks.
4. With `burst_memory_s` set, never below the size a recent burst needed (bursts.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from loadpilot.config import ScalingCheck
from loadpilot.decide.scaling import target
from loadpilot.decide.scaling.bursts import BurstMemory, hold, remember
from loadpilot.decide.scaling.demand import QueueReading, demand_now, is_new, queue_reading
from loadpilot.decide.scaling.forecast import Holt, observe
from loadpilot.decide.scaling.recommendation import Recommendation, ceil_size, num, within_tolerance
from loadpilot.model import PoolView


@dataclass(frozen=True, slots=True)
class PredictiveState:
    """The demand forecaster, the last reading's queue (to see it grow), and the bursts remembered."""

    holt: Holt | None = None
    queue: QueueReading | None = None
    memory: BurstMemory = field(default_factory=BurstMemory)


def _forecast(view: PoolView, check: ScalingCheck, floor: Recommendation, demand: float, holt: Holt) -> Recommendation:
    """The size for the larger of demand now and its forecast, or target tracking's when that is larger."""
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
        return Recommendation(floor.size, f"predictive: {floor.reason}", "predictive", inputs)
    reason = (
        f"predictive: {check.metric} demand {num(demand)} rising {num(holt.trend)}/s, expected {num(expected)} "
        f"in {check.horizon_s:.0f} s; at {num(check.target)} per worker -> {size} (target alone: {floor.size})"
    )
    return Recommendation(size, reason, "predictive", inputs)


def recommend(
    view: PoolView, check: ScalingCheck, state: object | None, now: float
) -> tuple[Recommendation | None, object | None]:
    """The size for the forecast demand over the horizon; at least what target tracking asks, and with burst
    memory on, at least what a remembered burst needed."""
    previous = state if isinstance(state, PredictiveState) else PredictiveState()
    floor = target.track(view, check)
    demand = demand_now(view, check, previous.queue)
    if floor is None or demand is None:
        return floor, previous
    if not is_new(view, previous.queue):
        assert previous.holt is not None  # a reading seen before was folded in then
        return hold(_forecast(view, check, floor, demand, previous.holt), previous.memory, check, now), previous
    holt = observe(previous.holt, demand, view.observed_at)
    recommendation = _forecast(view, check, floor, demand, holt)
    memory = previous.memory
    if check.burst_memory_s > 0:
        memory = remember(memory, demand, recommendation.size, check, now)
    return hold(recommendation, memory, check, now), PredictiveState(holt, queue_reading(view), memory)
