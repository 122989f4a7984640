"""Target tracking (as HPA and Nomad's target-value): size the pool so its metric per worker meets the target.

desired = ceil(ready x current / target), unless current / target is within the tolerance band around 1, where
the pool keeps its size: a small error is noise, and reacting to it would make the pool flap. With
`burst_memory_s` set, the answer is never below the size a recent burst needed (decide/scaling/bursts.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from loadpilot.config import ScalingCheck
from loadpilot.decide.scaling.bursts import BurstMemory, hold, remember
from loadpilot.decide.scaling.demand import QueueReading, demand_now, is_new, queue_reading
from loadpilot.decide.scaling.recommendation import (
    Recommendation,
    ceil_size,
    num,
    usage_ratio,
    within_tolerance,
)
from loadpilot.model import PoolView


@dataclass(frozen=True, slots=True)
class TargetState:
    """What target tracking remembers only with burst memory on: the last reading's queue, and the bursts."""

    queue: QueueReading | None = None
    memory: BurstMemory = field(default_factory=BurstMemory)


def track(view: PoolView, check: ScalingCheck) -> Recommendation | None:
    """Target tracking alone: the size that brings the metric per worker to the target, the current size within
    the tolerance band; None without a metric or a ready worker."""
    ratio = usage_ratio(view, check)
    if ratio is None:
        return None
    value = ratio * check.target
    inputs: dict[str, float | int | str | None] = {"metric": check.metric, "value": value, "ratio": ratio}
    if within_tolerance(ratio, check.tolerance):
        reason = (
            f"target: {check.metric} {num(value)} per worker is within {check.tolerance:.0%} "
            f"of the target {num(check.target)}; keep {view.desired}"
        )
        return Recommendation(view.desired, reason, "target", inputs)
    size = ceil_size(view.ready * ratio)
    reason = (
        f"target: {check.metric} {num(value)} per worker on {view.ready} ready is {ratio:.2f}x "
        f"the target {num(check.target)} -> {size}"
    )
    return Recommendation(size, reason, "target", inputs)


def recommend(
    view: PoolView, check: ScalingCheck, state: object | None, now: float
) -> tuple[Recommendation | None, object | None]:
    """Target tracking's answer, held at the size of a remembered burst when burst memory is on."""
    recommendation = track(view, check)
    if check.burst_memory_s <= 0:
        return recommendation, state
    previous = state if isinstance(state, TargetState) else TargetState()
    current = previous
    if is_new(view, previous.queue):
        demand = demand_now(view, check, previous.queue)
        asked = recommendation.size if recommendation is not None else None
        current = TargetState(queue_reading(view), remember(previous.memory, demand, asked, check, now))
    if recommendation is None:
        return None, current
    return hold(recommendation, current.memory, check, now), current
