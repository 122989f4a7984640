"""Thresholds with "k of the last n evaluations" (as Nomad's threshold strategy and its within_bounds_trigger).

Each step band is a threshold check of its own: it fires only when metric / target fell within its band in at
least k of the last n evaluations, so a single spike moves nothing. When several fire, the safest wins.
"""

from __future__ import annotations

from dataclasses import dataclass

from loadpilot.config import ScalingCheck
from loadpilot.decide.scaling.arbitration import arbitrate
from loadpilot.decide.scaling.bands import apply_step, band_of, describe
from loadpilot.decide.scaling.recommendation import Recommendation, usage_ratio
from loadpilot.model import PoolView


@dataclass(frozen=True, slots=True)
class ThresholdState:
    """The ratios of the last n evaluations, oldest first."""

    ratios: tuple[float, ...] = ()


def recommend(
    view: PoolView, check: ScalingCheck, state: object | None, now: float
) -> tuple[Recommendation | None, object | None]:
    """Fire every band that held k of the last n evaluations; keep the size when none did."""
    previous = state if isinstance(state, ThresholdState) else ThresholdState()
    ratio = usage_ratio(view, check)
    if ratio is None:
        return None, previous
    ratios = (*previous.ratios, ratio)[-check.n :]
    new_state = ThresholdState(ratios)
    hits = [0] * len(check.steps)
    for r in ratios:
        index = band_of(r, check.steps)
        if index is not None:
            hits[index] += 1
    inputs: dict[str, float | int | str | None] = {"metric": check.metric, "ratio": ratio, "evaluations": len(ratios)}
    fired = [
        Recommendation(
            apply_step(view.desired, rule),
            f"threshold: {check.metric} was in band {describe(rule)} in {hits[i]} of the last {len(ratios)} "
            f"evaluations (k = {check.k}): {view.desired} -> {apply_step(view.desired, rule)}",
            "threshold",
            inputs,
        )
        for i, rule in enumerate(check.steps)
        if hits[i] >= check.k
    ]
    chosen = arbitrate(view.desired, fired)
    if chosen is None:
        reason = (
            f"threshold: no band held {check.k} of the last {len(ratios)} evaluations "
            f"(now {ratio:.2f}x the target); keep {view.desired}"
        )
        return Recommendation(view.desired, reason, "threshold", inputs), new_state
    return chosen, new_state
