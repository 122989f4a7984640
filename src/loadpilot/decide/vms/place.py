"""Where a VM goes: power-aware best fit decreasing (PABFD, Beloglazov & Buyya), with every constraint.

For each VM (the largest first), among the hosts that may take it — not excluded, not in maintenance, enough CPU
on one core and in total, enough memory when memory is a hard limit, no VM of the same anti-affinity group, and
not overloaded once it is there (an empty host is not tested, as in CloudSim), and, when the plan tracks peaks,
room for the recent peaks of all its VMs — the host whose power grows least. A host's power now is priced at
its measured utilisation, so switching a host on costs its idle power only once it draws more.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from loadpilot.decide.vms.cluster import Plan
from loadpilot.decide.vms.detect import Detector

Bools = NDArray[np.bool_]
Floats = NDArray[np.float64]
Ints = NDArray[np.intp]

ALL_AT_ONCE = 128  # up to this many candidate hosts, the overload test runs on all of them at once


@dataclass(frozen=True)
class Migration:
    """Move VM `vm` from host `source` to host `target` (indices into the snapshot), and why."""

    vm: int
    source: int
    target: int
    reason: str


@dataclass
class PowerAwareBestFit:
    """PABFD's host choice; `detector` says whether a host would be overloaded with the VM added. With
    `whole_core`, a VM goes only where one core can give it its full size (a vCPU never slower than asked), when
    any host of the cluster has such cores."""

    detector: Detector
    headroom: float = np.inf
    whole_core: bool = False
    _alone: bool = field(default=True, init=False, repr=False)  # the detector can tell one host's verdict alone

    def room(self, plan: Plan, v: int | Ints, at: Ints) -> Bools:
        """Whether VM v has room on each of the hosts `at` (or, for a column of VMs, each of them on each host): CPU
        (no more than `headroom` of it asked for), the recent peaks when the plan tracks them, one core (a whole
        one for its size with `whole_core`), not in maintenance, memory when a hard limit. Exclusions and
        anti-affinity are the caller's."""
        c = plan.cluster
        if at is plan.pool:
            capacity, pe, ram = plan.pool_capacity, plan.pool_pe, plan.pool_ram
        else:
            capacity, pe, ram = c.capacity[at], c.pe_capacity[at], c.ram[at]
        r = c.vm_request[v]
        ok = plan.avail[at] >= r
        if self.headroom < np.inf:
            ok &= plan.requested[at] + r <= self.headroom * capacity
        if plan.peak is not None and plan.vm_peak is not None:  # room for every VM's recent peak at once
            ok &= plan.peak[at] + plan.vm_peak[v] <= capacity
            ok &= pe >= plan.vm_peak[v]
        ok &= pe >= r
        if self.whole_core:  # when some host has such a core
            size = c.vm_size[v]
            ok &= (pe >= size) | (size > plan.largest_core)
        if c.maintenance is not None:
            ok &= ~c.maintenance[at]
        if c.ram_limit:
            ok &= plan.ram_used[at] + c.vm_ram[v] <= ram
        return np.asarray(ok, dtype=bool)

    def _suitable(self, plan: Plan, v: int, excluded: Bools) -> Ints:
        """Hosts with room for VM v (CPU, memory, anti-affinity), before the overload test."""
        c = plan.cluster
        pool = plan.pool
        ok = self.room(plan, v, pool)
        ok &= ~excluded[pool]
        hosts = pool[ok]
        if c.vm_group is not None and c.vm_group[v] >= 0 and hosts.size:
            group = int(c.vm_group[v])
            hosts = hosts[[group not in plan.groups[h] for h in hosts.tolist()]]
        return np.asarray(hosts, dtype=np.intp)

    def _overloaded_with(self, plan: Plan, hosts: Ints, v: int, alloc: Floats | None = None) -> Bools:
        """Which of these hosts would be overloaded with VM v added (an empty host never is); `alloc`, when given,
        is their allocation in the plan."""
        busy = (plan.alloc[hosts] if alloc is None else alloc) != 0
        if busy.size and busy.all():  # the usual case: no empty host among them
            return self.detector.evaluate(plan.series_with(hosts, v, self.detector.history_width))[0]
        over = np.zeros(hosts.size, dtype=bool)
        if busy.any():
            verdicts, _ = self.detector.evaluate(plan.series_with(hosts[busy], v, self.detector.history_width))
            over[busy] = verdicts
        return over

    def _passes(self, plan: Plan, h: int, v: int, alloc: float) -> bool:
        """Whether host h (allocated `alloc`) is surely not overloaded with VM v added, told by the detector for
        this host alone (False: it is, or the detector can only tell among the others, with `evaluate`)."""
        if alloc == 0:
            return True
        if not self._alone:
            return False
        c = plan.cluster
        utilisation = (float(plan.requested[h]) + float(c.vm_request[v])) / float(c.capacity[h])
        width = self.detector.history_width
        longest = max(float(plan.max_migration_s[h]), float(c.vm_migration_s[v]))
        intervals = math.ceil(longest / c.interval_s)  # all as series_with
        if width:
            row = plan.history[h, :width] + c.vm_history[v, :width] * (c.vm_size[v] / c.capacity[h])
            length = int(max(plan.length[h], plan.vm_length[v]))
            verdict = self.detector.evaluate_one(utilisation, row.tolist(), length, intervals)
        else:
            verdict = self.detector.evaluate_one(utilisation, (), 0, intervals)
        if verdict is None:
            self._alone = False
        return verdict is False

    def candidates(self, plan: Plan, v: int, excluded: Bools) -> Ints:
        """Hosts that may take VM v: capacity, memory, anti-affinity, and not overloaded once it is there."""
        hosts = self._suitable(plan, v, excluded)
        return np.asarray(hosts[~self._overloaded_with(plan, hosts, v)], dtype=np.intp)

    def find_host(self, plan: Plan, v: int, excluded: Bools, power_now: NDArray[np.float64]) -> int | None:
        """The allowed host whose power grows least with VM v on it (the first such host on ties), or None.

        The cheapest host usually passes the overload test: it is tested first on its own when the detector can
        tell one host's verdict alone. With many candidates the overload test is the costly part, so hosts are
        tested cheapest first and the first that passes wins: the same host as testing them all and taking the
        least power growth among the rest (to the last bit: each built-in detector's verdict on a host is the same
        whatever hosts are evaluated with it).
        """
        hosts = self._suitable(plan, v, excluded)
        if hosts.size == 0:
            return None
        c = plan.cluster
        alloc = plan.alloc[hosts]
        after = np.minimum((alloc + c.vm_request[v]) / c.capacity[hosts], 1.0)  # never below 0: nor are its terms
        growth = plan.curves.power_from(plan.power_starts[hosts], after) - power_now[hosts]
        cheapest = int(np.argmin(growth))
        if self._passes(plan, int(hosts[cheapest]), v, float(alloc[cheapest])):  # usually, where it can be told
            return int(hosts[cheapest])
        if hosts.size <= ALL_AT_ONCE:  # few candidates: test them all in one go
            growth[self._overloaded_with(plan, hosts, v, alloc)] = np.inf
            best = int(np.argmin(growth))
            return int(hosts[best]) if np.isfinite(growth[best]) else None
        # Cheapest first, a growing batch at a time (all hosts tied with the batch's dearest join it, so ties still
        # go to the lowest index); the first that passes wins.
        size = 1
        while True:
            finite = np.isfinite(growth)
            left = int(finite.sum())
            if left == 0:
                return None
            if size == 1:
                batch = np.array([int(np.argmin(growth))])
            else:
                k = min(size, left)
                dearest = float(np.partition(growth, k - 1)[k - 1])
                batch = np.flatnonzero(growth <= dearest)
                batch = batch[np.lexsort((hosts[batch], growth[batch]))]
            over = self._overloaded_with(plan, hosts[batch], v)
            passed = np.flatnonzero(~over)
            if passed.size:
                return int(hosts[batch[passed[0]]])
            growth[batch] = np.inf
            size *= 8
