"""Balancing by the standard deviation of host load: OpenStack Watcher's workload_stabilization and a DRS-like
strategy. Every (VM, destination) move is priced at once on a grid (`balance.deviation_after`).

- workload_stabilization (Watcher): while the weighted standard deviation of normalised host load (CPU, memory)
  is above its threshold, price every move, and take the moves that lower it most, in order, as long as each
  lowers it further; stop once a metric's deviation is under its threshold.
- DRS-like: take the single move that lowers the standard deviation of host CPU load most, if its benefit
  (the imbalance it removes over the next interval) outweighs its cost (the CPU the VM loses while it moves);
  repeat until the deviation is under the target or `max_moves` moves are chosen. No VM moves twice.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from loadpilot.decide.vms.balance import (
    Floats,
    Ints,
    allowed_matrix,
    deviation_after,
    evacuate,
    move,
    plan_hosts,
    serving,
)
from loadpilot.decide.vms.cluster import Plan, VmCluster
from loadpilot.decide.vms.place import Migration


def _placed_on(plan: Plan, hosts: Ints) -> tuple[Ints, Ints]:
    """The VMs on these hosts in the plan, and each one's host as an index into `hosts`."""
    where = plan_hosts(plan)
    position = np.full(plan.cluster.hosts, -1, dtype=np.intp)
    position[hosts] = np.arange(len(hosts))
    vms = np.flatnonzero((where >= 0) & (position[np.maximum(where, 0)] >= 0))
    return vms, position[where[vms]]


def _begin(cluster: VmCluster, rng: random.Random) -> tuple[Plan, list[Migration], Ints]:
    """A decision's start: the plan, the evacuations of hosts in maintenance, the hosts load is spread over."""
    plan = Plan.of(cluster)
    return plan, evacuate(plan, 1.0, rng), np.flatnonzero(serving(cluster))


@dataclass
class WorkloadStabilization:
    """Watcher's workload_stabilization: weighted standard deviation of normalised CPU and memory load; it acts
    while either metric's deviation is above its threshold."""

    cpu_threshold: float = 0.1
    ram_threshold: float = 0.1
    cpu_weight: float = 1.0
    ram_weight: float = 1.0
    balances: bool = True
    name: str = "workload-stabilization"

    def decide(self, cluster: VmCluster, rng: random.Random) -> list[Migration]:
        """Moves in order of the weighted deviation they leave, while each improves on the last."""
        plan, out, hosts = _begin(cluster, rng)
        c = cluster
        cpu = plan.requested[hosts] / c.capacity[hosts]
        ram = plan.ram_used[hosts] / c.ram[hosts]
        sd_cpu, sd_ram = float(np.std(cpu)), float(np.std(ram))
        if (sd_cpu <= self.cpu_threshold and sd_ram <= self.ram_threshold) or len(hosts) < 2:
            return out
        vms, source = _placed_on(plan, hosts)
        grid = self._weighted(plan, cpu, ram, vms, source, hosts)
        grid[~allowed_matrix(plan, vms, hosts)] = np.inf
        best = np.argmin(grid, axis=1)
        score = grid[np.arange(len(vms)), best]
        best_sd = self.cpu_weight * sd_cpu + self.ram_weight * sd_ram
        for i in np.argsort(score, kind="stable").tolist():
            if not np.isfinite(score[i]) or score[i] >= best_sd:
                break
            v, s, d = int(vms[i]), int(source[i]), int(best[i])
            cpu_after, ram_after = cpu.copy(), ram.copy()
            cpu_after[s] -= c.vm_request[v] / c.capacity[hosts[s]]
            cpu_after[d] += c.vm_request[v] / c.capacity[hosts[d]]
            ram_after[s] -= c.vm_ram[v] / c.ram[hosts[s]]
            ram_after[d] += c.vm_ram[v] / c.ram[hosts[d]]
            a, b = float(np.std(cpu_after)), float(np.std(ram_after))
            weighted = self.cpu_weight * a + self.ram_weight * b
            if weighted >= best_sd or not allowed_matrix(plan, np.array([v]), hosts[d : d + 1])[0, 0]:
                continue
            best_sd, cpu, ram = weighted, cpu_after, ram_after
            move(plan, v, int(hosts[s]), int(hosts[d]))
            out.append(
                Migration(
                    v,
                    int(hosts[s]),
                    int(hosts[d]),
                    f"weighted deviation of host load {sd_cpu:.3f}/{sd_ram:.3f} above {self.cpu_threshold}: "
                    f"this move lowers it to {weighted:.3f}",
                )
            )
            if a < self.cpu_threshold or b < self.ram_threshold:
                break
        return out

    def _weighted(self, plan: Plan, cpu: Floats, ram: Floats, vms: Ints, source: Ints, hosts: Ints) -> Floats:
        """The weighted deviation after each (VM, destination) move."""
        c = plan.cluster
        total = np.zeros((len(vms), len(hosts)))
        for values, weight, amount, capacity in (
            (cpu, self.cpu_weight, c.vm_request, c.capacity),
            (ram, self.ram_weight, c.vm_ram, c.ram),
        ):
            out = amount[vms] / capacity[hosts[source]]
            into = amount[vms][:, None] / capacity[hosts][None, :]
            total += weight * deviation_after(values, source, out, into)
        return total


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
        plan, out, hosts = _begin(cluster, rng)
        c = cluster
        n = len(hosts)
        if n < 2:
            return out
        moved: set[int] = set()
        for _ in range(self.max_moves):
            load = plan.requested[hosts] / c.capacity[hosts]
            sd = float(np.std(load))
            if sd <= self.target:
                break
            vms, source = _placed_on(plan, hosts)
            hot = np.zeros(n, dtype=bool)
            hot[np.argsort(-load, kind="stable")[: max(1, n // 4)]] = True
            keep = hot[source] & ~np.isin(vms, list(moved))
            vms, source = vms[keep], source[keep]
            if vms.size == 0:
                break
            request = c.vm_request[vms]
            into = request[:, None] / c.capacity[hosts][None, :]
            sds = deviation_after(load, source, request / c.capacity[hosts[source]], into)
            fits = plan.requested[hosts][None, :] + request[:, None] <= c.capacity[hosts][None, :]
            sds[~(allowed_matrix(plan, vms, hosts) & fits)] = np.inf
            gain = sd - sds
            # benefit: imbalance removed (CPU-seconds) over an interval; cost: CPU lost while migrating
            benefit = gain * float(c.capacity[hosts].mean()) * n * c.interval_s
            cost = self.cost_weight * 0.1 * request * c.vm_migration_s[vms]
            gain = np.where((gain > 0) & (benefit > cost[:, None]), gain, -np.inf)
            flat = int(np.argmax(gain))
            i, j = divmod(flat, n)
            if not np.isfinite(gain[i, j]):
                break
            v, h, d = int(vms[i]), int(hosts[source[i]]), int(hosts[j])
            move(plan, v, h, d)
            moved.add(v)
            out.append(
                Migration(
                    v,
                    h,
                    d,
                    f"deviation of host load {sd:.3f} above target {self.target}: this move lowers it to "
                    f"{float(sds[i, j]):.3f} and pays for its migration",
                )
            )
        return out
