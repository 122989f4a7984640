"""The SPEC RG / BUNGEE elasticity metrics on a hand-computed example."""

from __future__ import annotations

import numpy as np
import pytest

from loadpilot.sim.elasticity import demand_workers, elasticity


def test_hand_computed_example() -> None:
    demand = np.array([2.0, 2.0, 2.0, 2.0])
    supply = np.array([1.0, 2.0, 3.0, 3.0])
    e = elasticity(demand, supply, dt=1.0)
    assert e.under_accuracy == pytest.approx(100 / 4 * (1 / 2))  # one step 1 short of 2
    assert e.over_accuracy == pytest.approx(100 / 4 * (1 / 2 + 1 / 2))  # two steps 1 over 2
    assert e.under_timeshare == pytest.approx(25.0)
    assert e.over_timeshare == pytest.approx(50.0)
    assert e.jitter_per_hour == pytest.approx((2 - 0) / (4 / 3600))  # supply changed twice, demand never


def test_a_perfect_autoscaler_scores_zero() -> None:
    demand = np.array([1.0, 3.0, 3.0, 5.0, 2.0])
    e = elasticity(demand, demand.copy(), dt=10.0)
    assert e.as_dict() == {
        "under_accuracy": 0.0,
        "over_accuracy": 0.0,
        "under_timeshare": 0.0,
        "over_timeshare": 0.0,
        "jitter_per_hour": 0.0,
    }


def test_lagging_supply_has_negative_jitter() -> None:
    demand = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    supply = np.array([1.0, 1.0, 1.0, 6.0, 6.0, 6.0])
    assert elasticity(demand, supply, dt=1.0).jitter_per_hour < 0


def test_demand_in_workers() -> None:
    assert demand_workers(np.array([0.0, 50.0, 100.0, 101.0]), 50.0).tolist() == [1.0, 1.0, 2.0, 3.0]
    smoothed = demand_workers(np.array([0.0, 0.0, 300.0, 0.0, 0.0]), 50.0, smooth_steps=3)
    assert smoothed.tolist() == [1.0, 2.0, 2.0, 2.0, 1.0]


def test_shapes_must_match() -> None:
    with pytest.raises(ValueError):
        elasticity(np.array([1.0]), np.array([1.0, 2.0]), 1.0)
