"""Kubernetes' Horizontal Pod Autoscaler, from its documented algorithm (the replica calculator).

desiredReplicas = ceil(readyPods x currentMetricValue / desiredMetricValue), no change while the ratio is within
the tolerance (0.1) of 1. Pods not yet ready are set aside; on a scale-up they are counted back as using 0 % of
the target and the ratio is computed again, and if that ratio no longer asks for a scale-up beyond the tolerance
the size stays (so a scale-up already under way is not repeated). The rest of HPA's behaviour (15 s sync, 300 s
scale-down stabilisation as a rolling max, scale-up limited to max(2 x current, current + 4) per 15 s) is the
guard framework's, set by `presets.hpa`.
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
    """HPA's replica count for one metric: the ready pods' ratio, rebalanced with the unready ones on a scale-up."""
    ratio = usage_ratio(view, check)
    if ratio is None:
        return None, state
    current = view.desired
    unready = max(0, view.size - view.ready)
    inputs: dict[str, float | int | str | None] = {"metric": check.metric, "ratio": ratio, "unready": unready}
    keep = f"keep {current}"
    if unready == 0 or ratio <= 1.0:
        if within_tolerance(ratio, check.tolerance):
            return Recommendation(current, f"hpa: ratio {ratio:.2f} within tolerance; {keep}", "hpa", inputs), state
        size = ceil_size(ratio * view.ready)
        reason = f"hpa: {check.metric} at {ratio:.2f}x the target {num(check.target)} on {view.ready} ready -> {size}"
        return Recommendation(size, reason, "hpa", inputs), state
    counted = view.ready + unready
    rebalanced = ratio * view.ready / counted
    inputs["rebalanced_ratio"] = rebalanced
    if within_tolerance(rebalanced, check.tolerance) or rebalanced < 1.0:
        reason = f"hpa: ratio {ratio:.2f}, {rebalanced:.2f} with {unready} unready pods at 0; {keep}"
        return Recommendation(current, reason, "hpa", inputs), state
    size = ceil_size(rebalanced * counted)
    if size < current:
        return Recommendation(current, f"hpa: rebalanced ratio {rebalanced:.2f}; {keep}", "hpa", inputs), state
    reason = f"hpa: ratio {rebalanced:.2f} with {unready} unready pods at 0, over {counted} pods -> {size}"
    return Recommendation(size, reason, "hpa", inputs), state
