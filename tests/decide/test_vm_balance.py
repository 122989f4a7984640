"""Balancing without consolidation: Watcher's workload_balance and workload_stabilization, DRS-like, ours."""

from __future__ import annotations

import random

import numpy as np

from loadpilot.decide.vms.balance import ForecastBalance, WorkloadBalance
from loadpilot.decide.vms.deviation import DrsLike, WorkloadStabilization
from tests.decide.vm_clusters import cluster

RNG = random.Random(3)


def test_workload_balance_moves_one_vm_from_the_hottest_host_to_the_coolest() -> None:
    # G5 hosts (5320): host 0 at 94 %, host 1 at 85 %, host 2 at 19 %, host 3 at 28 %
    vms = [(0, 3000, 613), (0, 1000, 613), (0, 1000, 613), (1, 4500, 613), (2, 1000, 613), (3, 1500, 613)]
    moves = WorkloadBalance(threshold=0.8).decide(cluster([1, 1, 1, 1], vms), RNG)
    assert len(moves) == 1
    (m,) = moves
    # mean 3000 per host: host 0's excess is 2000; the VM nearest it without exceeding it is a 1000 one (the
    # first), and the least utilised host that stays under 80 % with it is host 2
    assert (m.vm, m.source, m.target) == (1, 0, 2)


def test_workload_balance_needs_a_target_that_stays_under_the_threshold() -> None:
    vms = [(0, 5000, 613), (1, 4000, 613)]
    assert WorkloadBalance(threshold=0.8).decide(cluster([1, 1], vms), RNG) == []


def test_workload_stabilization_lowers_the_deviation_and_stops_when_balanced() -> None:
    vms = [(0, 1500, 613), (0, 1500, 613), (0, 1500, 613), (1, 200, 613), (2, 200, 613)]
    c = cluster([1, 1, 1], vms, host_ram=8192)
    moves = WorkloadStabilization(cpu_threshold=0.05, ram_threshold=1.0).decide(c, RNG)
    assert moves and all(m.source == 0 for m in moves)
    load = np.bincount(c.vm_host, weights=c.vm_request, minlength=3) / c.capacity
    for m in moves:
        load[m.source] -= c.vm_request[m.vm] / c.capacity[m.source]
        load[m.target] += c.vm_request[m.vm] / c.capacity[m.target]
    assert np.std(load) < np.std(np.bincount(c.vm_host, weights=c.vm_request, minlength=3) / c.capacity)
    calm = cluster([1, 1], [(0, 1000, 613), (1, 1000, 613)])
    assert WorkloadStabilization().decide(calm, RNG) == []


def test_drs_moves_only_when_the_move_pays_for_itself() -> None:
    vms = [(0, 2500, 613), (0, 2000, 613), (1, 200, 613)]
    assert DrsLike(target=0.05).decide(cluster([1, 1], vms), RNG)
    assert DrsLike(target=0.05, cost_weight=1e9).decide(cluster([1, 1], vms), RNG) == []
    assert DrsLike(target=0.9).decide(cluster([1, 1], vms), RNG) == []


def test_ours_relieves_a_hot_host_and_never_moves_a_settling_vm() -> None:
    vms = [(0, 2500, 613), (0, 2000, 1740), (1, 200, 613), (2, 300, 613)]
    moves = ForecastBalance(threshold=0.8).decide(cluster([1, 1, 1], vms), RNG)
    assert moves and moves[0].source == 0 and moves[0].target in (1, 2)
    settled = cluster([1, 1, 1], vms, moved_ago=[60, 60, 1e9, 1e9])
    assert ForecastBalance(threshold=0.8, settle_s=3600).decide(settled, RNG) == []
