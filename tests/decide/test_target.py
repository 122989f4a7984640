"""Target tracking: desired = ceil(ready x current / target), with a tolerance band."""

from __future__ import annotations

import pytest

from loadpilot.decide.scaling import target
from loadpilot.decide.scaling.recommendation import ceil_size
from tests.decide.views import settings, view


@pytest.mark.parametrize(
    ("ready", "cpu", "expected"),
    [
        (4, 1.05, 6),  # 1.5x the target: 4 x 1.5
        (4, 0.35, 2),  # half the target: half the workers
        (3, 0.9, 4),  # ceil(3 x 0.9 / 0.7) = ceil(3.86)
        (10, 0.14, 2),
    ],
)
def test_sizes_for_the_target(ready: int, cpu: float, expected: int) -> None:
    rec, _ = target.recommend(view(desired=ready, cpu=cpu), settings(), None, 0.0)
    assert rec is not None and rec.size == expected
    assert rec.policy == "target" and "target" in rec.reason and f"-> {expected}" in rec.reason


@pytest.mark.parametrize("cpu", [0.63, 0.7, 0.77])
def test_keeps_the_size_within_the_tolerance_band(cpu: float) -> None:
    rec, _ = target.recommend(view(desired=5, cpu=cpu), settings(tolerance=0.1), None, 0.0)
    assert rec is not None and rec.size == 5 and "within 10%" in rec.reason


def test_just_outside_the_band_it_moves() -> None:
    rec, _ = target.recommend(view(desired=10, cpu=0.78), settings(tolerance=0.1), None, 0.0)
    assert rec is not None and rec.size == 12  # ceil(10 x 0.78 / 0.7) = ceil(11.14)


def test_counts_ready_workers_and_keeps_the_desired_size_when_in_band() -> None:
    # 6 asked for, 4 ready at exactly the target: the 2 starting ones are already on their way.
    rec, _ = target.recommend(view(desired=6, size=6, ready=4, cpu=0.7), settings(), None, 0.0)
    assert rec is not None and rec.size == 6
    rec, _ = target.recommend(view(desired=6, size=6, ready=4, cpu=1.4), settings(), None, 0.0)
    assert rec is not None and rec.size == 8  # 4 ready x 2.0


def test_other_metrics() -> None:
    rps = view(desired=4, rps=400.0)
    rec, _ = target.recommend(rps, settings(metric="rps_per_worker", target=50.0), None, 0.0)
    assert rec is not None and rec.size == 8
    busy = view(desired=4, in_flight=12.0)
    rec, _ = target.recommend(busy, settings(metric="in_flight", target=1.0), None, 0.0)
    assert rec is not None and rec.size == 12


def test_abstains_without_a_metric_or_ready_workers() -> None:
    assert target.recommend(view(cpu=None), settings(), None, 0.0)[0] is None
    assert target.recommend(view(desired=2, size=2, ready=0), settings(), None, 0.0)[0] is None


def test_floating_point_noise_never_adds_a_worker() -> None:
    assert ceil_size(3 * 0.7 / 0.7) == 3
    assert ceil_size(3.0000000001) == 3
    assert ceil_size(3.01) == 4
    assert ceil_size(-1.0) == 0
