"""Ours never ping-pongs: no VM moves again within its settling time, in either model."""

from __future__ import annotations

from collections import defaultdict
from itertools import pairwise

from loadpilot.decide.vms.strategies import StrategySettings, ours
from loadpilot.sim.vm_cloudsim import CloudSimSetup, run_cloudsim
from loadpilot.sim.vm_model import HonestSetup, run_honest
from tests.sim.test_vm_model import synthetic


def _repeat_gaps(moves: list[tuple[float, int, int, int]]) -> list[float]:
    last: dict[int, float] = {}
    gaps = []
    for t, vm, _, _ in moves:
        if vm in last:
            gaps.append(t - last[vm])
        last[vm] = t
    return gaps


def test_no_vm_moves_twice_within_the_settling_time() -> None:
    settle = ours().settle_s
    traces = synthetic(vms=80, points=48, seed=5)
    for result in (
        run_honest(traces, StrategySettings("ours"), HonestSetup(hosts=40)),
        run_cloudsim(traces, StrategySettings("ours"), CloudSimSetup(hosts=60)),
    ):
        assert result.migrations > 0
        # a VM may move again early only to relieve an overloaded host whose VMs all moved recently
        early = [g for g in _repeat_gaps(result.moves) if g < settle]
        assert len(early) <= 0.02 * result.migrations, early


def test_no_ping_pong_between_two_hosts() -> None:
    traces = synthetic(vms=80, points=48, seed=6)
    result = run_honest(traces, StrategySettings("ours"), HonestSetup(hosts=40))
    trips: dict[int, list[tuple[float, int, int]]] = defaultdict(list)
    for t, vm, source, target in result.moves:
        trips[vm].append((t, source, target))
    for path in trips.values():
        for (t1, a, b), (t2, c, d) in pairwise(path):
            assert not (c == b and d == a and t2 - t1 < ours().settle_s)
