"""Step bands shared by the step and threshold policies: which band a ratio is in, and what its step does."""

from __future__ import annotations

import math
from collections.abc import Sequence

from loadpilot.config import StepRule


def band_of(ratio: float, steps: Sequence[StepRule]) -> int | None:
    """The index of the step whose band [lower, upper) holds `ratio`, or None when no band does."""
    for i, rule in enumerate(steps):
        if (rule.lower is None or ratio >= rule.lower) and (rule.upper is None or ratio < rule.upper):
            return i
    return None


def apply_step(current: int, rule: StepRule) -> int:
    """The size after one step from `current` (AWS's rounding: a fraction of a worker rounds away from zero
    below one worker and toward zero above; a percentage moves at least `min_adjustment` workers)."""
    if rule.type == "exact":
        return max(0, int(rule.adjustment))
    if rule.type == "change":
        return max(0, current + int(rule.adjustment))
    delta = current * rule.adjustment / 100.0
    if delta == 0.0 and rule.adjustment != 0.0:
        delta = math.copysign(1.0, rule.adjustment)
    whole = math.copysign(1, delta) if 0 < abs(delta) < 1 else math.trunc(delta)
    if 0 < abs(whole) < rule.min_adjustment:
        whole = math.copysign(rule.min_adjustment, whole)
    return max(0, current + int(whole))


def describe(rule: StepRule) -> str:
    """A step in words: "[1.1, 1.25): +1", "[1.25, inf): +50%", "[0, 0.8): =3"."""
    low = "0" if rule.lower is None else f"{rule.lower:g}"
    high = "inf" if rule.upper is None else f"{rule.upper:g}"
    if rule.type == "exact":
        what = f"={int(rule.adjustment)}"
    elif rule.type == "percent":
        what = f"{rule.adjustment:+g}%"
    else:
        what = f"{int(rule.adjustment):+d}"
    return f"[{low}, {high}): {what}"
