"""Ours' choices on hand-made clusters: which VM leaves an overloaded host, VMs short of a core, whole-core
placement, which under-loaded host is emptied first, and MC's batched fit against a fit per VM."""

from __future__ import annotations

import random

import numpy as np

from loadpilot.decide.vms.cluster import Plan
from loadpilot.decide.vms.consolidate import Consolidation
from loadpilot.decide.vms.detect import LocalRegression, StaticThreshold
from loadpilot.decide.vms.place import PowerAwareBestFit
from loadpilot.decide.vms.select import CheapestSufficient, _most_correlated
from loadpilot.decide.vms.strategies import make_strategy
from tests.decide.vm_clusters import cluster

RNG = random.Random(0)


def test_the_cheapest_vm_that_ends_the_overload_leaves() -> None:
    # Host 0 (G4, 3720) asks 3600 against a threshold of 0.8 (2976): 624 must go. VM 0 (700, 870 MB) and VM 1
    # (1500, 613 MB) are each enough: VM 0 loses 700 x 13.9 s, VM 1 1500 x 9.8 s; VM 2 (1400, 1740 MB) costs most.
    c = cluster([0, 1], [(0, 700.0, 870.0), (0, 1500.0, 613.0), (0, 1400.0, 1740.0)])
    plan = Plan.of(c)
    assert CheapestSufficient(StaticThreshold(0.8)).pick(plan, 0, RNG) == 0


def test_when_no_single_vm_is_enough_the_shortest_migration_goes_first() -> None:
    # 3700 on a G4 host, threshold 0.5 (1860): no VM alone brings it under; the 613 MB VM migrates fastest.
    c = cluster([0, 1], [(0, 1200.0, 1740.0), (0, 1300.0, 613.0), (0, 1200.0, 870.0)])
    assert CheapestSufficient(StaticThreshold(0.5)).pick(Plan.of(c), 0, RNG) == 1


def test_series_without_a_vm_is_the_host_after_removing_it() -> None:
    rng = np.random.default_rng(3)
    c = cluster(
        [0, 1], [(0, 900.0, 870.0), (0, 1200.0, 1740.0), (0, 400.0, 613.0)], history=rng.random((3, 30)).tolist()
    )
    plan = Plan.of(c)
    rows = plan.series_without(0, np.array([0, 1, 2], dtype=np.intp), 10)
    for i, v in enumerate([0, 1, 2]):
        alone = Plan.of(c)
        alone.remove(v, 0)
        expected = alone.series(np.array([0]), 10)
        assert np.allclose(rows.history[i], expected.history[0])
        assert rows.utilisation[i] == expected.utilisation[0]
        assert rows.length[i] == expected.length[0]
        assert rows.migration_intervals[i] == expected.migration_intervals[0]


def test_a_vm_short_of_a_core_twice_in_a_row_moves_to_a_larger_core() -> None:
    # VM 0 asks 2000 on a G4 host (cores of 1860) that is far from overloaded: it gets 1860 whatever the load.
    history = [[0.8] * 30, [0.1] * 30, [0.1] * 30]
    c = cluster([0, 1, 1], [(0, 2000.0, 870.0), (1, 250.0, 870.0), (2, 250.0, 870.0)], history=history)
    moves = make_strategy("ours").decide(c, RNG)
    first = moves[0]
    assert (first.vm, first.source) == (0, 0)
    assert c.pe_capacity[first.target] >= 2500
    assert "larger core" in first.reason


def test_a_single_spike_over_a_core_moves_nothing() -> None:
    history = [[0.8] + [0.3] * 29, [0.1] * 30]
    c = cluster([0, 1], [(0, 2000.0, 870.0), (1, 250.0, 870.0)], history=history)
    moves = Consolidation(
        LocalRegression(1.2), CheapestSufficient(LocalRegression(1.2)), underload=False, whole_core=True
    ).decide(c, RNG)
    assert moves == []


def test_whole_core_placement_keeps_a_large_vm_off_small_cores() -> None:
    # VM 0 (size 2500, asking 300) fits on the G4 host only (the G5 host's memory is full), but a G4 core (1860)
    # cannot give it its full size.
    vms = [(-1, 300.0, 870.0), (0, 1000.0, 870.0), (1, 1000.0, 870.0), (1, 1000.0, 870.0)]
    c = cluster([0, 1], vms, ram_limit=True, host_ram=2 * 870.0)
    plan = Plan.of(c)
    power = plan.power_now()
    none = np.zeros(2, dtype=bool)
    plain = PowerAwareBestFit(StaticThreshold(1.0)).find_host(plan, 0, none, power)
    whole = PowerAwareBestFit(StaticThreshold(1.0), whole_core=True).find_host(plan, 0, none, power)
    assert (plain, whole) == (0, None)


def test_the_host_whose_vms_lose_least_while_migrating_is_emptied_first() -> None:
    # Hosts of 3 VMs' memory. Host 0 holds one busy VM and is measured the least utilised, host 1 two nearly idle
    # VMs: emptying host 1 loses almost no CPU while migrating. Once one is emptied the other is a target.
    vms = [(0, 1000.0, 870.0), (1, 10.0, 870.0), (1, 10.0, 870.0), (2, 1500.0, 870.0), (2, 1500.0, 870.0)]
    c = cluster([1, 1, 1], vms, ram_limit=True, host_ram=3 * 870.0)
    c.utilisation[0], c.utilisation[1] = 0.19, 0.2  # measured: host 0 the least utilised
    moves = make_strategy("ours").decide(c, RNG)
    assert {m.source for m in moves} == {1}
    lr = make_strategy("lr-mmt-1.2").decide(c, RNG)
    assert {m.source for m in lr} == {0}


def _most_correlated_one_by_one(data: np.ndarray) -> int:
    n, m = data.shape
    best, best_index = float(np.finfo(np.float64).tiny), 0
    for i in range(n):
        y = data[i]
        x = np.column_stack([np.ones(m), np.delete(data, i, axis=0).T])
        coef, *_ = np.linalg.lstsq(x, y, rcond=None)
        residual = y - x @ coef
        total = float(((y - y.mean()) ** 2).sum())
        r2 = 1 - float(residual @ residual) / total if total > 0 else float("nan")
        if r2 > best + 1e-9:
            best, best_index = r2, i
    return best_index


def test_mc_batched_fit_agrees_with_one_fit_per_vm() -> None:
    rng = np.random.default_rng(1)
    for k in range(300):
        n = int(rng.integers(3, 8))
        data = rng.random((n, int(rng.integers(n, 31))))
        data[int(rng.integers(n))] += 3 * data[(k + 1) % n] if k % 3 == 0 else 0.0  # one strongly explained
        if k % 5 == 0:
            data[int(rng.integers(n))] = 0.0  # a VM with no variance is never picked
        assert _most_correlated(data) == _most_correlated_one_by_one(data)


def test_mc_ties_go_to_the_first_vm() -> None:
    data = np.random.default_rng(2).random((2, 12))  # two VMs always explain each other equally well
    assert _most_correlated(data) == 0
