"""The simulator and a controller (which sees a ClusterView of model types) take the same decisions on the same
input: both go through `plan`'s code, and the state one decision returns steers the next alike."""

from __future__ import annotations

import numpy as np
import pytest

from loadpilot.decide.vms.strategies import PlanState, StrategySettings, plan, plan_cluster, strategy_for
from loadpilot.model import Migrate
from loadpilot.sim.vm_model import HonestSetup, HonestWorld
from loadpilot.sim.vm_view import view_of
from tests.sim.test_vm_model import synthetic

CONSOLIDATING = ["thr-mmt-0.8", "lr-mmt-1.2", "mad-mmt-2.5", "lr-mc-1.2", "lr-rs-1.2", "ours"]
BALANCING = ["workload-balance-0.5", "workload-stabilization", "drs-0.02", "ours-balance-0.3"]


def _world(name: str, steps: int = 20) -> HonestWorld:
    traces = synthetic(vms=80, points=40, seed=11)
    setup = HonestSetup(hosts=30) if name in CONSOLIDATING else HonestSetup(hosts=16, host_ram_mb=16384)
    world = HonestWorld(traces, setup)
    world.place_initially(world.trace[:, 0] * world.mips, strategy_for(StrategySettings(name)))
    for k in range(steps):
        world.history = np.roll(world.history, 1, axis=1)
        world.history[:, 0] = world.trace[:, k]
        world.history_len = min(world.history_len + 1, 30)
    return world


@pytest.mark.parametrize("name", CONSOLIDATING + BALANCING)
def test_simulator_and_controller_paths_decide_alike(name: str) -> None:
    world = _world(name)
    settings = StrategySettings(name, seed=4)
    now = 20 * 300.0
    state = PlanState({"vm-3": now - 100.0, "vm-7": now - 500.0}, decisions=19)
    snapshot = world.snapshot(world.trace[:, 19] * world.mips)
    moves, sim_state = plan_cluster(snapshot, settings, state, now)
    direct = [(snapshot.vm_name(m.vm), snapshot.host_name(m.source), snapshot.host_name(m.target)) for m in moves]
    actions, live_state = plan(view_of(snapshot), settings, state, now, epoch=3)
    assert [(a.vm, a.source, a.target) for a in actions] == direct
    assert direct, "the case should make the strategy act"
    assert all(a.reason and a.epoch == 3 for a in actions)
    assert dict(live_state.moved_at) == dict(sim_state.moved_at) and live_state.decisions == 20
    assert {vm for vm, _, _ in direct} <= set(live_state.moved_at)


def test_in_flight_migrations_count_against_the_limits_and_do_not_move_again() -> None:
    world = _world("thr-mmt-0.8")
    now = 20 * 300.0
    view = view_of(world.snapshot(world.trace[:, 19] * world.mips))
    free, _ = plan(view, StrategySettings("thr-mmt-0.8"), PlanState(), now)
    assert len(free) >= 3
    busy = free[0]
    limited = StrategySettings("thr-mmt-0.8", max_migrations=len(free) - 1, max_per_host=2)
    actions, _ = plan(view, limited, PlanState(), now, in_flight=[busy])
    assert busy.vm not in {a.vm for a in actions}
    assert len(actions) + 1 <= len(free) - 1
    per_host: dict[str, int] = {busy.source: 1, busy.target: 1}
    for a in actions:
        per_host[a.source] = per_host.get(a.source, 0) + 1
        per_host[a.target] = per_host.get(a.target, 0) + 1
    assert max(per_host.values()) <= 2


def test_a_vm_the_state_says_just_moved_is_not_moved_again_by_ours() -> None:
    world = _world("ours-balance-0.3")
    now = 20 * 300.0
    view = view_of(world.snapshot(world.trace[:, 19] * world.mips))
    settings = StrategySettings("ours-balance-0.3")
    first, state = plan(view, settings, PlanState(), now)
    assert first
    again, _ = plan(view, settings, state, now + 300.0)
    assert not {a.vm for a in first} & {a.vm for a in again}
    assert isinstance(first[0], Migrate)
