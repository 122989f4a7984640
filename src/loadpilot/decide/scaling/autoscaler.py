"""One pool's scaling decision: evaluate when due, ask every check, keep the safest answer, guard it.

This is what a controller calls every tick, and what the simulator calls every simulated second.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from loadpilot.config import AutoscaleConfig
from loadpilot.decide.scaling.arbitration import arbitrate
from loadpilot.decide.scaling.guards import GuardState, apply_guards
from loadpilot.decide.scaling.recommendation import Inputs, Policy, Recommendation
from loadpilot.model import Decision, PoolView, ScaleTo

# Metrics older than this many evaluation intervals (or windows) are not acted upon: the sensing chain is broken.
STALE_AFTER_INTERVALS = 3.0


@dataclass(frozen=True, slots=True)
class ScalingState:
    """What one pool's scaling remembers between ticks: the last evaluation, each check's state, the guards'."""

    evaluated_at: float | None = None
    checks: tuple[object | None, ...] = ()
    guard: GuardState = field(default_factory=GuardState)


def _inputs(view: PoolView) -> Inputs:
    return {
        "desired": view.desired,
        "size": view.size,
        "ready": view.ready,
        "cpu": view.cpu,
        "rps": view.rps,
        "latency_p95": view.latency_p95,
        "in_flight": view.in_flight,
        "window_s": view.window_s,
        "observed_at": view.observed_at,
    }


def _hold(view: PoolView, now: float, reason: str, state: ScalingState) -> tuple[Decision, ScalingState]:
    """No recommendation: keep the size, except that a pool outside its bounds comes back within them."""
    size = min(max(view.desired, view.min), view.max)
    actions = (ScaleTo(view.name, size, f"{reason}; bounds {view.min}..{view.max}"),) if size != view.desired else ()
    return Decision(f"pool/{view.name}", now, actions, reason, _inputs(view)), state


def evaluation_due(settings: AutoscaleConfig, state: ScalingState | None, now: float) -> bool:
    """True when `decide_scale` would evaluate the checks at `now` (the first time, then every interval_s); a
    caller reads costly inputs (Prometheus queries) only then."""
    last = state.evaluated_at if state is not None else None
    return last is None or now - last >= settings.interval_s - 1e-9


def policy_names(settings: AutoscaleConfig) -> Iterable[str]:
    """The scaling policies `settings` use (its own and its checks'): the names `decide_scale` looks up."""
    return {settings.policy, *(check.policy for check in settings.checks)}


def decide_scale(
    view: PoolView,
    settings: AutoscaleConfig,
    state: ScalingState | None,
    now: float,
    policies: Mapping[str, Policy],
) -> tuple[Decision, ScalingState]:
    """Decide one pool's size: every `settings.interval_s`, the safest answer of its checks, through the guards.

    Call it every tick with the pool's latest view and the state it returned last time (None the first time).
    Between evaluations it answers a decision without actions. A ScaleTo is there only when the size changes.
    `policies` holds the policy of each name `policy_names(settings)` gives: the caller finds them by name (the
    `loadpilot.scaling_policies` entry points) once, this code stays pure.
    """
    previous = state or ScalingState()
    subject = f"pool/{view.name}"
    if not evaluation_due(settings, previous, now):
        assert previous.evaluated_at is not None
        wait = previous.evaluated_at + settings.interval_s - now
        return Decision(subject, now, (), f"next evaluation in {wait:.1f} s"), previous
    checks = [settings, *settings.checks]
    states = previous.checks if len(previous.checks) == len(checks) else (None,) * len(checks)
    recommendations: list[Recommendation] = []
    new_states: list[object | None] = []
    for check, check_state in zip(checks, states, strict=True):
        recommendation, new_state = policies[check.policy](view, check, check_state, now)
        new_states.append(new_state)
        if recommendation is not None:
            recommendations.append(recommendation)
    evaluated = ScalingState(now, tuple(new_states), previous.guard)
    stale_after = STALE_AFTER_INTERVALS * max(settings.interval_s, view.window_s)
    if view.observed_at and now - view.observed_at > stale_after:
        return _hold(view, now, f"metrics are stale (newest {now - view.observed_at:.0f} s old); keep", evaluated)
    chosen = arbitrate(view.desired, recommendations)
    if chosen is None:
        missing = (
            f"no answer to the query {settings.query!r}"
            if settings.metric == "query"
            else f"no {settings.metric} metric"
        )
        return _hold(view, now, f"{missing} for the ready workers yet; keep", evaluated)
    size, notes, guard = apply_guards(view, chosen, settings, previous.guard, now)
    reason = "; ".join([chosen.reason, *notes])
    inputs = {**_inputs(view), **chosen.inputs, "recommended": chosen.size, "decided": size}
    actions = (ScaleTo(view.name, size, reason),) if size != view.desired else ()
    return Decision(subject, now, actions, reason, inputs), ScalingState(now, tuple(new_states), guard)
