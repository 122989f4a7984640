"""What a scaling policy answers, and the small arithmetic every policy shares."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from loadpilot.config import ScalingCheck
from loadpilot.model import PoolView

# Ratios such as 3 x 0.7 / 0.7 come out a hair above 3 in floating point; a size is never raised for that.
_EPSILON = 1e-9

Inputs = dict[str, float | int | str | None]


@dataclass(frozen=True, slots=True)
class Recommendation:
    """A policy's answer: the pool size it asks for, which policy asked, why, and the numbers it used."""

    size: int
    reason: str
    policy: str = ""
    inputs: Inputs = field(default_factory=dict)


# A policy: (view, its check's settings, its own state or None the first time, now) -> (answer, new state).
# The answer is None when the policy has nothing to go on (no metric yet); it then abstains.
Policy = Callable[[PoolView, ScalingCheck, object | None, float], tuple[Recommendation | None, object | None]]


def ceil_size(workers: float) -> int:
    """Round a fractional worker count up, ignoring floating-point noise, never below 0."""
    return max(0, math.ceil(workers - _EPSILON))


def within_tolerance(ratio: float, tolerance: float) -> bool:
    """True when a ratio to the target is close enough to 1 to leave the size alone (edges included)."""
    return abs(1.0 - ratio) <= tolerance + _EPSILON


def usage_ratio(view: PoolView, check: ScalingCheck) -> float | None:
    """The check's metric per worker divided by its target, or None when there is nothing to divide."""
    value = view.metric(check.metric, check.query)
    if value is None or view.ready <= 0:
        return None
    return value / check.target


def num(value: float) -> str:
    """A number short enough for a reason a person reads: 3 significant digits."""
    return f"{value:.3g}"
