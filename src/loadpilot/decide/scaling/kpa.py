"""Knative's Pod Autoscaler (KPA), from its documented defaults and its decider.

It averages the pool's total concurrency (or requests/s) over a 60 s stable window and a 6 s panic window:
desired = ceil(observed / target per pod), within [floor(ready / 2), ceil(1000 x ready)]. When the panic
window asks for 200 % or more of the ready pods it panics: it takes the larger of the two windows' answers and
never scales down, until the panic condition has been gone for a whole stable window. The observations are
kept in this policy's own state, one per new reading.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from loadpilot.config import ScalingCheck
from loadpilot.decide.scaling.recommendation import Recommendation, num
from loadpilot.model import PoolView

STABLE_WINDOW_S = 60.0
PANIC_WINDOW_S = 6.0  # 10 % of the stable window
PANIC_THRESHOLD = 2.0  # 200 %
MAX_SCALE_UP_RATE = 1000.0
MAX_SCALE_DOWN_RATE = 2.0


@dataclass(frozen=True, slots=True)
class KpaState:
    """Readings within the stable window (time, pool total), and the panic mode's start and high-water mark."""

    readings: tuple[tuple[float, float], ...] = ()
    panic_since: float | None = None
    max_panic_pods: int = 0


def _total(view: PoolView, check: ScalingCheck) -> float | None:
    return view.in_flight if check.metric == "in_flight" else view.rps


def _mean_since(readings: tuple[tuple[float, float], ...], since: float) -> float:
    inside = [v for t, v in readings if t > since]
    return sum(inside) / len(inside) if inside else readings[-1][1]


def recommend(
    view: PoolView, check: ScalingCheck, state: object | None, now: float
) -> tuple[Recommendation | None, object | None]:
    """KPA's desired pod count: stable or panic mode, from the readings of the last minute."""
    previous = state if isinstance(state, KpaState) else KpaState()
    total = _total(view, check)
    if total is None:
        return None, previous
    readings = previous.readings
    if not readings or view.observed_at > readings[-1][0]:
        readings = (*readings, (view.observed_at, total))
    readings = tuple(r for r in readings if r[0] > now - STABLE_WINDOW_S) or readings[-1:]
    stable = _mean_since(readings, now - STABLE_WINDOW_S)
    panic = _mean_since(readings, now - PANIC_WINDOW_S)
    ready = float(max(1, view.ready))
    most = math.ceil(MAX_SCALE_UP_RATE * ready)
    least = math.floor(ready / MAX_SCALE_DOWN_RATE)
    stable_pods = math.ceil(stable / check.target)
    panic_pods = math.ceil(panic / check.target)
    desired_stable = int(min(max(stable_pods, least), most))
    desired_panic = int(min(max(panic_pods, least), most))
    over = panic_pods / ready >= PANIC_THRESHOLD
    panic_since = previous.panic_since
    max_panic = previous.max_panic_pods
    if over:
        panic_since = now
    elif panic_since is not None and panic_since + STABLE_WINDOW_S < now:
        panic_since, max_panic = None, 0
    panicking = panic_since is not None
    inputs: dict[str, float | int | str | None] = {"stable": stable, "panic": panic, "panicking": int(panicking)}
    if panic_since is None:
        size = desired_stable
        reason = f"kpa: stable {check.metric} {num(stable)} over 60 s at {num(check.target)} per pod -> {size}"
    else:
        size = max(desired_stable, desired_panic, max_panic)
        max_panic = size
        reason = (
            f"kpa: panic mode ({check.metric} {num(panic)} over 6 s is {panic_pods / ready:.0%} of {int(ready)} "
            f"ready pods' target); no scale-down -> {size}"
        )
    return Recommendation(size, reason, "kpa", inputs), KpaState(readings, panic_since, max_panic)
