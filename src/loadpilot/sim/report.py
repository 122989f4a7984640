"""The comparison of policies on one trace: its rows, the target check against HPA, and a JSON document."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from loadpilot.sim.autoscale_setup import OURS, SimSetup

# (key in a summary, column title, how to show it)
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("policy", "policy", "{}"),
    ("slo_violation_s", "SLO viol. s", "{:,.0f}"),
    ("worker_s", "worker-s", "{:,.0f}"),
    ("mean_workers", "workers", "{:.1f}"),
    ("actions", "actions", "{:,}"),
    ("theta_u_pct", "θU %", "{:.2f}"),
    ("theta_o_pct", "θO %", "{:.1f}"),
    ("tau_u_pct", "τU %", "{:.2f}"),
    ("tau_o_pct", "τO %", "{:.1f}"),
    ("jitter_per_h", "jitter /h", "{:+.1f}"),
    ("dropped_pct", "dropped %", "{:.2f}"),
)
BASELINE = "hpa"
TARGET_RATIO = 0.5


def cells(summary: dict[str, Any]) -> list[str]:
    """A summary's values as the table shows them."""
    return [fmt.format(summary[key]) for key, _, fmt in COLUMNS]


def target_check(summaries: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """Whether our best policy has at most half HPA's SLO-violation time at no more worker-seconds.

    Our best is the one with the least violation among ours that cost no more than HPA (or, when none does,
    the one of ours with the least, which then fails on cost). None when HPA or none of ours is in the comparison.
    """
    by_name = {s["policy"]: s for s in summaries}
    hpa = by_name.get(BASELINE)
    ours = [s for s in summaries if s["policy"] in OURS]
    if hpa is None or not ours:
        return None
    affordable = [s for s in ours if s["worker_s"] <= hpa["worker_s"]]
    best = min(affordable or ours, key=lambda s: (s["slo_violation_s"], s["worker_s"]))
    allowed = TARGET_RATIO * hpa["slo_violation_s"]
    met = best["worker_s"] <= hpa["worker_s"] and best["slo_violation_s"] <= allowed
    ratio = best["slo_violation_s"] / hpa["slo_violation_s"] if hpa["slo_violation_s"] else None
    return {
        "met": met,
        "best": best["policy"],
        "violation_ratio": ratio,
        "worker_s_ratio": best["worker_s"] / hpa["worker_s"] if hpa["worker_s"] else None,
        "rule": f"best of ours <= {TARGET_RATIO}x HPA's SLO-violation time at <= HPA's worker-seconds",
    }


def describe_check(check: dict[str, Any] | None) -> str:
    """The target check in one line."""
    if check is None:
        return "target check: needs hpa and at least one of our policies in the comparison"
    verdict = "met" if check["met"] else "NOT met"
    if check["violation_ratio"] is None:
        versus = "no SLO violation, as HPA" if check["met"] else "SLO violations where HPA had none"
    else:
        versus = f"{check['violation_ratio']:.2f}x HPA's SLO-violation time"
    cost = f"{check['worker_s_ratio']:.2f}x its worker-seconds"
    return f"target {verdict}: best of ours is {check['best']} with {versus}, at {cost}"


def document(trace: dict[str, Any], setup: SimSetup, summaries: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The whole comparison as one JSON-ready document."""
    return {
        "trace": trace,
        "pool": {
            **asdict(setup.params),
            "slots": setup.params.slots,
            "slo_s": setup.slo_s,
            "sample_s": setup.sample_s,
            "step_s": setup.step_s,
            "target": setup.target,
            "per_worker_at_slo": setup.per_worker_at_slo,
            "burst_memory_s": setup.burst_memory_s,
        },
        "results": list(summaries),
        "target_check": target_check(summaries),
    }
