"""The simulator and a controller (which sees a ClusterView of model types) take the same decisions on the same
input: the same strategy code runs on both paths."""

from __future__ import annotations

import random

import numpy as np
import pytest

from loadpilot.decide.vms.strategies import make_strategy
from loadpilot.decide.vms.view import decide_view
from loadpilot.sim.vm_model import HonestSetup, HonestWorld
from loadpilot.sim.vm_view import view_of
from tests.sim.test_vm_model import synthetic

CONSOLIDATING = ["thr-mmt-0.8", "lr-mmt-1.2", "mad-mmt-2.5", "lr-mc-1.2", "ours"]
BALANCING = ["workload-balance-0.5", "workload-stabilization", "drs-0.02", "ours-balance-0.5"]


@pytest.mark.parametrize("name", CONSOLIDATING + BALANCING)
def test_simulator_and_controller_paths_decide_alike(name: str) -> None:
    traces = synthetic(vms=80, points=40, seed=11)
    setup = HonestSetup(hosts=30) if name in CONSOLIDATING else HonestSetup(hosts=16, host_ram_mb=16384)
    world = HonestWorld(traces, setup)
    strategy = make_strategy(name)
    world.place_initially(world.trace[:, 0] * world.mips, strategy)
    for k in range(20):
        world.history = np.roll(world.history, 1, axis=1)
        world.history[:, 0] = world.trace[:, k]
        world.history_len = min(world.history_len + 1, 30)
    world.moved_at[:5] = -100.0
    world.now = 20 * 300.0
    snapshot = world.snapshot(world.trace[:, 19] * world.mips)
    direct = [
        (snapshot.vm_name(m.vm), snapshot.host_name(m.source), snapshot.host_name(m.target))
        for m in strategy.decide(snapshot, random.Random(5))
    ]
    via_view = [(a.vm, a.source, a.target) for a in decide_view(strategy, view_of(snapshot), random.Random(5))]
    assert via_view == direct
    assert direct, "the case should make the strategy act"
    assert all(a.reason for a in decide_view(strategy, view_of(snapshot), random.Random(5)))
