"""The guard framework: bounds, stabilisation (rolling max), not-ready hold, cooldowns, largest step."""

from __future__ import annotations

from typing import Any

from loadpilot.decide.scaling.guards import GuardState, apply_guards, step_limit
from loadpilot.decide.scaling.recommendation import Recommendation
from loadpilot.model import PoolView
from tests.decide.views import settings, view


def guard(
    size: int, v: PoolView, state: GuardState | None = None, now: float = 100.0, **config: Any
) -> tuple[int, list[str], GuardState]:
    return apply_guards(v, Recommendation(size, "asked", "test"), settings(**config), state or GuardState(), now)


def test_bounds() -> None:
    assert guard(50, view(desired=10))[0] == 20
    assert guard(0, view(desired=10))[0] == 1
    _, notes, _ = guard(50, view(desired=10))
    assert notes == ["bounds 1..20: 50 -> 20"]


def test_stabilisation_keeps_the_highest_recommendation_of_the_window() -> None:
    config = {"stabilisation_down_s": 300.0}
    state = GuardState()
    v = view(desired=10)
    sizes = []
    for t, asked in [(0, 10), (60, 6), (120, 8), (180, 4), (330, 5), (400, 4), (500, 3)]:
        size, _, state = guard(asked, v, state, now=float(t), **config)
        sizes.append(size)
    # At 330 s the 10 of 0 s has left the window, the 8 of 120 s has not: the pool may go down to 8.
    assert sizes == [10, 10, 10, 10, 8, 8, 5]


def test_a_fresh_start_does_not_scale_in_within_the_first_window() -> None:
    size, notes, state = guard(3, view(desired=10), now=0.0, stabilisation_down_s=60.0)
    assert size == 10 and notes == ["stabilisation: highest recommendation in the last 60 s is 10"]
    assert guard(3, view(desired=10), state, now=61.0, stabilisation_down_s=60.0)[0] == 3


def test_stabilisation_does_not_delay_a_scale_out() -> None:
    state = GuardState(recommendations=((90.0, 3),))
    assert guard(15, view(desired=10), state, stabilisation_down_s=300.0)[0] == 15


def test_not_ready_hold_modes() -> None:
    starting = view(desired=10, size=10, ready=7)
    assert starting.scale_in_progress
    assert guard(6, starting, hold_while_scaling="in")[0] == 10
    assert guard(14, starting, hold_while_scaling="in")[0] == 14
    assert guard(14, starting, hold_while_scaling="all")[0] == 10
    assert guard(6, starting, hold_while_scaling="off")[0] == 6
    _, notes, _ = guard(6, starting, hold_while_scaling="in")
    assert notes == ["held: a scale is in progress (7 of 10 ready, 10 running)"]
    draining = view(desired=6, size=8, ready=6)
    assert draining.scale_in_progress and guard(9, draining, hold_while_scaling="all")[0] == 6


def test_the_hold_lasts_one_metrics_window_after_the_scale() -> None:
    state = guard(10, view(desired=10, size=10, ready=7), hold_while_scaling="all", now=100.0)[2]
    assert state.busy_at == 100.0
    settled = view(desired=10, window_s=15.0)
    assert guard(14, settled, state, now=110.0, hold_while_scaling="all")[0] == 10
    assert guard(14, settled, state, now=116.0, hold_while_scaling="all")[0] == 14


def test_failed_workers_do_not_hold_forever() -> None:
    assert not view(desired=5, size=4, ready=4, failed=1).scale_in_progress


def test_cooldowns_per_direction() -> None:
    after_up = GuardState(last_up_at=80.0)
    assert guard(14, view(desired=10), after_up, now=100.0, cooldown_up_s=30.0)[0] == 10
    assert guard(14, view(desired=10), after_up, now=111.0, cooldown_up_s=30.0)[0] == 14
    assert guard(6, view(desired=10), after_up, now=100.0, cooldown_up_s=30.0)[0] == 6
    assert guard(6, view(desired=10), after_up, now=100.0, cooldown_down_s=60.0)[0] == 10
    after_down = GuardState(last_down_at=80.0)
    assert guard(6, view(desired=10), after_down, now=100.0, cooldown_down_s=60.0)[0] == 10
    assert guard(6, view(desired=10), after_down, now=141.0, cooldown_down_s=60.0)[0] == 6
    assert guard(14, view(desired=10), after_down, now=100.0, cooldown_down_s=60.0)[0] == 14


def test_largest_step_is_the_larger_of_a_count_and_a_percentage() -> None:
    assert step_limit(2, 4, 100.0) == 4
    assert step_limit(10, 4, 100.0) == 10
    assert step_limit(10, 0, 0.0) is None
    assert guard(20, view(desired=2), max_step_up=4, max_step_up_pct=100.0)[0] == 6
    assert guard(20, view(desired=8), max_step_up=4, max_step_up_pct=100.0)[0] == 16
    assert guard(1, view(desired=10), max_step_down=2)[0] == 8
    assert guard(1, view(desired=10), max_step_down_pct=50.0)[0] == 5
    _, notes, _ = guard(20, view(desired=2), max_step_up=4, max_step_up_pct=100.0)
    assert notes == ["max step up 4: 20 -> 6"]


def test_bounds_beat_every_hold() -> None:
    below = view(desired=2, size=2, ready=1, min=3)
    assert guard(2, below, hold_while_scaling="all", cooldown_up_s=999.0)[0] == 3


def test_the_state_records_changes_and_the_window() -> None:
    _, _, state = guard(14, view(desired=10), now=50.0, stabilisation_down_s=60.0)
    assert state.last_up_at == 50.0 and state.last_down_at is None and state.started_at == 50.0
    assert state.recommendations == ((50.0, 10), (50.0, 14))  # a fresh start counts the current size too
    _, _, state = guard(6, view(desired=14), state, now=200.0, stabilisation_down_s=60.0)
    assert state.last_down_at == 200.0 and state.recommendations == ((200.0, 6),)
