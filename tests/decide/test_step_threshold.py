"""Step adjustments (change, exact, percent) and thresholds with "k of the last n evaluations"."""

from __future__ import annotations

import pytest

from loadpilot.config import StepRule
from loadpilot.decide.scaling import step, threshold
from loadpilot.decide.scaling.bands import apply_step, band_of, describe
from loadpilot.decide.scaling.threshold import ThresholdState
from tests.decide.views import settings, view

STEPS = [
    StepRule(lower=1.5, adjustment=50, type="percent"),
    StepRule(lower=1.1, upper=1.5, adjustment=1),
    StepRule(lower=0.5, upper=0.8, adjustment=-1),
    StepRule(upper=0.5, adjustment=2, type="exact"),
]


@pytest.mark.parametrize(
    ("ratio", "band"), [(2.0, 0), (1.5, 0), (1.49, 1), (1.1, 1), (1.0, None), (0.79, 2), (0.5, 2), (0.2, 3)]
)
def test_bands_are_lower_inclusive_upper_exclusive(ratio: float, band: int | None) -> None:
    assert band_of(ratio, STEPS) == band


@pytest.mark.parametrize(
    ("current", "rule", "expected"),
    [
        (4, StepRule(lower=1, adjustment=2), 6),  # change in capacity
        (4, StepRule(lower=1, adjustment=-5), 0),  # never below 0
        (4, StepRule(lower=1, adjustment=9, type="exact"), 9),  # exact capacity
        (10, StepRule(lower=1, adjustment=15, type="percent"), 11),  # +1.5 rounds down to +1 (AWS)
        (10, StepRule(lower=1, adjustment=5, type="percent"), 11),  # +0.5 rounds up to +1
        (10, StepRule(lower=1, adjustment=-15, type="percent"), 9),  # -1.5 rounds toward 0: -1
        (10, StepRule(lower=1, adjustment=-5, type="percent"), 9),  # -0.5: -1
        (10, StepRule(lower=1, adjustment=50, type="percent"), 15),
        (10, StepRule(lower=1, adjustment=10, type="percent", min_adjustment=3), 13),  # at least 3
        (0, StepRule(lower=1, adjustment=50, type="percent"), 1),  # from nothing, one
    ],
)
def test_step_adjustments(current: int, rule: StepRule, expected: int) -> None:
    assert apply_step(current, rule) == expected


def test_describe() -> None:
    assert [describe(r) for r in STEPS] == ["[1.5, inf): +50%", "[1.1, 1.5): +1", "[0.5, 0.8): -1", "[0, 0.5): =2"]


def test_step_applies_the_band_of_the_current_value() -> None:
    check = settings(policy="step", steps=STEPS)
    cases = [(1.4, 15), (0.84, 11), (0.63, 10), (0.49, 9), (0.2, 2)]  # cpu -> size, from 10 workers at 0.7
    for cpu, expected in cases:
        rec, _ = step.recommend(view(desired=10, cpu=cpu), check, None, 0.0)
        assert rec is not None and rec.size == expected, (cpu, rec)
    rec, _ = step.recommend(view(desired=10, cpu=0.7), check, None, 0.0)
    assert rec is not None and rec.size == 10 and "no step" in rec.reason


def test_threshold_fires_only_after_k_of_the_last_n() -> None:
    check = settings(policy="threshold", steps=STEPS, k=3, n=5)
    state: object | None = None
    sizes = []
    for cpu in [0.84, 0.7, 0.84, 0.7, 0.84]:  # in band [1.1, 1.5) at evaluations 1, 3 and 5
        rec, state = threshold.recommend(view(desired=10, cpu=cpu), check, state, 0.0)
        assert rec is not None
        sizes.append(rec.size)
    assert sizes == [10, 10, 10, 10, 11]
    assert isinstance(state, ThresholdState) and len(state.ratios) == 5


def test_threshold_ignores_a_single_spike_and_forgets_beyond_n() -> None:
    check = settings(policy="threshold", steps=STEPS, k=2, n=3)
    state: object | None = None
    for cpu in [1.4, 0.7, 0.7, 1.4, 0.7]:
        rec, state = threshold.recommend(view(desired=10, cpu=cpu), check, state, 0.0)
        assert rec is not None and rec.size == 10, rec.reason


def test_threshold_safest_band_wins_when_several_fire() -> None:
    check = settings(policy="threshold", steps=STEPS, k=2, n=4)
    state: object | None = None
    for cpu in [0.5, 0.5, 0.84, 0.84]:  # the scale-in band and the +1 band both held 2 of 4
        rec, state = threshold.recommend(view(desired=10, cpu=cpu), check, state, 0.0)
    assert rec is not None and rec.size == 11 and "safest" in rec.reason


def test_threshold_abstains_without_a_metric_and_keeps_its_history() -> None:
    state = ThresholdState((1.2, 1.2))
    rec, new_state = threshold.recommend(view(cpu=None), settings(policy="threshold"), state, 0.0)
    assert rec is None and new_state == state
