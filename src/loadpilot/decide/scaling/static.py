"""A static pool: always the same size (the `size` setting, or the pool's max), whatever the load."""

from __future__ import annotations

from loadpilot.config import ScalingCheck
from loadpilot.decide.scaling.recommendation import Recommendation
from loadpilot.model import PoolView


def recommend(
    view: PoolView, check: ScalingCheck, state: object | None, now: float
) -> tuple[Recommendation | None, object | None]:
    """The fixed size: a baseline sized once, for the peak, that never moves."""
    size = check.size or view.max
    return Recommendation(size, f"static: fixed at {size}", "static", {"size": size}), state
