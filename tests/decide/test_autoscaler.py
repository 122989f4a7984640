"""decide_scale: evaluation every interval, the safest check, the guards, the reason and the inputs."""

from __future__ import annotations

from loadpilot.config import ScalingCheck
from loadpilot.decide.scaling import ScalingState
from loadpilot.model import ScaleTo
from tests.decide.views import decide, settings, view


def test_a_scale_carries_its_reason_and_inputs() -> None:
    decision, state = decide(view(desired=4, cpu=1.05), settings(), None, 100.0)
    assert decision.subject == "pool/web" and decision.time == 100.0
    assert decision.actions == (ScaleTo("web", 6, decision.reason),)
    assert decision.reason.startswith("target: cpu 1.05 per worker on 4 ready is 1.50x")
    assert decision.inputs["recommended"] == 6 and decision.inputs["decided"] == 6 and decision.inputs["cpu"] == 1.05
    assert state.evaluated_at == 100.0 and state.guard.last_up_at == 100.0


def test_no_action_when_the_size_stays() -> None:
    decision, _ = decide(view(desired=4, cpu=0.7), settings(), None, 0.0)
    assert decision.actions == () and "within" in decision.reason


def test_evaluates_once_per_interval() -> None:
    config = settings(interval_s=15.0)
    _, state = decide(view(cpu=0.7), config, None, 0.0)
    decision, same = decide(view(cpu=2.0), config, state, 10.0)
    assert decision.actions == () and decision.reason == "next evaluation in 5.0 s" and same is state
    decision, _ = decide(view(cpu=2.0), config, state, 15.0)
    assert decision.actions


def test_guard_notes_join_the_reason() -> None:
    decision, _ = decide(view(desired=4, cpu=7.0), settings(max_step_up=2), None, 0.0)
    assert decision.actions[0].size == 6
    assert decision.reason.endswith("; max step up 2: 40 -> 6") or "max step up 2" in decision.reason
    assert "bounds 1..20: 40 -> 20" in decision.reason


def test_several_checks_the_safest_wins() -> None:
    latency = ScalingCheck(policy="target", metric="latency_p95", target=0.2)
    config = settings(checks=[latency])
    # CPU asks to halve; latency at twice its target asks to double: the scale-out wins.
    decision, state = decide(view(desired=4, cpu=0.35, latency_p95=0.4), config, None, 0.0)
    assert decision.actions[0].size == 8 and "latency_p95" in decision.reason and "safest of 2" in decision.reason
    assert len(state.checks) == 2


def test_holds_without_metrics_or_with_stale_ones_but_restores_bounds() -> None:
    decision, _ = decide(view(cpu=None), settings(), None, 0.0)
    assert decision.actions == () and "no cpu metric" in decision.reason
    decision, _ = decide(view(cpu=2.0, observed_at=10.0), settings(), None, 200.0)
    assert decision.actions == () and "stale" in decision.reason
    decision, _ = decide(view(desired=30, cpu=None), settings(), None, 0.0)
    assert [a.size for a in decision.actions] == [20]


def test_pure_the_same_inputs_give_the_same_decision() -> None:
    state = ScalingState()
    first = decide(view(desired=4, cpu=1.05), settings(), state, 5.0)
    second = decide(view(desired=4, cpu=1.05), settings(), state, 5.0)
    assert first == second


def test_each_policy_runs_through_the_framework() -> None:
    for policy in ("target", "step", "threshold", "predictive", "hpa", "static"):
        decision, _ = decide(view(desired=4, cpu=1.4), settings(policy=policy, k=1, n=1), None, 0.0)
        assert decision.actions and decision.actions[0].size > 4, (policy, decision.reason)
        assert decision.reason.startswith(policy)
    decision, _ = decide(view(desired=4, in_flight=40.0), settings(policy="kpa", metric="in_flight"), None, 0.0)
    assert decision.actions[0].size > 4 and decision.reason.startswith("kpa")
