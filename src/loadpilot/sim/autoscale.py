"""Drive a scaling policy over a trace: the simulated pool, observed as live, decided on by `decide_scale`.

Each step of `step_s`: the pool serves the trace's requests, the observer takes a reading every `sample_s`, and
`decide_scale` (the code a live controller runs) is called with the view of the last window, at the simulated
time. Its ScaleTo actions resize the simulated pool. Every step is recorded for the metrics and the chart.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from loadpilot import plugins
from loadpilot.config import AutoscaleConfig
from loadpilot.decide.scaling import ScalingState, decide_scale, policy_names
from loadpilot.model import Decision, ScaleTo
from loadpilot.sim.autoscale_setup import SimSetup, settings_for
from loadpilot.sim.elasticity import demand_workers, elasticity
from loadpilot.sim.observe import Observer
from loadpilot.sim.pool_model import PoolModel

FloatArray = npt.NDArray[np.float64]
Progress = Callable[[float], None]
POOL_NAME = "sim"


@dataclass
class SimRun:
    """One policy's run: its settings, every step's state, and the decisions that changed the size."""

    policy: str
    settings: AutoscaleConfig
    start: float
    step_s: float
    rate: FloatArray
    ready: FloatArray
    desired: FloatArray
    running: FloatArray
    p95_s: FloatArray
    dropped: FloatArray
    decisions: list[Decision] = field(default_factory=list)


def peak_workers(rates: FloatArray, setup: SimSetup) -> int:
    """The size that serves the trace's highest rate within the objective: the static pool's size."""
    return setup.workers_for(float(np.max(rates)) if len(rates) else 0.0)


def simulate(
    policy: str,
    rates: FloatArray,
    setup: SimSetup,
    start: float = 0.0,
    settings: AutoscaleConfig | None = None,
    progress: Progress | None = None,
) -> SimRun:
    """Replay `rates` (requests/s per step) into a simulated pool scaled by `policy` (or by `settings`)."""
    peak = peak_workers(rates, setup)
    settings = settings or settings_for(policy, setup, peak)
    policies = plugins.load_each(plugins.SCALING_POLICIES, policy_names(settings))  # found by name, as live
    if any(check.metric == "query" for check in (settings, *settings.checks)):
        raise ValueError(
            'the simulator has no Prometheus: checks with metric = "query" cannot be simulated '
            "(use cpu, rps_per_worker, latency_p95 or in_flight)"
        )
    low, high = setup.min_size, max(2 * peak, setup.min_size + 1)
    dt = setup.step_s
    # Every policy starts at the size its target asks for the first minute's busiest second: no cold start.
    first = float(np.max(rates[: max(1, round(60 / dt))])) if len(rates) else 0.0
    at_target = setup.target * setup.params.capacity
    initial = peak if settings.policy == "static" else max(low, math.ceil(first / at_target))
    pool = PoolModel(setup.params, initial)
    observer = Observer(setup.sample_s, setup.params.capacity)
    window = max(setup.sample_s, settings.interval_s)
    n = len(rates)
    rates = np.asarray(rates, dtype=np.float64)
    run = SimRun(policy, settings, start, dt, rates, np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n))
    state: ScalingState | None = None
    tick = max(1, n // 100)
    for i in range(n):
        now = start + i * dt
        outcome = pool.step(float(rates[i]), dt, now)
        run.ready[i], run.desired[i], run.running[i] = outcome.ready, pool.desired, pool.running
        run.p95_s[i], run.dropped[i] = outcome.p95_s, outcome.dropped
        observer.add(outcome, dt)
        end = now + dt
        observer.sample_if_due(end, pool)
        due = state is None or state.evaluated_at is None or end - state.evaluated_at >= settings.interval_s - 1e-9
        if observer.readings and due:
            view = observer.view(POOL_NAME, pool, low, high, window, end)
            decision, state = decide_scale(view, settings, state, end, policies)
            for action in decision.actions:
                if isinstance(action, ScaleTo):
                    pool.scale_to(action.size, end)
            if decision.actions:
                run.decisions.append(decision)
        if progress is not None and i % tick == 0:
            progress(i / n)
    if progress is not None:
        progress(1.0)
    return run


def summarize(run: SimRun, setup: SimSetup) -> dict[str, Any]:
    """A run's results: SLO-violation time, cost, scaling actions, dropped requests and elasticity metrics."""
    dt = run.step_s
    smooth = max(1, round(setup.demand_window_s / dt))
    demand = demand_workers(run.rate, setup.per_worker_at_slo, smooth)
    demand = np.maximum(demand, setup.min_size)
    violated = run.p95_s > setup.slo_s
    served = float(np.sum(run.rate) * dt)
    return {
        "policy": run.policy,
        "slo_violation_s": float(np.count_nonzero(violated) * dt),
        "slo_violation_pct": float(100.0 * np.count_nonzero(violated) / max(1, len(violated))),
        "worker_s": float(np.sum(run.running) * dt),
        "mean_workers": float(np.mean(run.running)) if len(run.running) else 0.0,
        "peak_workers": int(np.max(run.running)) if len(run.running) else 0,
        "actions": len(run.decisions),
        "dropped_pct": float(100.0 * np.sum(run.dropped) / served) if served else 0.0,
        "p95_ms_median": float(1000.0 * np.median(run.p95_s)) if len(run.p95_s) else 0.0,
        **run_elasticity(run, demand),
    }


def run_elasticity(run: SimRun, demand: FloatArray) -> dict[str, float]:
    """The elasticity metrics of a run against a demand curve, named as in the results table."""
    e = elasticity(demand, run.ready, run.step_s)
    return {
        "theta_u_pct": e.under_accuracy,
        "theta_o_pct": e.over_accuracy,
        "tau_u_pct": e.under_timeshare,
        "tau_o_pct": e.over_timeshare,
        "jitter_per_h": e.jitter_per_hour,
    }
