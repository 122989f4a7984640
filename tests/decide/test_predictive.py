"""Predictive scaling: Holt's trend over the demand, sizing ahead of a rise, never below target tracking."""

from __future__ import annotations

import random

from loadpilot.decide.scaling import predictive, target
from loadpilot.decide.scaling.forecast import Holt, observe
from tests.decide.views import settings, view


def test_holt_learns_a_linear_trend() -> None:
    state: Holt | None = None
    for i in range(30):
        state = observe(state, 100.0 + 2.0 * (10 * i), 10.0 * i)  # +2 per second, observed every 10 s
    assert state is not None
    assert abs(state.trend - 2.0) < 0.01
    assert abs(state.forecast(50.0) - (100 + 2 * 290 + 2 * 50)) < 1.0
    assert state.rise(50.0) > 90.0


def test_holt_sees_no_rise_in_a_flat_or_falling_series() -> None:
    flat: Holt | None = None
    falling: Holt | None = None
    for i in range(20):
        flat = observe(flat, 100.0, 10.0 * i)
        falling = observe(falling, 500.0 - 10.0 * i, 10.0 * i)
    assert flat is not None and falling is not None
    assert flat.rise(60.0) == 0.0 and falling.rise(60.0) == 0.0


def test_holt_does_not_count_the_same_reading_twice() -> None:
    state = observe(None, 10.0, 5.0)
    assert observe(state, 99.0, 5.0) is state
    assert observe(state, 99.0, 4.0) is state


def test_holt_does_not_chase_noise() -> None:
    rng = random.Random(7)
    state: Holt | None = None
    rises = []
    for i in range(200):
        state = observe(state, 100.0 + rng.gauss(0, 5.0), 10.0 * i)
        rises.append(state.rise(60.0))
    # Without a trend, the forecast adds nothing most of the time, and never much.
    assert sum(r == 0.0 for r in rises) > 0.8 * len(rises)
    assert max(rises) < 15.0


def ramp(check_horizon: float = 60.0) -> list[tuple[int, int]]:
    """(target's size, predictive's size) along a steady rise of CPU on 10 workers, one reading per 10 s."""
    check = settings(policy="predictive", horizon_s=check_horizon)
    state: object | None = None
    sizes = []
    for i in range(12):
        v = view(desired=10, cpu=0.55 + 0.02 * i, observed_at=10.0 * i)
        floor, _ = target.recommend(v, check, None, v.observed_at)
        rec, state = predictive.recommend(v, check, state, v.observed_at)
        assert floor is not None and rec is not None
        sizes.append((floor.size, rec.size))
    return sizes


def test_scales_ahead_of_a_rise_and_never_below_target() -> None:
    sizes = ramp()
    assert all(p >= t for t, p in sizes)
    # CPU 0.71..0.75 is within target tracking's band (it keeps 10); predictive already adds workers.
    ahead = [(t, p) for t, p in sizes[8:] if p > t]
    assert ahead, sizes
    assert sizes[-1][1] > 10


def test_a_longer_horizon_scales_further_ahead() -> None:
    near = [p for _, p in ramp(check_horizon=20.0)]
    far = [p for _, p in ramp(check_horizon=120.0)]
    assert all(f >= n for n, f in zip(near, far, strict=True)) and sum(far) > sum(near)


def test_on_steady_load_it_is_target_tracking() -> None:
    check = settings(policy="predictive", horizon_s=120.0)
    state: object | None = None
    for i in range(20):
        v = view(desired=10, cpu=0.7 + (0.03 if i % 2 else -0.03), observed_at=10.0 * i)
        rec, state = predictive.recommend(v, check, state, v.observed_at)
        assert rec is not None and rec.size == 10, rec.reason


def test_a_growing_queue_counts_as_demand() -> None:
    check = settings(policy="predictive", horizon_s=0.0)
    first = view(desired=10, cpu=1.0, rps=1000.0, in_flight=100.0, observed_at=10.0)
    second = view(desired=10, cpu=1.0, rps=1000.0, in_flight=3100.0, observed_at=20.0)
    _, state = predictive.recommend(first, check, None, 10.0)
    rec, _ = predictive.recommend(second, check, state, 20.0)
    floor, _ = target.recommend(second, check, None, 20.0)
    # 10 cores busy, and 300 more requests/s than served (at 0.01 core each): 13 cores of demand.
    assert floor is not None and floor.size == 15
    assert rec is not None and rec.size == 19 and "predictive" in rec.reason


def test_abstains_like_target_without_a_metric() -> None:
    rec, _ = predictive.recommend(view(cpu=None), settings(policy="predictive"), None, 0.0)
    assert rec is None
