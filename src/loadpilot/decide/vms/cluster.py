"""The cluster as a decision sees it (`VmCluster`, a snapshot in arrays) and the tentative plan a decision
builds on it (`Plan`: VMs taken off hosts and put on others, with every host's totals kept up to date).

Units: CPU in any one unit for the whole cluster (CloudSim uses MIPS), memory in any one unit, utilisation as a
fraction of a host's CPU. A VM's history is its CPU use as a fraction of its own size, newest first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from numpy.typing import NDArray

from loadpilot.decide.vms.detect import HISTORY_WIDTH, HostSeries, trimmed_length
from loadpilot.decide.vms.power import PowerCurves

Floats = NDArray[np.float64]
Ints = NDArray[np.intp]
Bools = NDArray[np.bool_]

_EMPTY = np.zeros((0, 0))


def sum_by(index: Ints, weights: Floats, n: int) -> Floats:
    """Sum `weights` per value of `index` into n bins (np.bincount, typed as floats)."""
    return np.asarray(np.bincount(index, weights=weights, minlength=n), dtype=np.float64)


_NO_LENGTH = np.zeros(0, dtype=np.intp)


def _row_classes(keys: Floats) -> Ints:
    """Each row's class: the rank of its distinct value among the rows' distinct values, in lexicographic order
    (np.unique(keys, axis=0, return_inverse=True)'s labels, without its per-call cost)."""
    n = keys.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.intp)
    order = np.lexsort(keys.T[::-1])
    ordered = keys[order]
    starts = np.concatenate([[False], (ordered[1:] != ordered[:-1]).any(axis=1)])
    out = np.empty(n, dtype=np.intp)
    out[order] = np.cumsum(starts)
    return out


def _max_of_others(values: Floats) -> Floats:
    """For each position, the largest of the other values (0 for a single value)."""
    n = len(values)
    if n < 2:
        return np.zeros(n)
    order = np.argsort(values, kind="stable")
    out = np.full(n, values[order[-1]], dtype=np.float64)
    out[order[-1]] = values[order[-2]]
    return out


@dataclass
class VmCluster:
    """A snapshot of H hosts and V VMs at one decision time. A VM whose host is -1 is not placed (or is gone).

    `utilisation` is what each host was measured at (it prices the host's power now and says which hosts are
    off); `allocated` the CPU its VMs were given, `available` the CPU a new VM may still take. `vm_order` keeps
    each host's VMs in the order they arrived (ties in selection go to the earliest). `ram_limit` makes memory
    a hard limit for placement; `vm_group` (-1 for none) puts VMs of one anti-affinity group on distinct hosts.
    `powered` says which hosts are on (by default: those with a utilisation above 0, as in CloudSim, where idle
    VMs vanish). `vm_moved_ago_s` is how long ago each VM last migrated (inf: never). CloudSim prices a host
    that is off at its idle power, so switching one on looks cheap; with `charge_switch_on` an off host draws
    nothing now, and a VM placed on it pays for switching it on. `vm_migrating` marks VMs whose migration is
    still in progress (never moved again until it ends), and `host_in_flight` counts the migrations in progress
    leaving or entering each host, so the limits on concurrent migrations include them.
    """

    capacity: Floats
    pe_capacity: Floats
    ram: Floats
    power_kind: Ints
    power_watts: Floats
    utilisation: Floats
    allocated: Floats
    available: Floats
    vm_host: Ints
    vm_request: Floats
    vm_size: Floats
    vm_ram: Floats
    vm_history: Floats
    vm_migration_s: Floats
    vm_order: Ints
    vm_history_len: Ints | None = None
    interval_s: float = 300.0
    ram_limit: bool = False
    maintenance: Bools | None = None
    powered: Bools | None = None
    charge_switch_on: bool = False
    vm_group: Ints | None = None
    vm_moved_ago_s: Floats | None = None
    vm_ids: list[str] | None = None
    host_ids: list[str] | None = None
    vm_migrating: Bools | None = None
    host_in_flight: Ints | None = None

    def is_on(self) -> Bools:
        """Which hosts are switched on."""
        return self.powered if self.powered is not None else np.asarray(self.utilisation > 0)

    @property
    def hosts(self) -> int:
        """Number of hosts."""
        return len(self.capacity)

    def vm_name(self, v: int) -> str:
        """A VM's name for reasons and actions."""
        return self.vm_ids[v] if self.vm_ids is not None else f"vm-{v}"

    def vm_index(self) -> dict[str, int]:
        """Each VM's index by name."""
        if self.vm_ids is not None:
            return {name: v for v, name in enumerate(self.vm_ids)}
        return {f"vm-{v}": v for v in range(len(self.vm_host))}

    def in_flight_total(self) -> int:
        """Migrations in progress (each is counted on two hosts)."""
        return 0 if self.host_in_flight is None else int(self.host_in_flight.sum()) // 2

    def host_name(self, h: int) -> str:
        """A host's name for reasons and actions."""
        return self.host_ids[h] if self.host_ids is not None else f"host-{h}"


@dataclass
class Plan:
    """A decision's working copy of the cluster: where each VM would be, and each host's totals.

    `alloc` is the CPU allocated on each host (CloudSim's getUtilizationOfCpuMips), `avail` what is left,
    `requested` the sum of requests, `history` the host's utilisation history (sum of its VMs'), `length` its
    length once trailing zeros are cut (the longest of its VMs', as histories are never negative), `ram_used` the
    memory its VMs take, `groups` the anti-affinity groups on it (kept only when the cluster has groups). Adding
    and removing VMs keeps them all current. `pool` is the hosts a placement looks at, `pool_capacity`, `pool_pe`
    and `pool_ram` their CPU, core size and memory; `version` counts the changes.
    """

    cluster: VmCluster
    host_vms: list[list[int]]
    alloc: Floats
    avail: Floats
    requested: Floats
    history: Floats
    ram_used: Floats
    count: Ints
    max_migration_s: Floats
    length: Ints = field(default_factory=lambda: np.zeros(0, dtype=np.intp))
    vm_length: Ints = field(default_factory=lambda: np.zeros(0, dtype=np.intp))
    groups: list[set[int]] = field(default_factory=list)
    peak: Floats | None = None
    vm_peak: Floats | None = None
    pool: Ints = field(default_factory=lambda: np.zeros(0, dtype=np.intp))
    pool_capacity: Floats = field(default_factory=lambda: np.zeros(0))
    pool_pe: Floats = field(default_factory=lambda: np.zeros(0))
    pool_ram: Floats = field(default_factory=lambda: np.zeros(0))
    version: int = 0
    _host_class: Ints = field(default_factory=lambda: np.zeros(0, dtype=np.intp))
    _spares_left: dict[int, int] = field(default_factory=dict)
    _spare: int = 0

    @classmethod
    def of(cls, c: VmCluster, width: int | None = None) -> Plan:
        """Start a plan from the snapshot: every VM where it is; hosts' histories kept `width` values deep (all
        by default: a decision whose detector looks at fewer saves the work)."""
        placed = np.flatnonzero(c.vm_host >= 0)
        order = placed[np.lexsort((c.vm_order[placed], c.vm_host[placed]))]
        host_vms: list[list[int]] = [[] for _ in range(c.hosts)]
        for v, h in zip(order.tolist(), c.vm_host[order].tolist(), strict=True):
            host_vms[h].append(v)
        hosts = c.vm_host[placed]
        requested = sum_by(hosts, c.vm_request[placed], c.hosts)
        ram_used = sum_by(hosts, c.vm_ram[placed], c.hosts)
        count = np.bincount(hosts, minlength=c.hosts).astype(np.intp)
        width = c.vm_history.shape[1] if width is None else min(width, c.vm_history.shape[1])
        scaled = c.vm_history[placed, :width] * (c.vm_size[placed] / c.capacity[hosts])[:, None]
        # One bincount for every (host, column): each bin adds its VMs in the same order as a bincount per column.
        cells = (hosts[:, None] * width + np.arange(width)[None, :]).reshape(-1)
        history = sum_by(cells, scaled.reshape(-1), c.hosts * width).reshape(c.hosts, width)
        max_migration_s = np.zeros(c.hosts)
        by_time = np.argsort(c.vm_migration_s[placed], kind="stable")
        max_migration_s[hosts[by_time]] = c.vm_migration_s[placed][by_time]  # the last write per host is its max
        groups: list[set[int]] = [set() for _ in range(c.hosts)] if c.vm_group is not None else []
        if c.vm_group is not None:
            for v in placed.tolist():
                if c.vm_group[v] >= 0:
                    groups[int(c.vm_host[v])].add(int(c.vm_group[v]))
        vm_length = trimmed_length(c.vm_history)
        length = np.ones(c.hosts, dtype=np.intp)
        np.maximum.at(length, hosts, vm_length[placed])
        plan = cls(
            c,
            host_vms,
            c.allocated.copy(),
            c.available.copy(),
            requested,
            history,
            ram_used,
            count,
            max_migration_s,
            length,
            vm_length,
            groups,
        )
        keys = np.stack([c.power_kind.astype(np.float64), c.capacity, c.pe_capacity, c.ram], axis=1)
        plan._host_class = _row_classes(keys)
        plan.build_pool(8)
        return plan

    def track_peaks(self, window: int) -> None:
        """Keep each host's sum of its VMs' recent peaks (CPU, the largest of the `window` newest history values
        and the request now) current from here on."""
        c = self.cluster
        recent = c.vm_history[:, :window].max(axis=1) * c.vm_size if window else np.zeros(len(c.vm_host))
        self.vm_peak = np.maximum(recent, c.vm_request)
        placed = c.vm_host >= 0
        self.peak = sum_by(c.vm_host[placed], self.vm_peak[placed], c.hosts)

    def _idle(self) -> Bools:
        c = self.cluster
        idle: Bools = (self.count == 0) & ~c.is_on() & (self.alloc == 0)
        if c.maintenance is not None:
            idle &= ~c.maintenance
        return idle

    def build_pool(self, spare: int) -> None:
        """Limit the hosts a placement looks at to the busy ones and the first `spare` idle hosts of each kind:
        idle hosts of one kind are interchangeable, and ties go to the lowest index, so the rest never win."""
        idle = self._idle()
        keep = ~idle
        self._spares_left = {}
        for klass in np.unique(self._host_class[idle]).tolist():
            members = np.flatnonzero(idle & (self._host_class == klass))[:spare]
            keep[members] = True
            self._spares_left[klass] = len(members)
        self._spare = spare
        self.version += 1
        self.pool = np.flatnonzero(keep)
        c = self.cluster
        self.pool_capacity = c.capacity[self.pool]
        self.pool_pe = c.pe_capacity[self.pool]
        self.pool_ram = c.ram[self.pool]

    @cached_property
    def curves(self) -> PowerCurves:
        """The cluster's power tables, ready for pricing many hosts."""
        return PowerCurves(self.cluster.power_watts)

    @cached_property
    def power_starts(self) -> Ints:
        """Where each host's power table starts in `curves`' flattened tables."""
        return np.asarray(self.cluster.power_kind * self.curves.width, dtype=np.intp)

    @cached_property
    def largest_core(self) -> float:
        """The largest core of any host."""
        return float(self.cluster.pe_capacity.max())

    def add(self, v: int, h: int) -> None:
        """Put VM v on host h (its request is allocated in full: the host was checked to have room)."""
        c = self.cluster
        r = float(c.vm_request[v])
        if self.count[h] == 0 and self.alloc[h] == 0 and self._host_is_idle(h):
            klass = int(self._host_class[h])
            left = self._spares_left.get(klass, 0) - 1
            self._spares_left[klass] = left
            if left <= 0:
                self.count[h] += 1  # counted as busy while the pool is rebuilt
                self.build_pool(max(8, 2 * self._spare))
                self.count[h] -= 1
        self.version += 1
        self.host_vms[h].append(v)
        self.alloc[h] += r
        self.avail[h] -= r
        self.requested[h] += r
        self.history[h] += c.vm_history[v, : self.history.shape[1]] * (c.vm_size[v] / c.capacity[h])
        self.ram_used[h] += c.vm_ram[v]
        self.count[h] += 1
        if self.peak is not None and self.vm_peak is not None:
            self.peak[h] += self.vm_peak[v]
        self.max_migration_s[h] = max(self.max_migration_s[h], c.vm_migration_s[v])
        self.length[h] = max(self.length[h], self.vm_length[v])
        if c.vm_group is not None and c.vm_group[v] >= 0:
            self.groups[h].add(int(c.vm_group[v]))

    def _host_is_idle(self, h: int) -> bool:
        c = self.cluster
        return not bool(c.powered[h]) if c.powered is not None else bool(c.utilisation[h] == 0)

    def remove(self, v: int, h: int) -> None:
        """Take VM v off host h; the host's allocation is recomputed from the requests left, as CloudSim does."""
        c = self.cluster
        self.version += 1
        self.host_vms[h].remove(v)
        self.requested[h] -= c.vm_request[v]
        self.history[h] -= c.vm_history[v, : self.history.shape[1]] * (c.vm_size[v] / c.capacity[h])
        self.ram_used[h] -= c.vm_ram[v]
        self.count[h] -= 1
        if self.peak is not None and self.vm_peak is not None:
            self.peak[h] -= self.vm_peak[v]
        rest = self.host_vms[h]
        self.max_migration_s[h] = float(c.vm_migration_s[rest].max()) if rest else 0.0
        self.length[h] = int(self.vm_length[rest].max()) if rest else 1
        capped = np.minimum(c.vm_request[rest], c.pe_capacity[h]) if rest else np.zeros(0)
        total = float(capped.sum())
        if total > c.capacity[h]:
            self.alloc[h] = float(np.floor(capped * (c.capacity[h] / total)).sum())
            self.avail[h] = 0.0
        else:
            self.alloc[h] = total
            self.avail[h] = c.capacity[h] - total
        if c.vm_group is not None and c.vm_group[v] >= 0:
            self.groups[h] = {int(c.vm_group[u]) for u in rest if c.vm_group[u] >= 0}

    def series(self, hosts: Ints, width: int = HISTORY_WIDTH) -> HostSeries:
        """The detectors' view of some hosts as they stand in the plan (the `width` newest history values)."""
        c = self.cluster
        return HostSeries(
            utilisation=self.requested[hosts] / c.capacity[hosts],
            history=self.history[hosts, :width] if width else _EMPTY,
            length=self.length[hosts] if width else _NO_LENGTH,
            migration_intervals=np.ceil(self.max_migration_s[hosts] / c.interval_s),
        )

    def series_with(self, hosts: Ints, v: int, width: int = HISTORY_WIDTH) -> HostSeries:
        """The detectors' view of some hosts as they would be with VM v added to each."""
        c = self.cluster
        capacity = c.capacity[hosts]
        if width:
            scale = c.vm_size[v] / capacity
            rows = self.history.take(hosts, axis=0) if width >= self.history.shape[1] else self.history[hosts, :width]
            history = rows + c.vm_history[v, :width][None, :] * scale[:, None]
            length = np.maximum(self.length[hosts], self.vm_length[v])
        else:
            history, length = _EMPTY, _NO_LENGTH
        longest = np.maximum(self.max_migration_s[hosts], c.vm_migration_s[v])
        return HostSeries(
            utilisation=(self.requested[hosts] + c.vm_request[v]) / capacity,
            history=history,
            length=length,
            migration_intervals=np.ceil(longest / c.interval_s),
        )

    def series_without(self, h: int, vms: Ints, width: int = HISTORY_WIDTH) -> HostSeries:
        """The detectors' view of host h as it would be without each of `vms` (its own VMs), one row per VM."""
        c = self.cluster
        n = len(vms)
        if width:
            scale = c.vm_size[vms] / c.capacity[h]
            history = self.history[h, :width][None, :] - c.vm_history[vms, :width] * scale[:, None]
            history = np.maximum(history, 0.0)  # rounding: a host's history is never negative
            length = np.maximum(_max_of_others(self.vm_length[vms].astype(np.float64)), 1).astype(np.intp)
        else:
            history, length = _EMPTY, _NO_LENGTH
        longest = _max_of_others(c.vm_migration_s[vms].astype(np.float64))
        return HostSeries(
            utilisation=(self.requested[h] - c.vm_request[vms]) / c.capacity[h],
            history=history,
            length=length,
            migration_intervals=np.ceil(longest / c.interval_s) * np.ones(n),
        )

    def power_now(self) -> Floats:
        """Each host's power at its measured utilisation."""
        c = self.cluster
        watts = self.curves.power(c.power_kind, c.utilisation)
        return np.where(c.is_on(), watts, 0.0) if c.charge_switch_on else watts
