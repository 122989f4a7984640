"""Balancing without consolidation: OpenStack Watcher's workload_balance and workload_stabilization, a DRS-like
strategy, and ours.

- workload_balance (Watcher): hosts at or above `threshold` are sources; from the most utilised, the VM whose
  load is closest to (without exceeding) the host's excess over the cluster mean goes to the least utilised host
  that stays under the threshold with it. One migration per audit.
- workload_stabilization (Watcher): while the weighted standard deviation of normalised host load (CPU, memory)
  is above its threshold, simulate every (VM, destination) move, and take the moves that lower it most, in
  order, as long as each lowers it further; stop once a metric's deviation is under its threshold.
- DRS-like: take the single move that lowers the standard deviation of host CPU load most, if its benefit
  (the imbalance it removes over the next interval) outweighs its cost (the CPU the VM loses while it moves);
  repeat until the deviation is under the target or `max_moves` moves are chosen.
- ours: act only on hosts over the threshold now or forecast to cross it (a least-squares forecast one interval
  ahead); relieve each with the VM whose recent peak is largest among those that alone bring it under the
  threshold; send it to the host whose VMs' recent peaks add up to least and that has room for this VM's peak
  too, so that the move lasts; never move a VM again within `settle_s` (no ping-pong).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from loadpilot.decide.vms.cluster import Plan, VmCluster, sum_by
from loadpilot.decide.vms.detect import lr_prediction
from loadpilot.decide.vms.place import Migration

Floats = NDArray[np.float64]
Bools = NDArray[np.bool_]


def _allowed_targets(plan: Plan, v: int) -> Bools:
    """Hosts that may take VM v: memory (when a hard limit), maintenance, anti-affinity, not its own host."""
    c = plan.cluster
    ok = np.ones(c.hosts, dtype=bool)
    ok[c.vm_host[v]] = False
    if c.maintenance is not None:
        ok &= ~c.maintenance
    if c.ram_limit:
        ok &= plan.ram_used + c.vm_ram[v] <= c.ram
    ok &= c.pe_capacity >= c.vm_request[v]
    if c.vm_group is not None and c.vm_group[v] >= 0:
        group = int(c.vm_group[v])
        ok &= np.array([group not in g for g in plan.groups])
    return ok


def _serving(c: VmCluster) -> Bools:
    """The hosts a balancer spreads load over: all but those in maintenance (balancing switches nothing off)."""
    on = np.ones(c.hosts, dtype=bool)
    if c.maintenance is not None:
        on &= ~c.maintenance
    return on


def _move(plan: Plan, v: int, source: int, target: int) -> None:
    plan.remove(v, source)
    plan.add(v, target)


def _evacuate(plan: Plan, threshold: float, rng: random.Random) -> list[Migration]:
    """Hosts in maintenance are emptied first (Watcher's host_maintenance): each VM to the least loaded host."""
    c = plan.cluster
    out: list[Migration] = []
    if c.maintenance is None:
        return out
    for h in np.flatnonzero(c.maintenance).tolist():
        for v in list(plan.host_vms[h]):
            ok = _allowed_targets(plan, v)
            if not ok.any():
                continue
            load = np.where(ok, plan.requested / c.capacity, np.inf)
            target = int(np.argmin(load))
            _move(plan, v, h, target)
            out.append(Migration(v, h, target, f"{c.host_name(h)} in maintenance: evacuate to the least loaded host"))
    return out


@dataclass
class WorkloadBalance:
    """Watcher's workload_balance on CPU: one migration per audit from the hottest host above `threshold`."""

    threshold: float = 0.8
    name: str = "workload-balance"
    balances: bool = True

    def decide(self, cluster: VmCluster, rng: random.Random) -> list[Migration]:
        """At most one migration (plus maintenance evacuations)."""
        plan = Plan.of(cluster)
        out = _evacuate(plan, self.threshold, rng)
        c = cluster
        on = _serving(c)
        util = plan.requested / c.capacity
        sources = np.flatnonzero(on & (util >= self.threshold))
        targets = on & (util < self.threshold)
        if sources.size == 0 or not targets.any():
            return out
        mean = float(plan.requested[on].sum() / max(int(on.sum()), 1))
        for h in sources[np.argsort(-util[sources], kind="stable")].tolist():
            vms = plan.host_vms[h]
            if not vms:
                continue
            delta = plan.requested[h] - mean - c.vm_request[vms]
            eligible = delta >= 0
            if not eligible.any():
                continue
            v = vms[int(np.argmin(np.where(eligible, delta, np.inf)))]
            ok = targets & _allowed_targets(plan, v)
            ok &= plan.requested + c.vm_request[v] < self.threshold * c.capacity
            if not ok.any():
                return out
            target = int(np.argmin(np.where(ok, util, np.inf)))
            out.append(
                Migration(
                    v,
                    h,
                    target,
                    f"{c.host_name(h)} at {util[h]:.0%} >= {self.threshold:.0%}: move the VM nearest its excess over "
                    f"the mean to the least utilised host ({c.host_name(target)}, {util[target]:.0%})",
                )
            )
            return out
        return out


@dataclass
class WorkloadStabilization:
    """Watcher's workload_stabilization: weighted standard deviation of normalised CPU and memory load."""

    cpu_threshold: float = 0.1
    ram_threshold: float = 0.1
    cpu_weight: float = 1.0
    ram_weight: float = 1.0
    name: str = "workload-stabilization"
    balances: bool = True

    def _sds(self, cpu: Floats, ram: Floats, on: Bools) -> tuple[float, float]:
        return float(np.std(cpu[on])), float(np.std(ram[on]))

    def decide(self, cluster: VmCluster, rng: random.Random) -> list[Migration]:
        """Moves in order of the weighted deviation they leave, while each improves on the last."""
        plan = Plan.of(cluster)
        out = _evacuate(plan, 1.0, rng)
        c = cluster
        on = _serving(c)
        cpu = plan.requested / c.capacity
        ram = plan.ram_used / c.ram
        sd_cpu, sd_ram = self._sds(cpu, ram, on)
        if sd_cpu <= self.cpu_threshold and sd_ram <= self.ram_threshold:
            return out
        n = int(on.sum())
        hosts = np.flatnonzero(on)
        candidates: list[tuple[float, int, int, int]] = []
        for h in hosts.tolist():
            for v in plan.host_vms[h]:
                ok = _allowed_targets(plan, v)[hosts]
                if not ok.any():
                    continue
                # the deviation after moving v from h to each destination d, computed for all d at once
                after = np.where(ok, self._after_move(cpu, ram, hosts, h, v, plan, n), np.inf)
                best = int(np.argmin(after))
                if np.isfinite(after[best]):
                    candidates.append((float(after[best]), v, h, int(hosts[best])))
        candidates.sort(key=lambda x: x[0])
        best_sd = self.cpu_weight * sd_cpu + self.ram_weight * sd_ram
        moved: set[int] = set()
        for _, v, h, d in candidates:
            if v in moved or c.vm_host[v] != h:
                continue
            cpu_after, ram_after = cpu.copy(), ram.copy()
            cpu_after[h] -= c.vm_request[v] / c.capacity[h]
            cpu_after[d] += c.vm_request[v] / c.capacity[d]
            ram_after[h] -= c.vm_ram[v] / c.ram[h]
            ram_after[d] += c.vm_ram[v] / c.ram[d]
            if c.ram_limit and plan.ram_used[d] + c.vm_ram[v] > c.ram[d]:
                continue
            a, b = self._sds(cpu_after, ram_after, on)
            weighted = self.cpu_weight * a + self.ram_weight * b
            if weighted < best_sd:
                best_sd = weighted
                cpu, ram = cpu_after, ram_after
                _move(plan, v, h, d)
                moved.add(v)
                out.append(
                    Migration(
                        v,
                        h,
                        d,
                        f"weighted deviation of host load {sd_cpu:.3f}/{sd_ram:.3f} above {self.cpu_threshold}: "
                        f"this move lowers it to {weighted:.3f}",
                    )
                )
                if a < self.cpu_threshold or b < self.ram_threshold:
                    break
        return out

    def _after_move(
        self, cpu: Floats, ram: Floats, hosts: NDArray[np.intp], h: int, v: int, plan: Plan, n: int
    ) -> Floats:
        """Weighted deviation after moving v from h to each host in `hosts` (vectorised over destinations)."""
        c = plan.cluster
        out = np.zeros(len(hosts))
        for values, delta_src, delta_dst, weight in (
            (cpu, c.vm_request[v] / c.capacity[h], c.vm_request[v] / c.capacity[hosts], self.cpu_weight),
            (ram, c.vm_ram[v] / c.ram[h], c.vm_ram[v] / c.ram[hosts], self.ram_weight),
        ):
            x = values[hosts].copy()
            src = int(np.searchsorted(hosts, h))
            x[src] -= delta_src
            total = x.sum()
            sq = (x * x).sum()
            # adding delta_dst to element j: new sum and sum of squares
            new_total = total + delta_dst
            new_sq = sq - x * x + (x + delta_dst) ** 2
            var = np.maximum(new_sq / n - (new_total / n) ** 2, 0.0)
            sd = np.sqrt(var)
            sd[src] = np.inf
            out += weight * sd
        return out


@dataclass
class DrsLike:
    """Cut the standard deviation of host CPU load below `target`, one best move at a time, each move only if
    the imbalance it removes over the next interval outweighs the CPU the VM loses while migrating."""

    target: float = 0.1
    max_moves: int = 8
    cost_weight: float = 1.0
    name: str = "drs"
    balances: bool = True

    def decide(self, cluster: VmCluster, rng: random.Random) -> list[Migration]:
        """Greedy best moves while the deviation is above the target."""
        plan = Plan.of(cluster)
        out = _evacuate(plan, 1.0, rng)
        c = cluster
        hosts = np.flatnonzero(_serving(c))
        n = len(hosts)
        if n < 2:
            return out
        for _ in range(self.max_moves):
            load = plan.requested[hosts] / c.capacity[hosts]
            sd = float(np.std(load))
            if sd <= self.target:
                break
            best: tuple[float, int, int, int, float] | None = None
            for i in np.argsort(-load, kind="stable")[: max(1, n // 4)].tolist():
                h = int(hosts[i])
                for v in plan.host_vms[h]:
                    ok = _allowed_targets(plan, v)[hosts]
                    ok &= plan.requested[hosts] + c.vm_request[v] <= c.capacity[hosts]
                    if not ok.any():
                        continue
                    x = load.copy()
                    x[i] -= c.vm_request[v] / c.capacity[h]
                    delta = c.vm_request[v] / c.capacity[hosts]
                    total, sq = x.sum(), (x * x).sum()
                    new_sq = sq - x * x + (x + delta) ** 2
                    sds = np.sqrt(np.maximum(new_sq / n - ((total + delta) / n) ** 2, 0.0))
                    sds = np.where(ok, sds, np.inf)
                    j = int(np.argmin(sds))
                    gain = sd - float(sds[j])
                    # benefit: imbalance removed (CPU-seconds) over an interval; cost: CPU lost while migrating
                    benefit = gain * float(c.capacity[hosts].mean()) * n * c.interval_s
                    cost = self.cost_weight * 0.1 * float(c.vm_request[v]) * float(c.vm_migration_s[v])
                    if gain > 0 and benefit > cost and (best is None or gain > best[0]):
                        best = (gain, v, h, int(hosts[j]), float(sds[j]))
            if best is None:
                break
            _, v, h, d, after = best
            _move(plan, v, h, d)
            out.append(
                Migration(
                    v,
                    h,
                    d,
                    f"deviation of host load {sd:.3f} above target {self.target}: this move lowers it to {after:.3f} "
                    "and pays for its migration",
                )
            )
        return out


@dataclass
class ForecastBalance:
    """Ours for balancing: relieve hosts over (or forecast over) the threshold with moves sized for the VMs'
    recent peaks, so they last; never move a VM twice within `settle_s`."""

    threshold: float = 0.8
    headroom: float = 0.0
    settle_s: float = 7200.0
    max_moves: int | None = None
    forecast_mode: str = "max"
    select: str = "peak"
    peak: bool = True
    target: str = "peak"
    name: str = "ours-balance"
    balances: bool = True

    def _order(self, plan: Plan, h: int, vms: list[int], load: float) -> list[int]:
        """The VMs of h to try, best first: those that alone bring h under the threshold, the quickest to
        migrate first; then the rest by CPU freed per second of migration."""
        c = plan.cluster
        request = c.vm_request[vms]
        relief = request / np.maximum(c.vm_migration_s[vms], 1e-9)
        by_relief = np.argsort(-relief, kind="stable").tolist()
        if self.select == "cr":
            return list(by_relief)
        enough = request >= (load - self.threshold) * c.capacity[h]
        if self.select == "peak":
            peak = c.vm_history[vms].max(axis=1) * c.vm_size[vms]
            first = sorted(np.flatnonzero(enough).tolist(), key=lambda i: -peak[i])
            return first + sorted(np.flatnonzero(~enough).tolist(), key=lambda i: -peak[i])
        first = sorted(np.flatnonzero(enough).tolist(), key=lambda i: (c.vm_migration_s[vms[i]], request[i]))
        return first + [i for i in by_relief if not enough[i]]

    def forecast(self, plan: Plan) -> Floats:
        """Each host's load: the larger of now and the least-squares forecast one interval ahead."""
        c = plan.cluster
        now = plan.requested / c.capacity
        if self.forecast_mode == "now" or (c.vm_history_len is not None and int(c.vm_history_len.max(initial=0)) < 10):
            return now
        ahead = lr_prediction(plan.history, np.ones(c.hosts))
        return np.maximum(now, ahead)

    def decide(self, cluster: VmCluster, rng: random.Random) -> list[Migration]:
        """Moves that bring every host forecast over the threshold back under it."""
        plan = Plan.of(cluster)
        out = _evacuate(plan, self.threshold, rng)
        c = cluster
        settling = (
            np.asarray(c.vm_moved_ago_s < self.settle_s)
            if c.vm_moved_ago_s is not None
            else np.zeros(len(c.vm_host), dtype=bool)
        )
        load = self.forecast(plan)
        peaks = (
            sum_by(
                np.maximum(c.vm_host, 0), np.where(c.vm_host >= 0, c.vm_history.max(axis=1) * c.vm_size, 0.0), c.hosts
            )
            / c.capacity
        )
        hot = np.flatnonzero(load > self.threshold)
        limit = self.max_moves if self.max_moves is not None else len(c.vm_host)
        on = _serving(c)
        for h in hot[np.argsort(-load[hot], kind="stable")].tolist():
            while load[h] > self.threshold and len(out) < limit:
                vms = [v for v in plan.host_vms[h] if not settling[v]]
                if not vms:
                    break
                moved = False
                for i in self._order(plan, h, vms, float(load[h])):
                    v = vms[i]
                    share = c.vm_request[v] / c.capacity
                    need = share
                    if self.peak:  # room for the VM's recent peak, so the move lasts
                        need = np.maximum(share, float(c.vm_history[v].max()) * c.vm_size[v] / c.capacity)
                    ok = _allowed_targets(plan, v) & on
                    ok &= load + need <= self.threshold - self.headroom
                    if not ok.any():
                        continue
                    rank = load if self.target == "load" else peaks
                    d = int(np.argmin(np.where(ok, rank, np.inf)))
                    _move(plan, v, h, d)
                    vm_peak = float(c.vm_history[v].max()) * c.vm_size[v]
                    peaks[h] -= vm_peak / c.capacity[h]
                    peaks[d] += vm_peak / c.capacity[d]
                    load[h] -= float(c.vm_request[v] / c.capacity[h])
                    load[d] += float(share[d])
                    settling[v] = True
                    out.append(
                        Migration(
                            v,
                            h,
                            d,
                            f"{c.host_name(h)} at or forecast at {load[h] + c.vm_request[v] / c.capacity[h]:.0%} > "
                            f"{self.threshold:.0%}: move its spikiest VM that relieves it to {c.host_name(d)}, the "
                            "host with most room for the VMs' recent peaks",
                        )
                    )
                    moved = True
                    break
                if not moved:
                    break
        return out
