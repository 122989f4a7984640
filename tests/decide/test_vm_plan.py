"""`plan`'s framework around every strategy: a VM planned twice moves once (or twice, as CloudSim does), the
limits hold, the state remembers moves; and the deviation grid the balancers price moves with."""

from __future__ import annotations

import numpy as np
import pytest

from loadpilot.decide.vms.balance import allowed_matrix, deviation_after
from loadpilot.decide.vms.cluster import Plan
from loadpilot.decide.vms.place import Migration
from loadpilot.decide.vms.strategies import (
    PlanState,
    StrategyError,
    StrategySettings,
    _within_limits,
    plan,
    plan_cluster,
    strategy_for,
)
from loadpilot.model import ClusterView, HostView, VmView
from tests.decide.vm_clusters import cluster

FOUR = cluster([1, 1, 1, 1], [(0, 500, 613), (1, 500, 613), (2, 500, 613), (3, 500, 613)])


def test_a_vm_planned_twice_moves_once_to_its_last_host() -> None:
    moves = [Migration(0, 0, 1, "over"), Migration(1, 1, 2, "x"), Migration(0, 1, 3, "under")]
    merged = _within_limits(moves, FOUR, StrategySettings())
    assert [(m.vm, m.source, m.target) for m in merged] == [(0, 0, 3), (1, 1, 2)]
    assert "under" in merged[0].reason and "over" in merged[0].reason
    back = [Migration(0, 0, 1, "a"), Migration(0, 1, 0, "b")]
    assert _within_limits(back, FOUR, StrategySettings()) == []
    cloudsim = _within_limits(moves, FOUR, StrategySettings(merge_moves=False))
    assert len(cloudsim) == 3


def test_limits_count_both_ends_and_the_migrations_in_progress() -> None:
    moves = [Migration(0, 0, 1, ""), Migration(1, 1, 2, ""), Migration(2, 2, 3, ""), Migration(3, 3, 0, "")]
    per_host = _within_limits(moves, FOUR, StrategySettings(max_per_host=1))
    assert [m.vm for m in per_host] == [0, 2]
    total = _within_limits(moves, FOUR, StrategySettings(max_migrations=2))
    assert [m.vm for m in total] == [0, 1]
    busy = cluster([1, 1, 1, 1], [(0, 500, 613), (1, 500, 613), (2, 500, 613), (3, 500, 613)])
    busy.vm_migrating = np.array([False, True, False, False])
    busy.host_in_flight = np.array([0, 1, 1, 0])
    kept = _within_limits(moves, busy, StrategySettings(max_migrations=2))
    assert [m.vm for m in kept] == [0]


def test_the_state_remembers_moves_and_forgets_old_ones() -> None:
    c = cluster([1, 1], [(0, 2600, 613), (0, 2000, 613), (1, 100, 613)])
    settings = StrategySettings("thr-mmt-0.8", remember_s=1000.0)
    moves, state = plan_cluster(c, settings, PlanState({"vm-9": 0.0}), 5000.0)
    assert moves and state.decisions == 1
    assert set(state.moved_at) == {c.vm_name(m.vm) for m in moves}  # vm-9 moved too long ago: forgotten


def test_bad_settings_name_the_setting() -> None:
    with pytest.raises(StrategyError, match="max_per_host"):
        strategy_for(StrategySettings(max_per_host=0))
    with pytest.raises(StrategyError, match="unknown strategy"):
        strategy_for(StrategySettings("nope"))


def test_deviation_grid_matches_moving_and_recomputing() -> None:
    rng = np.random.default_rng(4)
    x = rng.uniform(0, 1, 6)
    source = np.array([0, 3, 5])
    out = rng.uniform(0, 0.2, 3)
    into = rng.uniform(0, 0.2, (3, 6))
    grid = deviation_after(x, source, out, into)
    for i, s in enumerate(source.tolist()):
        for j in range(6):
            if j == s:
                assert grid[i, j] == np.inf
                continue
            y = x.copy()
            y[s] -= out[i]
            y[j] += into[i, j]
            assert grid[i, j] == pytest.approx(np.std(y))


def test_allowed_matrix_keeps_memory_cores_maintenance_and_anti_affinity() -> None:
    c = cluster(
        [0, 1, 1, 1],
        [(0, 2000, 1740), (1, 100, 613), (2, 100, 2000), (-1, 100, 2200)],
        ram_limit=True,
        maintenance=[3],
        groups=[-1, 7, -1, 7],
    )
    ok = allowed_matrix(Plan.of(c), np.array([0, 3]), np.arange(4))
    assert ok[0].tolist() == [False, True, True, False]  # 2000 > a G4 core (1860); host 3 in maintenance
    assert ok[1].tolist() == [True, False, False, False]  # group 7 on host 1; host 2's memory full; maintenance


def test_a_view_naming_an_unknown_host_is_refused() -> None:
    view = ClusterView(
        (HostView("h1", 5320.0, 2660.0, 4 * 2**30, "hp-ml110-g5", 0.2),),
        (VmView("a", "h1", 500.0, 2500.0, 2**29), VmView("b", "h9", 500.0, 2500.0, 2**29)),
    )
    with pytest.raises(ValueError, match="h9"):
        plan(view, StrategySettings("thr-mmt-0.8"), PlanState(), 0.0)
