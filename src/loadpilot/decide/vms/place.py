"""Where a VM goes: power-aware best fit decreasing (PABFD, Beloglazov & Buyya), with every constraint.

For each VM (the largest first), among the hosts that may take it — not excluded, not in maintenance, enough CPU
on one core and in total, enough memory when memory is a hard limit, no VM of the same anti-affinity group, and
not overloaded once it is there (an empty host is not tested, as in CloudSim), and, when the plan tracks peaks,
room for the recent peaks of all its VMs — the host whose power grows least. A host's power now is priced at
its measured utilisation, so switching a host on costs its idle power only once it draws more.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from loadpilot.decide.vms.cluster import Plan
from loadpilot.decide.vms.detect import Detector
from loadpilot.decide.vms.power import power_of

Bools = NDArray[np.bool_]
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

    def _suitable(self, plan: Plan, v: int, excluded: Bools) -> Ints:
        """Hosts with room for VM v (CPU, memory, anti-affinity), before the overload test."""
        c = plan.cluster
        r = c.vm_request[v]
        pool = plan.pool
        ok = (plan.avail[pool] >= r) & ~excluded[pool]
        if self.headroom < np.inf:
            ok &= plan.requested[pool] + r <= self.headroom * c.capacity[pool]
        if plan.peak is not None and plan.vm_peak is not None:  # room for every VM's recent peak at once
            ok &= plan.peak[pool] + plan.vm_peak[v] <= c.capacity[pool]
            ok &= c.pe_capacity[pool] >= plan.vm_peak[v]
        ok &= c.pe_capacity[pool] >= r
        if self.whole_core and c.vm_size[v] <= c.pe_capacity.max():
            ok &= c.pe_capacity[pool] >= c.vm_size[v]
        if c.maintenance is not None:
            ok &= ~c.maintenance[pool]
        if c.ram_limit:
            ok &= plan.ram_used[pool] + c.vm_ram[v] <= c.ram[pool]
        hosts = pool[ok]
        if c.vm_group is not None and c.vm_group[v] >= 0 and hosts.size:
            group = int(c.vm_group[v])
            hosts = hosts[[group not in plan.groups[h] for h in hosts.tolist()]]
        return np.asarray(hosts, dtype=np.intp)

    def _overloaded_with(self, plan: Plan, hosts: Ints, v: int) -> Bools:
        """Which of these hosts would be overloaded with VM v added (an empty host never is)."""
        over = np.zeros(hosts.size, dtype=bool)
        busy = plan.alloc[hosts] != 0
        if busy.any():
            verdicts, _ = self.detector.evaluate(plan.series_with(hosts[busy], v, self.detector.history_width))
            over[busy] = verdicts
        return over

    def candidates(self, plan: Plan, v: int, excluded: Bools) -> Ints:
        """Hosts that may take VM v: capacity, memory, anti-affinity, and not overloaded once it is there."""
        hosts = self._suitable(plan, v, excluded)
        return np.asarray(hosts[~self._overloaded_with(plan, hosts, v)], dtype=np.intp)

    def find_host(self, plan: Plan, v: int, excluded: Bools, power_now: NDArray[np.float64]) -> int | None:
        """The allowed host whose power grows least with VM v on it (the first such host on ties), or None.

        With many candidates the overload test is the costly part, so hosts are tested cheapest first and the first
        that passes wins: the same host as testing them all and taking the least power growth among the rest.
        """
        hosts = self._suitable(plan, v, excluded)
        if hosts.size == 0:
            return None
        c = plan.cluster
        after = np.minimum((plan.alloc[hosts] + c.vm_request[v]) / c.capacity[hosts], 1.0)
        growth = power_of(c.power_watts, c.power_kind[hosts], after) - power_now[hosts]
        if hosts.size <= ALL_AT_ONCE:  # few candidates: test them all in one go
            growth[self._overloaded_with(plan, hosts, v)] = np.inf
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
