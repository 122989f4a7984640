"""The comparison's target check, its JSON document, and the self-contained chart."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from loadpilot.sim.autoscale import simulate
from loadpilot.sim.autoscale_setup import SimSetup
from loadpilot.sim.chart import render
from loadpilot.sim.report import describe_check, document, target_check


def summary(policy: str, violation: float, cost: float) -> dict[str, Any]:
    return {"policy": policy, "slo_violation_s": violation, "worker_s": cost}


def test_target_met_when_half_the_violation_at_no_more_cost() -> None:
    check = target_check([summary("hpa", 100, 1000), summary("target", 60, 900), summary("predictive", 40, 1000)])
    assert check is not None and check["met"] and check["best"] == "predictive"
    assert check["violation_ratio"] == 0.4 and check["worker_s_ratio"] == 1.0
    assert describe_check(check) == (
        "target met: best of ours is predictive with 0.40x HPA's SLO-violation time, at 1.00x its worker-seconds"
    )


def test_target_not_met_when_only_a_costlier_policy_is_better() -> None:
    check = target_check([summary("hpa", 100, 1000), summary("target", 90, 990), summary("predictive", 10, 1200)])
    assert check is not None and not check["met"] and check["best"] == "target"
    assert describe_check(check).startswith("target NOT met")


def test_target_when_hpa_had_no_violation() -> None:
    check = target_check([summary("hpa", 0, 1000), summary("target", 0, 990)])
    assert check is not None and check["met"] and check["violation_ratio"] is None
    assert "no SLO violation, as HPA" in describe_check(check)
    check = target_check([summary("hpa", 0, 1000), summary("target", 3, 990)])
    assert check is not None and not check["met"] and "where HPA had none" in describe_check(check)


def test_target_check_needs_hpa_and_ours() -> None:
    assert target_check([summary("kpa", 1, 1)]) is None
    assert "needs hpa" in describe_check(None)


def test_document_is_json() -> None:
    doc = document({"file": "x.csv"}, SimSetup(), [summary("hpa", 1, 2)])
    text = json.dumps(doc)
    assert json.loads(text)["pool"]["slots"] == 2 and doc["target_check"] is None


def test_chart_is_self_contained_and_escaped() -> None:
    rates = np.full(600, 500.0)
    run = simulate("target", rates, SimSetup())
    page = render("<script>alert(1)</script>", [run], np.full(600, 6.0), 0.25, notes=["a & b"])
    assert page.startswith("<!doctype html>") and page.count("<svg") == 2
    assert "<script>" not in page and "&lt;script&gt;" in page and "a &amp; b" in page
    assert "http" not in page and "src=" not in page
