"""Target tracking (as HPA and Nomad's target-value): size the pool so its metric per worker meets the target.

desired = ceil(ready x current / target), unless current / target is within the tolerance band around 1, where
the pool keeps its size: a small error is noise, and reacting to it would make the pool flap.
"""

from __future__ import annotations

from loadpilot.config import ScalingCheck
from loadpilot.decide.scaling.recommendation import (
    Recommendation,
    ceil_size,
    num,
    usage_ratio,
    within_tolerance,
)
from loadpilot.model import PoolView


def recommend(
    view: PoolView, check: ScalingCheck, state: object | None, now: float
) -> tuple[Recommendation | None, object | None]:
    """The size that brings the metric per worker to the target; the current size within the tolerance band."""
    ratio = usage_ratio(view, check)
    if ratio is None:
        return None, state
    value = ratio * check.target
    inputs: dict[str, float | int | str | None] = {"metric": check.metric, "value": value, "ratio": ratio}
    if within_tolerance(ratio, check.tolerance):
        reason = (
            f"target: {check.metric} {num(value)} per worker is within {check.tolerance:.0%} "
            f"of the target {num(check.target)}; keep {view.desired}"
        )
        return Recommendation(view.desired, reason, "target", inputs), state
    size = ceil_size(view.ready * ratio)
    reason = (
        f"target: {check.metric} {num(value)} per worker on {view.ready} ready is {ratio:.2f}x "
        f"the target {num(check.target)} -> {size}"
    )
    return Recommendation(size, reason, "target", inputs), state
