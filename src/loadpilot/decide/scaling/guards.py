"""The guards every policy's recommendation passes through, in this order:

1. bounds: within the pool's [min, max];
2. scale-in stabilisation: the highest recommendation of the last `stabilisation_down_s` (a rolling max, as
   HPA's 300 s), so a pool scales in only once the load has stayed low for that long; a controller that just
   started counts the pool's current size as recommended, so it never scales in on its first readings;
3. not-ready hold: while a scale is in progress, and for one metrics window after it (until every reading
   comes from the new size), no scale-in ("in"), or no change at all ("all");
4. cooldown per direction: no scale-out within `cooldown_up_s` of the last scale-out, no scale-in within
   `cooldown_down_s` of the last change of either kind;
5. largest step per evaluation: the larger of a count and a percentage of the current size;
6. bounds again, which beat every hold: a pool outside [min, max] always comes back.

Each guard that changes the outcome says so, and the notes join the decision's reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from loadpilot.config import AutoscaleConfig
from loadpilot.decide.scaling.recommendation import Recommendation
from loadpilot.model import PoolView


@dataclass(frozen=True, slots=True)
class GuardState:
    """When the pool last grew and shrank, and the recommendations within the stabilisation window."""

    last_up_at: float | None = None
    last_down_at: float | None = None
    recommendations: tuple[tuple[float, int], ...] = ()
    busy_at: float | None = None  # the last time a scale was seen in progress
    started_at: float | None = None  # the first evaluation


def step_limit(current: int, count: int, percent: float) -> int | None:
    """The most workers one evaluation may add or remove: the larger of `count` and `percent` of the current
    size (rounded up), or None when both are 0 (no limit)."""
    if count <= 0 and percent <= 0:
        return None
    return max(count, math.ceil(current * percent / 100.0))


def _bounded(size: int, view: PoolView) -> int:
    return min(max(size, view.min), view.max)


def _stabilised(size: int, current: int, history: tuple[tuple[float, int], ...], window: float) -> tuple[int, str]:
    """A scale-in goes only as low as the highest recommendation within the window."""
    if size >= current or window <= 0:
        return size, ""
    highest = min(current, max(r[1] for r in history))
    if highest <= size:
        return size, ""
    return highest, f"stabilisation: highest recommendation in the last {window:.0f} s is {highest}"


def _held(size: int, view: PoolView, mode: str, busy_at: float | None, now: float) -> tuple[int, str]:
    """While a scale is in progress or its metrics are not all in: no scale-in ("in"), or no change ("all")."""
    current = view.desired
    if size == current or mode == "off" or (mode == "in" and size > current):
        return size, ""
    if view.scale_in_progress:
        return current, f"held: a scale is in progress ({view.ready} of {view.desired} ready, {view.size} running)"
    if busy_at is not None and now - busy_at < view.window_s:
        return current, f"held: the last scale finished {now - busy_at:.0f} s ago, within the metrics window"
    return size, ""


def _cooled(size: int, current: int, settings: AutoscaleConfig, state: GuardState, now: float) -> tuple[int, str]:
    """No scale-out soon after a scale-out; no scale-in soon after any change."""
    if size > current and state.last_up_at is not None and now - state.last_up_at < settings.cooldown_up_s:
        since = now - state.last_up_at
        return current, f"cooldown: last scale-out {since:.0f} s ago (< {settings.cooldown_up_s:.0f} s)"
    last_change = max((t for t in (state.last_up_at, state.last_down_at) if t is not None), default=None)
    if size < current and last_change is not None and now - last_change < settings.cooldown_down_s:
        return current, f"cooldown: last scaling {now - last_change:.0f} s ago (< {settings.cooldown_down_s:.0f} s)"
    return size, ""


def _stepped(size: int, current: int, settings: AutoscaleConfig) -> tuple[int, str]:
    """At most the largest step per evaluation, in either direction."""
    if size > current:
        up = step_limit(current, settings.max_step_up, settings.max_step_up_pct)
        if up is not None and size - current > up:
            return current + up, f"max step up {up}: {size} -> {current + up}"
    elif size < current:
        down = step_limit(current, settings.max_step_down, settings.max_step_down_pct)
        if down is not None and current - size > down:
            return current - down, f"max step down {down}: {size} -> {current - down}"
    return size, ""


def apply_guards(
    view: PoolView, recommendation: Recommendation, settings: AutoscaleConfig, state: GuardState, now: float
) -> tuple[int, list[str], GuardState]:
    """The size to set after every guard, the notes of the guards that acted, and the new guard state."""
    current = view.desired
    notes: list[str] = []
    size = _bounded(recommendation.size, view)
    if size != recommendation.size:
        notes.append(f"bounds {view.min}..{view.max}: {recommendation.size} -> {size}")
    window = settings.stabilisation_down_s
    seen = state.recommendations if state.started_at is not None else ((now, current),)
    kept = tuple(r for r in seen if r[0] > now - window) if window > 0 else ()
    history = (*kept, (now, size)) if window > 0 else ()
    size, note = _stabilised(size, current, history, window)
    notes.append(note)
    busy_at = now if view.scale_in_progress else state.busy_at
    size, note = _held(size, view, settings.hold_while_scaling, state.busy_at, now)
    notes.append(note)
    size, note = _cooled(size, current, settings, state, now)
    notes.append(note)
    size, note = _stepped(size, current, settings)
    notes.append(note)
    final = _bounded(size, view)
    if final != size:
        notes.append(f"bounds {view.min}..{view.max}: {size} -> {final}")
    new_state = GuardState(
        now if final > current else state.last_up_at,
        now if final < current else state.last_down_at,
        history,
        busy_at,
        now if state.started_at is None else state.started_at,
    )
    return final, [n for n in notes if n], new_state
