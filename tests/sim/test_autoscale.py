"""End to end: the policies drive a simulated pool through the same decide_scale a controller calls."""

from __future__ import annotations

import numpy as np
import pytest

from loadpilot.model import Decision, ScaleTo
from loadpilot.sim.autoscale import simulate, summarize
from loadpilot.sim.autoscale_setup import OURS, POLICY_NAMES, SimSetup, settings_for
from loadpilot.sim.pool_model import PoolParams
from loadpilot.sim.report import target_check
from loadpilot.sim.traces import load_trace
from tests.sim.traces_data import PER_SECOND, need

SETUP = SimSetup()


@pytest.fixture(scope="module")
def wc98_slice() -> tuple[float, np.ndarray]:
    """Two hours of the WC98 per-second day, from 18:00 (the evening's rise)."""
    trace = load_trace(need(PER_SECOND)).slice(start=load_trace(PER_SECOND).start + 20 * 3600, duration_s=7200)
    return trace.start, trace.replay()


def test_every_policy_on_a_slice_of_wc98(wc98_slice: tuple[float, np.ndarray]) -> None:
    start, rates = wc98_slice
    summaries = {}
    for name in POLICY_NAMES:
        run = simulate(name, rates, SETUP, start)
        summaries[name] = summarize(run, SETUP)
        assert len(run.ready) == len(rates) == 7200
        for decision in run.decisions:
            assert isinstance(decision, Decision) and decision.reason.startswith(name)
            assert all(isinstance(a, ScaleTo) and a.pool == "sim" for a in decision.actions)
    static = summaries["static"]
    assert static["slo_violation_s"] == 0 and static["actions"] == 0
    for name in POLICY_NAMES:
        if name != "static":
            assert summaries[name]["worker_s"] < static["worker_s"], name
            assert summaries[name]["actions"] > 0, name
            assert summaries[name]["slo_violation_pct"] < 5.0, name
    check = target_check(list(summaries.values()))
    assert check is not None and check["best"] in OURS


def test_the_run_is_deterministic(wc98_slice: tuple[float, np.ndarray]) -> None:
    start, rates = wc98_slice
    first = simulate("predictive", rates[:1800], SETUP, start)
    second = simulate("predictive", rates[:1800], SETUP, start)
    assert np.array_equal(first.ready, second.ready) and np.array_equal(first.p95_s, second.p95_s)
    assert [d.reason for d in first.decisions] == [d.reason for d in second.decisions]


def test_decisions_come_every_interval_at_most() -> None:
    rates = np.concatenate([np.full(600, 300.0), np.linspace(300, 3000, 1200), np.full(600, 3000.0)])
    for name in ("target", "hpa", "kpa"):
        run = simulate(name, rates, SETUP)
        times = [d.time for d in run.decisions]
        gaps = np.diff(times)
        assert len(times) > 1 and np.all(gaps >= run.settings.interval_s - 1e-9), name


def test_predictive_scales_ahead_of_a_steady_rise() -> None:
    setup = SimSetup(params=PoolParams(startup_s=120.0))
    rates = np.concatenate([np.full(900, 300.0), np.linspace(300, 3000, 1800), np.full(900, 3000.0)])
    target = summarize(simulate("target", rates, setup), setup)
    predictive = summarize(simulate("predictive", rates, setup), setup)
    assert predictive["slo_violation_s"] < target["slo_violation_s"]
    assert predictive["theta_u_pct"] <= target["theta_u_pct"]


def test_settings_follow_from_the_pool() -> None:
    setup = SimSetup(params=PoolParams(startup_s=60.0), sample_s=5.0)
    predictive = settings_for("predictive", setup, 10)
    assert predictive.horizon_s == 70.0 and predictive.stabilisation_down_s == 130.0  # recovery time + 1 minute
    assert predictive.burst_memory_s == 1800.0
    assert predictive.interval_s == 10.0 and predictive.hold_while_scaling == "in"
    target = settings_for("target", setup, 10)
    assert target.interval_s == 5.0 and target.stabilisation_down_s == 125.0  # at every reading
    assert target.burst_memory_s == 1800.0
    step = settings_for("step", setup, 10)
    assert step.interval_s == 10.0 and step.hold_while_scaling == "all"  # every second reading
    assert step.cooldown_down_s == 70.0 and step.stabilisation_down_s == 0.0 and step.burst_memory_s == 0.0
    assert settings_for("hpa", setup, 10).stabilisation_down_s == 300.0
    assert settings_for("static", setup, 10).size == 10
    with pytest.raises(ValueError, match="unknown policy"):
        settings_for("magic", setup, 10)


def test_bad_setups() -> None:
    with pytest.raises(ValueError, match="latency objective"):
        SimSetup(slo_s=0.01)
    with pytest.raises(ValueError, match="target"):
        SimSetup(target=1.5)
    with pytest.raises(ValueError, match="burst_memory_s"):
        SimSetup(burst_memory_s=-1.0)


@pytest.mark.parametrize("policy", ["target", "predictive"])
def test_burst_memory_meets_a_returning_burst_with_workers_already_there(policy: str) -> None:
    # A quiet pool (20 requests/s, one worker) and a minute at 200 requests/s every 10 minutes, for an hour.
    rates = np.full(3600, 20.0)
    for begin in range(300, 3600, 600):
        rates[begin : begin + 60] = 200.0
    remembering = summarize(simulate(policy, rates, SETUP), SETUP)
    forgetting_setup = SimSetup(burst_memory_s=0.0)
    forgetting = summarize(simulate(policy, rates, forgetting_setup), forgetting_setup)
    # Without memory every burst is met a start-up delay late; with it, only the first.
    assert forgetting["slo_violation_s"] >= 5 * 30
    assert remembering["slo_violation_s"] <= forgetting["slo_violation_s"] / 3
    # The price: the burst's workers kept between the bursts.
    assert remembering["worker_s"] > forgetting["worker_s"]
