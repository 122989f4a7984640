"""Step scaling (as AWS step adjustments and Heat): the band the metric is in says how far to move.

Each step is a band of metric / target with an adjustment (change in capacity, exact capacity, or percent of
the current size). The band holding the current value applies; no band, no change.
"""

from __future__ import annotations

from loadpilot.config import ScalingCheck
from loadpilot.decide.scaling.bands import apply_step, band_of, describe
from loadpilot.decide.scaling.recommendation import Recommendation, num, usage_ratio
from loadpilot.model import PoolView


def recommend(
    view: PoolView, check: ScalingCheck, state: object | None, now: float
) -> tuple[Recommendation | None, object | None]:
    """Apply the step whose band holds the current metric / target to the desired size."""
    ratio = usage_ratio(view, check)
    if ratio is None:
        return None, state
    inputs: dict[str, float | int | str | None] = {"metric": check.metric, "ratio": ratio}
    index = band_of(ratio, check.steps)
    if index is None:
        reason = f"step: {check.metric} at {ratio:.2f}x the target {num(check.target)} is in no step's band"
        return Recommendation(view.desired, reason, "step", inputs), state
    rule = check.steps[index]
    size = apply_step(view.desired, rule)
    inputs["step"] = index
    reason = (
        f"step: {check.metric} at {ratio:.2f}x the target {num(check.target)} is in step {index} "
        f"{describe(rule)}: {view.desired} -> {size}"
    )
    return Recommendation(size, reason, "step", inputs), state
