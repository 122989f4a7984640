"""The HPA baseline reproduces the Kubernetes documentation's algorithm and default behaviour."""

from __future__ import annotations

from loadpilot.decide.scaling import ScalingState, hpa, presets
from tests.decide.views import decide, settings, view


def hpa_check(target: float = 0.1) -> object:
    return settings(policy="hpa", target=target, tolerance=0.1)


def test_documented_examples_double_and_halve() -> None:
    # "if the current metric value is 200m, and the desired value is 100m, the number of replicas will be
    # doubled ... If the current value is instead 50m, you'll halve the number of replicas"
    check = settings(policy="hpa", target=0.1)
    rec, _ = hpa.recommend(view(desired=4, cpu=0.2), check, None, 0.0)
    assert rec is not None and rec.size == 8
    rec, _ = hpa.recommend(view(desired=4, cpu=0.05), check, None, 0.0)
    assert rec is not None and rec.size == 2


def test_no_scaling_within_the_tolerance() -> None:
    check = settings(policy="hpa", target=0.1)
    for cpu in (0.091, 0.105, 0.11):
        rec, _ = hpa.recommend(view(desired=4, cpu=cpu), check, None, 0.0)
        assert rec is not None and rec.size == 4, cpu


def test_unready_pods_count_as_zero_on_a_scale_up() -> None:
    check = settings(policy="hpa", target=0.5)
    # 4 ready at 0.75 (1.5x), 2 unready: 4 x 1.5 / 6 = 1.0, within tolerance: keep the 6 asked for.
    rec, _ = hpa.recommend(view(desired=6, size=6, ready=4, cpu=0.75), check, None, 0.0)
    assert rec is not None and rec.size == 6 and "unready" in rec.reason
    # 4 ready at 1.0 (2x), 2 unready: 8 / 6 = 1.33 over 6 pods: ceil(8) = 8.
    rec, _ = hpa.recommend(view(desired=6, size=6, ready=4, cpu=1.0), check, None, 0.0)
    assert rec is not None and rec.size == 8
    # On a scale-down the unready pods are not rebalanced: 4 ready at 0.25 -> ceil(4 x 0.5) = 2.
    rec, _ = hpa.recommend(view(desired=6, size=6, ready=4, cpu=0.25), check, None, 0.0)
    assert rec is not None and rec.size == 2


def test_default_behaviour_limits_scale_up_to_double_or_plus_four_per_sync() -> None:
    config = presets.hpa("cpu", 0.1)
    assert config.interval_s == 15.0 and config.stabilisation_down_s == 300.0 and config.tolerance == 0.1
    decision, _ = decide(view(desired=2, cpu=1.0), config, None, 0.0)  # asks for 20
    assert [a.size for a in decision.actions] == [6]  # 2 + max(2, 4)
    decision, _ = decide(view(desired=8, cpu=1.0), config, None, 0.0)  # asks for 80 (max 20)
    assert [a.size for a in decision.actions] == [16]  # 8 + max(8, 4)


def test_default_behaviour_scales_down_to_the_highest_recommendation_of_300_s() -> None:
    config = presets.hpa("cpu", 0.5)
    state: ScalingState | None = None
    sizes = []
    for t, cpu in [(0, 0.5), (15, 0.25), (150, 0.25), (285, 0.25), (315, 0.25)]:
        decision, state = decide(view(desired=10, cpu=cpu), config, state, float(t))
        sizes.append(decision.actions[0].size if decision.actions else 10)
    assert sizes == [10, 10, 10, 10, 5]
