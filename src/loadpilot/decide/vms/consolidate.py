"""Dynamic consolidation as Beloglazov & Buyya (CCPE 2012) and CloudSim 3.0.3 do it, with constraints.

One decision: (1) find the overloaded hosts; take VMs off each (the selector's choice, one at a time, until the
host is no longer overloaded); place them with PABFD away from the overloaded hosts. Hosts in maintenance are
evacuated the same way. (2) Then, from the least utilised host up, try to move all the VMs of each host
elsewhere so it can be switched off; a host whose VMs cannot all be placed is left alone. Limits on migrations
(in total, and per host as source or target) are respected throughout.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from loadpilot.decide.vms.cluster import Plan, VmCluster
from loadpilot.decide.vms.detect import Detector
from loadpilot.decide.vms.place import Migration, PowerAwareBestFit
from loadpilot.decide.vms.select import Selector

Bools = NDArray[np.bool_]


@dataclass(frozen=True)
class Limits:
    """At most `total` migrations in one decision, `per_host` on any host (leaving or arriving), and `attempts`
    hosts tried for emptying (bounds a decision's work on very large clusters)."""

    total: int | None = None
    per_host: int | None = None
    attempts: int | None = None


@dataclass
class Consolidation:
    """An overload detector, a VM selector and PABFD placement, with the under-load phase (CloudSim's policy).

    Three knobs CloudSim does not have (off by default): `settle_s`, a VM that migrated less than that long ago
    is not moved again and its host is not emptied (no ping-pong); `underload_below`, only hosts less utilised
    than that are emptied; `headroom`, no target may be asked for more than that share of its CPU.
    """

    detector: Detector
    selector: Selector
    underload: bool = True
    limits: Limits = Limits()
    name: str = ""
    settle_s: float = 0.0
    underload_below: float = 1.0
    headroom: float = np.inf

    def decide(self, cluster: VmCluster, rng: random.Random) -> list[Migration]:
        """The migrations of one decision, each with its reason."""
        plan = Plan.of(cluster)
        placement = PowerAwareBestFit(self.detector, self.headroom)
        power_now = plan.power_now()
        moves = _Moves(cluster.hosts, self.limits)

        over, values = self.detector.evaluate(plan.series(np.arange(cluster.hosts), self.detector.uses_history))
        leaving = over.copy()
        if cluster.maintenance is not None:
            leaving |= cluster.maintenance
        picked: list[tuple[int, int, str]] = []
        for h in np.flatnonzero(leaving).tolist():
            if over[h]:
                util = float(plan.requested[h] / cluster.capacity[h])
                why = f"{cluster.host_name(h)} overloaded: {self.detector.describe(float(values[h]), util)}"
            else:
                why = f"{cluster.host_name(h)} in maintenance: evacuate"
            while moves.may_leave(h):
                v = self._pick(plan, h, rng)
                if v is None:
                    break
                picked.append((v, h, f"{why}; {self.selector.describe(plan, v)}"))
                plan.remove(v, h)
                moves.reserve_leaving(h)
                if not over[h]:
                    continue
                still, _ = self.detector.evaluate(plan.series(np.array([h]), self.detector.uses_history))
                if not still[0]:
                    break

        requests = cluster.vm_request
        picked.sort(key=lambda item: -requests[item[0]])  # stable: decreasing CPU, ties in selection order
        migrations: list[Migration] = []
        for v, source, why in picked:
            if not moves.may_start():
                break
            target = placement.find_host(plan, v, leaving | moves.full_targets(), power_now)
            if target is None:
                continue
            plan.add(v, target)
            moves.reserve_arriving(target)
            migrations.append(
                Migration(v, source, target, f"{why}; to {cluster.host_name(target)} (least power added)")
            )
        if self.underload:
            migrations += self._underload(plan, placement, power_now, over, moves)
        return migrations

    def _settling(self, c: VmCluster) -> NDArray[np.bool_]:
        """VMs that migrated too recently to move again."""
        if self.settle_s <= 0 or c.vm_moved_ago_s is None:
            return np.zeros(len(c.vm_host), dtype=bool)
        return np.asarray(c.vm_moved_ago_s < self.settle_s)

    def _pick(self, plan: Plan, h: int, rng: random.Random) -> int | None:
        """The selector's choice among the VMs of h that may move (all of them when none may: overload wins)."""
        settling = self._settling(plan.cluster)
        vms = plan.host_vms[h]
        if not settling[vms].any() or settling[vms].all():
            return self.selector.pick(plan, h, rng)
        held = [v for v in vms if settling[v]]
        plan.host_vms[h] = [v for v in vms if not settling[v]]
        try:
            return self.selector.pick(plan, h, rng)
        finally:
            plan.host_vms[h] = [v for v in vms if v in plan.host_vms[h] or v in held]

    def _underload(
        self, plan: Plan, placement: PowerAwareBestFit, power_now: NDArray[np.float64], over: Bools, moves: _Moves
    ) -> list[Migration]:
        """Empty the least utilised hosts one by one while all their VMs fit elsewhere."""
        c = plan.cluster
        off = ~c.is_on()
        not_source = over | off
        not_target = over | off
        if c.maintenance is not None:
            not_source = not_source | c.maintenance
            not_target = not_target | c.maintenance
        # The least utilised eligible host first; utilisation is as measured, so the order is fixed, and the
        # hosts that drop out (chosen, or used as targets) only ever grow: one pass in that order is CloudSim's loop.
        key = np.where(c.utilisation < min(1.0, self.underload_below), c.utilisation, np.inf)
        if c.powered is not None:  # a powered host with idle VMs only is the least utilised of all
            key = np.where(c.powered & (c.utilisation == 0), -1.0, key)
        order = np.lexsort((np.arange(c.hosts), key))
        migrations: list[Migration] = []
        attempts = 0
        for h in order.tolist():
            if not moves.may_start() or not np.isfinite(key[h]):
                break
            if not_source[h] or plan.count[h] == 0:
                continue
            if self.limits.attempts is not None and attempts >= self.limits.attempts:
                break
            attempts += 1
            not_source[h] = True
            not_target[h] = True
            vms = list(plan.host_vms[h])
            if self.settle_s > 0 and self._settling(c)[vms].any():
                continue
            if not vms or not moves.may_leave(h, len(vms)) or not moves.may_start(len(vms)):
                continue
            vms.sort(key=lambda v: -c.vm_request[v])
            if not _may_fit(plan, vms, not_target | moves.full_targets()):
                continue
            placed: list[tuple[int, int]] = []
            for v in vms:
                target = placement.find_host(plan, v, not_target | moves.full_targets(), power_now)
                if target is None:
                    break
                plan.add(v, target)
                moves.reserve_arriving(target)
                placed.append((v, target))
            if len(placed) < len(vms):
                for v, target in placed:
                    plan.remove(v, target)
                    moves.release_arriving(target)
                continue
            moves.reserve_leaving(h, len(vms))
            why = f"{c.host_name(h)} under-loaded (utilisation {c.utilisation[h]:.2f}): empty it to switch it off"
            for v, target in placed:
                not_source[target] = True
                source = int(c.vm_host[v])
                migrations.append(Migration(v, source, target, f"{why}; to {c.host_name(target)} (least power added)"))
        return migrations


class _Moves:
    """Counts the migrations a decision has started, to keep within the limits."""

    def __init__(self, hosts: int, limits: Limits) -> None:
        self.limits = limits
        self.total = 0
        self.per_host = np.zeros(hosts, dtype=np.intp)
        self._no_targets = np.zeros(hosts, dtype=bool)

    def may_start(self, n: int = 1) -> bool:
        """Whether n more migrations fit in the total."""
        return self.limits.total is None or self.total + n <= self.limits.total

    def may_leave(self, h: int, n: int = 1) -> bool:
        """Whether n more VMs may leave host h."""
        return self.limits.per_host is None or self.per_host[h] + n <= self.limits.per_host

    def reserve_leaving(self, h: int, n: int = 1) -> None:
        """Count n VMs leaving host h."""
        self.per_host[h] += n

    def reserve_arriving(self, h: int) -> None:
        """Count a VM arriving on host h and one more migration."""
        self.per_host[h] += 1
        self.total += 1

    def release_arriving(self, h: int) -> None:
        """Undo reserve_arriving (a plan that was given up)."""
        self.per_host[h] -= 1
        self.total -= 1

    def full_targets(self) -> Bools:
        """Hosts that may take no more arrivals."""
        if self.limits.per_host is None:
            return self._no_targets
        return self.per_host >= self.limits.per_host


def _may_fit(plan: Plan, vms: list[int], excluded: Bools) -> bool:
    """A quick necessary test that the VMs could all go elsewhere: enough free CPU and memory in total, and a
    host with room for the largest of each."""
    c = plan.cluster
    pool = plan.pool[~excluded[plan.pool]]
    if pool.size == 0:
        return False
    avail = plan.avail[pool]
    requests = c.vm_request[vms]
    if avail.max() < requests.max() or avail.sum() < requests.sum():
        return False
    if c.ram_limit:
        free = c.ram[pool] - plan.ram_used[pool]
        rams = c.vm_ram[vms]
        if free.max() < rams.max() or free.sum() < rams.sum():
            return False
    return True
