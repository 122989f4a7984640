"""Autoscaling policies on the WC98 traces, in the simulator: SLO-violation time, cost, elasticity.

Each policy (ours: target, step, threshold, predictive; baselines: hpa, kpa, static sized for the peak) scales a
simulated pool replaying the per-second day of the trace and the three busiest days of the per-minute trace
(each minute's rate held for its 60 s). The pool: workers of 100 requests/s, 20 ms per request, 2 at once (as
logsift --io-ms 20 --concurrency 2 in bench/pool_scaling), a p95 objective of 250 ms, readings every 5 s as
the live agent's default; once with a 30 s start-up delay (a container) and once with 120 s (a VM). Settings
follow from those parameters only (loadpilot.sim.autoscale_setup), never from these traces.

Then, because four days are few and most violations happen on quiet days, the same on every day of both files
(the per-second day and each whole day of the per-minute trace it does not overlap), for target (with and
without burst memory), predictive, HPA and KPA, in as many processes as there are cores. To show how much the
result hangs on a few days, the totals are also given without the day HPA did worst, and for each half of the
days (alternate days).

The target: our best policy has at most 0.5x HPA's SLO-violation time at no more worker-seconds.
CPU-only and deterministic.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import RESULTS, ROOT, write_results
from loadpilot.sim.autoscale import simulate, summarize
from loadpilot.sim.autoscale_setup import OURS, POLICY_NAMES, SimSetup
from loadpilot.sim.pool_model import PoolParams
from loadpilot.sim.report import describe_check, target_check
from loadpilot.sim.traces import Trace, load_trace

TRACES = ROOT.parent / "shared" / "data" / "traces"
STARTUPS_S = (30.0, 120.0)
BUSIEST_DAYS = 3
DAY_S = 86_400
COLUMNS = [
    "trace",
    "start-up s",
    "policy",
    "SLO-violation s",
    "worker-s",
    "mean workers",
    "actions",
    "θU %",
    "θO %",
    "τU %",
    "τO %",
    "jitter /h",
    "dropped %",
]


def _whole_days(trace: Trace) -> list[tuple[str, Trace]]:
    """Every whole UTC day of a per-minute trace, in date order."""
    per_day = int(DAY_S / trace.period_s)
    first = int((DAY_S - trace.start % DAY_S) % DAY_S / trace.period_s)  # the first midnight
    starts = [trace.start + b * trace.period_s for b in range(first, len(trace.counts) - per_day + 1, per_day)]
    return [(f"per minute {dt.datetime.fromtimestamp(s, dt.UTC):%Y-%m-%d}", trace.slice(s, DAY_S)) for s in starts]


def _busiest(days: list[tuple[str, Trace]]) -> list[tuple[str, Trace]]:
    """The busiest of `days`, by requests, in date order."""
    chosen = sorted(days, key=lambda d: float(np.sum(d[1].counts)), reverse=True)[:BUSIEST_DAYS]
    return sorted(chosen, key=lambda d: d[1].start)


def _not_overlapping(days: list[tuple[str, Trace]], other: Trace) -> list[tuple[str, Trace]]:
    """The days that share no time with `other` (so the same traffic is counted once)."""
    end = other.start + other.duration_s
    return [(label, day) for label, day in days if day.start + day.duration_s <= other.start or day.start >= end]


# Every day: (row label, policy, burst memory or None for the simulator's default). Target tracking also runs
# without burst memory, to show what the memory does.
EVERY_DAY_RUNS = (
    ("target", "target", None),
    ("target, no burst memory", "target", 0.0),
    ("predictive", "predictive", None),
    ("hpa", "hpa", None),
    ("kpa", "kpa", None),
)


def _simulate_day(job: tuple[str, Trace, float, str, str, float | None]) -> dict[str, Any]:
    """One policy on one day at one start-up delay (runs in a worker process)."""
    label, trace, startup, row, policy, burst_memory_s = job
    setup = SimSetup(params=PoolParams(startup_s=startup))
    if burst_memory_s is not None:
        setup = replace(setup, burst_memory_s=burst_memory_s)
    summary = summarize(simulate(policy, trace.replay(), setup, trace.start), setup)
    return {"trace": label, "startup_s": startup, **summary, "policy": row}


def _multiples(mine: dict[str, float], hpa: dict[str, float]) -> str:
    time_x = mine["slo_violation_s"] / hpa["slo_violation_s"] if hpa["slo_violation_s"] else float("nan")
    return f"{time_x:.2f}, {mine['worker_s'] / hpa['worker_s']:.3f}"


def _every_day(days: list[tuple[str, Trace]]) -> tuple[list[str], dict[str, Any]]:
    """Target (with and without burst memory), predictive, HPA and KPA on every day: a Markdown table of totals
    (all days, without HPA's worst day, and each half of the days, as multiples of HPA's) and the target
    check on the totals of all days and without HPA's worst day."""
    jobs = [(label, trace, startup, *run) for startup in STARTUPS_S for label, trace in days for run in EVERY_DAY_RUNS]
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        results = list(pool.map(_simulate_day, jobs, chunksize=8))
    halves = {label: ("first half", "second half")[i % 2] for i, (label, _) in enumerate(days)}
    worst = {
        startup: max(
            (r for r in results if r["policy"] == "hpa" and r["startup_s"] == startup),
            key=lambda r: r["slo_violation_s"],
        )["trace"]
        for startup in STARTUPS_S
    }
    totals: dict[tuple[float, str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for r in results:
        parts = ["all", halves[r["trace"]]] + (["without"] if r["trace"] != worst[r["startup_s"]] else [])
        for part in parts:
            for key in ("slo_violation_s", "worker_s"):
                totals[(r["startup_s"], part, r["policy"])][key] += r[key]
    rows = [row for row, _, _ in EVERY_DAY_RUNS]
    lines = [
        f"Every day ({len(days)}: the per-second day and each whole day of the per-minute trace it does not overlap), "
        "totals; then SLO-violation time and worker-seconds as multiples of HPA's, over all days, without the day "
        "HPA did worst, and over each half of the days (alternate days, the per-second day in the first):",
        "",
        "| start-up s | policy | SLO-violation s | worker-s | all days x HPA | without HPA's worst day | first half "
        "| second half |",
        "|---|---|---|---|---|---|---|---|",
    ]
    checks: dict[str, Any] = {}
    for startup in STARTUPS_S:
        for row in rows:
            whole = totals[(startup, "all", row)]
            multiples = [
                _multiples(totals[(startup, part, row)], totals[(startup, part, "hpa")])
                for part in ("all", "without", "first half", "second half")
            ]
            lines.append(
                f"| {startup:g} | {row} | {whole['slo_violation_s']:,.0f} | {whole['worker_s']:,.0f} | "
                + " | ".join(multiples)
                + " |"
            )
        for part in ("all", "without"):
            ours = [{"policy": r, **totals[(startup, part, r)]} for r in ("target", "predictive", "hpa")]
            checks[f"{startup:g} s, {'every day' if part == 'all' else 'without ' + worst[startup]}"] = target_check(
                ours
            )
    lines += [
        "",
        "Target check on these totals (ours: target and predictive, each with burst memory; cells: time, cost):",
    ]
    kept = ("trace", "startup_s", "policy", "slo_violation_s", "worker_s", "actions")
    return lines, {"checks": checks, "worst_hpa_day": worst, "days": [{k: r[k] for k in kept} for r in results]}


def _row(trace: str, startup: float, s: dict[str, Any]) -> dict[str, Any]:
    return {
        "trace": trace,
        "start-up s": int(startup),
        "policy": s["policy"],
        "SLO-violation s": int(s["slo_violation_s"]),
        "worker-s": int(s["worker_s"]),
        "mean workers": round(s["mean_workers"], 1),
        "actions": s["actions"],
        "θU %": round(s["theta_u_pct"], 3),
        "θO %": round(s["theta_o_pct"], 1),
        "τU %": round(s["tau_u_pct"], 2),
        "τO %": round(s["tau_o_pct"], 1),
        "jitter /h": round(s["jitter_per_h"], 1),
        "dropped %": round(s["dropped_pct"], 3),
    }


def _ratios(per_policy: dict[str, dict[str, float]]) -> str:
    """Each of our policies' SLO-violation time and worker-seconds as multiples of HPA's."""
    hpa = per_policy["hpa"]
    parts = []
    for name in OURS:
        mine = per_policy[name]
        time_ratio = f"{mine['slo_violation_s'] / hpa['slo_violation_s']:.2f}x" if hpa["slo_violation_s"] else "n/a"
        parts.append(f"{name} {time_ratio} the time at {mine['worker_s'] / hpa['worker_s']:.3f}x the cost")
    return "; ".join(parts)


def run() -> Path:
    """Simulate every policy on every trace and start-up delay; write the table and the target checks."""
    rows: list[dict[str, Any]] = []
    checks: list[dict[str, Any]] = []
    totals: dict[float, dict[str, dict[str, float]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(float)))
    began = time.monotonic()
    per_second = ("per second day 1", load_trace(TRACES / "wc98_per_second_day1.csv"))
    whole_days = _whole_days(load_trace(TRACES / "wc98_per_minute.csv"))
    traces = [per_second, *_busiest(whole_days)]
    days = [per_second, *_not_overlapping(whole_days, per_second[1])]
    for startup in STARTUPS_S:
        setup = SimSetup(params=PoolParams(startup_s=startup))
        for label, trace in traces:
            rates = trace.replay()
            summaries = [summarize(simulate(name, rates, setup, trace.start), setup) for name in POLICY_NAMES]
            rows += [_row(label, startup, s) for s in summaries]
            check = target_check(summaries)
            checks.append({"trace": label, "startup_s": startup, **(check or {})})
            for s in summaries:
                for key in ("slo_violation_s", "worker_s"):
                    totals[startup][s["policy"]][key] += s[key]
    overall = {
        startup: target_check([{"policy": p, **v} for p, v in per_policy.items()])
        for startup, per_policy in totals.items()
    }
    every_day, every_day_data = _every_day(days)
    setup = SimSetup()
    worst = max(100 * r["SLO-violation s"] / DAY_S for r in rows if r["policy"] != "static")
    hpa_worst = max(100 * r["SLO-violation s"] / DAY_S for r in rows if r["policy"] == "hpa")
    notes = [
        f"Pool: workers of {setup.params.capacity:g} requests/s, {setup.params.service_s * 1000:g} ms per request, "
        f"{setup.params.slots} at once; p95 objective {setup.slo_s * 1000:g} ms, met up to "
        f"{setup.per_worker_at_slo:.1f} requests/s per worker (the demand for the elasticity metrics, on the load "
        f"averaged over {setup.demand_window_s:g} s); drain {setup.params.drain_s:g} s; requests waiting over "
        f"{setup.params.queue_limit_s:g} s are dropped; readings every {setup.sample_s:g} s; every CPU target "
        f"{setup.target:g}. Start-up delay as in the table.",
        "Target (ours <= 0.5x HPA's SLO-violation time at no more worker-seconds), per trace:",
        *(
            f"- {c['trace']}, start-up {c['startup_s']:g} s: {describe_check(c if 'met' in c else None)}"
            for c in checks
        ),
        "The four traces together:",
        *(f"- start-up {s:g} s: {describe_check(c)}" for s, c in overall.items()),
        *(f"- start-up {s:g} s, each of ours against HPA: {_ratios(per_policy)}" for s, per_policy in totals.items()),
        "",
        *every_day,
        "",
        *(f"- start-up {s}: {describe_check(c)}" for s, c in every_day_data["checks"].items()),
        "",
        f"Scale: the worst autoscaler spent {worst:.2f} % of a day above the objective, HPA at most {hpa_worst:.2f} %.",
        "SLO-violation s: simulated seconds whose p95 latency exceeded the objective. worker-s: seconds of every "
        "worker starting, ready or draining. θU/θO: under/over-provisioning accuracy, τU/τO: timeshare, "
        "jitter: supply changes minus demand changes per hour (SPEC RG / BUNGEE metrics; loadpilot.sim.elasticity).",
        "Model: loadpilot.sim.pool_model (a fluid queue with an M/M/c waiting-time tail per worker); policies' "
        "settings: loadpilot.sim.autoscale_setup.",
        f"Run: `.venv/bin/python -m bench autoscale_sim` ({time.monotonic() - began:.0f} s here).",
    ]
    path = write_results("autoscale_sim", "Autoscaling policies on WC98 (simulated)", COLUMNS, rows, notes)
    data = json.loads((RESULTS / "autoscale_sim.json").read_text())
    data["target_checks"] = checks
    data["target_overall"] = {str(k): v for k, v in overall.items()}
    data["every_day"] = every_day_data
    data["pool"] = {"capacity": setup.params.capacity, "service_s": setup.params.service_s, "slo_s": setup.slo_s}
    (RESULTS / "autoscale_sim.json").write_text(json.dumps(data, indent=2) + "\n")
    return path
