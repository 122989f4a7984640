"""Balancing without consolidation: OpenStack Watcher's workload_balance and ours, and the helpers the
deviation-based balancers (`deviation.py`) share.

- workload_balance (Watcher): hosts at or above `threshold` are sources; from the most utilised, the VM whose
  load is closest to (without exceeding) the host's excess over the cluster mean goes to the least utilised host
  that stays under the threshold with it. One migration per audit.
- ours: act on a host only when its overload is forecast to last (a least-squares forecast one interval ahead
  over the threshold) or it is already halfway from the threshold to saturation (a migration only pays for
  an overload still there once it is done); relieve it with the VM whose recent peak is largest among those
  that alone bring it under the threshold; send it to the host whose VMs' recent peaks add up to least and
  that has room for this VM's peak too, so that the move lasts; never move a VM again within `settle_s` (no
  ping-pong).
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
Ints = NDArray[np.intp]


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


def allowed_matrix(plan: Plan, vms: Ints, hosts: Ints) -> Bools:
    """Which of `hosts` may take each of `vms` (rows): memory (when a hard limit), one core's CPU, maintenance,
    anti-affinity. A VM's own host is not excluded here."""
    c = plan.cluster
    ok = np.ones((len(vms), len(hosts)), dtype=bool)
    if c.maintenance is not None:
        ok &= ~c.maintenance[hosts][None, :]
    if c.ram_limit:
        ok &= plan.ram_used[hosts][None, :] + c.vm_ram[vms][:, None] <= c.ram[hosts][None, :]
    ok &= c.pe_capacity[hosts][None, :] >= c.vm_request[vms][:, None]
    if c.vm_group is not None:
        groups = c.vm_group[vms]
        rows = np.flatnonzero(groups >= 0)
        if rows.size:
            index = {g: k for k, g in enumerate(np.unique(groups[rows]).tolist())}
            member = np.zeros((len(index), len(hosts)), dtype=bool)
            for j, h in enumerate(hosts.tolist()):
                for g in plan.groups[h]:
                    if g in index:
                        member[index[g], j] = True
            ok[rows] &= ~member[[index[int(g)] for g in groups[rows].tolist()]]
    return ok


def plan_hosts(plan: Plan) -> Ints:
    """Each VM's host in the plan (-1: not placed)."""
    where = np.full(len(plan.cluster.vm_host), -1, dtype=np.intp)
    for h, vms in enumerate(plan.host_vms):
        where[vms] = h
    return where


def deviation_after(x: Floats, source: Ints, out: Floats, into: Floats) -> Floats:
    """The standard deviation of `x` (n hosts) after each move of a (VM, destination) grid: row i takes
    `out[i]` off host `source[i]`, column j adds `into[i, j]` to host j. A move onto its own host is inf."""
    n = len(x)
    total, squares = float(x.sum()), float((x * x).sum())
    xs = x[source]
    t1 = total - out
    s1 = squares - xs * xs + (xs - out) ** 2
    t2 = t1[:, None] + into
    s2 = s1[:, None] + 2 * x[None, :] * into + into * into
    sd = np.sqrt(np.maximum(s2 / n - (t2 / n) ** 2, 0.0))
    sd[np.arange(len(source)), source] = np.inf
    return np.asarray(sd)


def serving(c: VmCluster) -> Bools:
    """The hosts a balancer spreads load over: all but those in maintenance (balancing switches nothing off)."""
    on = np.ones(c.hosts, dtype=bool)
    if c.maintenance is not None:
        on &= ~c.maintenance
    return on


def move(plan: Plan, v: int, source: int, target: int) -> None:
    plan.remove(v, source)
    plan.add(v, target)


def evacuate(plan: Plan, threshold: float, rng: random.Random) -> list[Migration]:
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
            move(plan, v, h, target)
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
        out = evacuate(plan, self.threshold, rng)
        c = cluster
        on = serving(c)
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
class ForecastBalance:
    """Ours for balancing: relieve hosts forecast over the threshold (or far over it now) with moves sized for
    the VMs' recent peaks, so they last; never move a VM twice within `settle_s`."""

    threshold: float = 0.8
    headroom: float = 0.0
    settle_s: float = 7200.0
    max_moves: int | None = None
    forecast_mode: str = "severe"
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
        """Each host's load as the trigger sees it. "severe" (the default): the least-squares forecast one interval
        ahead (an overload that persists), or the load now when it is already halfway from the threshold to
        saturation (CPU about to run short: act at once). "max": the larger of now and the forecast; "now"; "lr"."""
        c = plan.cluster
        now = plan.requested / c.capacity
        short = c.vm_history_len is not None and int(c.vm_history_len.max(initial=0)) < 10
        if self.forecast_mode == "now" or short:
            return now
        ahead = lr_prediction(plan.history, np.ones(c.hosts))
        if self.forecast_mode == "lr":
            return ahead
        if self.forecast_mode == "severe":
            return np.where(now > (1 + self.threshold) / 2, np.maximum(now, ahead), ahead)
        return np.maximum(now, ahead)

    def decide(self, cluster: VmCluster, rng: random.Random) -> list[Migration]:
        """Moves that bring every host forecast over the threshold back under it."""
        plan = Plan.of(cluster)
        out = evacuate(plan, self.threshold, rng)
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
        on = serving(c)
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
                    move(plan, v, h, d)
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
