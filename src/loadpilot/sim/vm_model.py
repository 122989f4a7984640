"""The honest VM cluster model, the simulator's default.

Unlike CloudSim's: memory is a hard limit at every step (a migrating VM holds memory on both hosts), VMs that
are idle stay where they are and keep their host on, a VM's demand is its trace value held for the interval,
and SLA violation is measured as the CPU the VMs asked for and did not get. A host is on while it holds a VM.
A decision at the start of an interval sees what was measured up to then (the last interval's demand and the
history), never the demand of the interval it decides for: CloudSim's strategies see the coming demand.
A migrating VM gets 90 % of its demand on the source for RAM / bandwidth seconds (CloudSim's performance model,
so PDM means the same in both models); when the VMs of a host ask for more than it has, each gets its share in
proportion. The CloudSim figures are kept beside the honest ones, measured honestly: SLATAH is the share of
active host-time in which some VM got less CPU than it asked for (its host short of CPU, a VM asking for more
than one core, or a VM migrating out), with no charge for receiving a VM.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from loadpilot.decide.vms.cluster import Plan, VmCluster, sum_by
from loadpilot.decide.vms.detect import StaticThreshold
from loadpilot.decide.vms.place import PowerAwareBestFit
from loadpilot.decide.vms.power import HP_G4, HP_G5, table_matrix
from loadpilot.decide.vms.strategies import StrategySettings, VmStrategy, strategy_for
from loadpilot.errors import PermanentError
from loadpilot.sim.planetlab import Traces
from loadpilot.sim.vm_cloudsim import HISTORY, HOST_RAM_MB, MIGRATION_MB_S, PE_MIPS, VM_MIPS, VM_RAM_MB
from loadpilot.sim.vm_metrics import Accumulator, HostState, Recorder, RunResult

Floats = NDArray[np.float64]
Ints = NDArray[np.intp]
Bools = NDArray[np.bool_]


class PlacementError(PermanentError):
    """The VMs cannot all be placed on the hosts (memory is a hard limit in this model)."""


@dataclass(frozen=True)
class HonestSetup:
    """Hosts (half G4, half G5 as in the reference), the decision interval, the reporting threshold,
    memory per host, optional anti-affinity groups (one per VM, -1 for none), and how VMs are first placed."""

    hosts: int = 800
    interval_s: float = 300.0
    threshold: float = 0.8
    host_ram_mb: float = HOST_RAM_MB
    anti_affinity: Ints | None = None
    initial: str = "auto"  # auto: PABFD (consolidating) or spread (balancing); snake: fast and even, huge runs


class HonestWorld:
    """Hosts, VMs and migrations in flight, one interval at a time."""

    def __init__(self, traces: Traces, setup: HonestSetup) -> None:
        n = traces.vms
        self.setup = setup
        self.trace = traces.utilisation
        kind = np.arange(setup.hosts) % 2
        self.power_kind = kind.astype(np.intp)
        self.watts = table_matrix([HP_G4, HP_G5])
        self.pe = np.array(PE_MIPS)[kind]
        self.capacity = 2 * self.pe
        self.host_ram = np.full(setup.hosts, setup.host_ram_mb)
        vm_type = np.arange(n) // math.ceil(n / 4)
        self.mips = np.array(VM_MIPS)[vm_type]
        self.ram = np.array(VM_RAM_MB)[vm_type]
        self.migration_s = self.ram / MIGRATION_MB_S
        self.host: Ints = np.full(n, -1, dtype=np.intp)
        self.seq: Ints = np.arange(n, dtype=np.intp)
        self.arrivals = n
        self.history = np.zeros((n, HISTORY))
        self.history_len = 0
        self.dst: Ints = np.full(n, -1, dtype=np.intp)  # where a migrating VM goes (-1: not migrating)

    def state(self, r: Floats) -> HostState:
        """Each VM's share of its host: its demand (90 % while migrating), scaled down on a host asked for more."""
        h = self.setup.hosts
        placed = self.host >= 0
        migrating = self.dst >= 0
        want = np.where(migrating, 0.9 * r, r) * placed
        capped = np.minimum(want, self.pe[np.maximum(self.host, 0)])
        hv = np.maximum(self.host, 0)
        demand = sum_by(hv, capped, h)
        scale = np.minimum(1.0, np.divide(self.capacity, demand, out=np.ones(h), where=demand > 0))
        alloc = capped * scale[hv]
        used = sum_by(hv, alloc, h)
        requested = sum_by(hv, r * placed, h)
        return HostState(
            utilisation=np.minimum(used / self.capacity, 1.0),
            allocated=used,
            requested=requested,
            vm_alive=placed,
            vm_requested=r * placed,
            vm_allocated=alloc,
            vm_migrating=migrating,
        )

    def powered(self) -> Bools:
        """Hosts holding a VM, or receiving one."""
        on = np.zeros(self.setup.hosts, dtype=bool)
        on[self.host[self.host >= 0]] = True
        on[self.dst[self.dst >= 0]] = True
        return on

    def ram_used(self) -> Floats:
        """Memory held on each host, counting VMs on their way in."""
        h = self.setup.hosts
        placed = self.host >= 0
        used = sum_by(self.host[placed], self.ram[placed], h)
        moving = self.dst >= 0
        return used + sum_by(self.dst[moving], self.ram[moving], h)

    def snapshot(self, r: Floats) -> VmCluster:
        """What a strategy sees now: demand, memory, history; memory is a hard limit."""
        h = self.setup.hosts
        placed = self.host >= 0
        hv = self.host[placed]
        capped = np.minimum(r[placed], self.pe[hv])
        total = sum_by(hv, capped, h)
        demand = sum_by(hv, r[placed], h)
        return VmCluster(
            capacity=self.capacity,
            pe_capacity=self.pe,
            ram=self.host_ram - self.ram_used() + sum_by(hv, self.ram[placed], h),
            power_kind=self.power_kind,
            power_watts=self.watts,
            utilisation=np.minimum(demand / self.capacity, 1.0),
            allocated=np.minimum(total, self.capacity),
            available=np.maximum(self.capacity - total, 0.0),
            vm_host=self.host.copy(),
            vm_request=r,
            vm_size=self.mips,
            vm_ram=self.ram,
            vm_history=self.history,
            vm_migration_s=self.migration_s,
            vm_order=self.seq,
            vm_history_len=np.full(len(r), self.history_len, dtype=np.intp),
            interval_s=self.setup.interval_s,
            ram_limit=True,
            powered=self.powered(),
            charge_switch_on=True,
            vm_group=self.setup.anti_affinity,
        )

    def place_initially(self, r: Floats, strategy: VmStrategy) -> None:
        """Place every VM at its current demand, memory a hard limit: power-aware best fit decreasing for
        consolidating strategies, spread (each VM to the least loaded host with room) for balancing ones."""
        self.host[:] = -1
        if self.setup.initial == "snake":
            self._snake(r)
            return
        if getattr(strategy, "balances", False):
            self._spread(r)
            return
        cluster = self.snapshot(r)
        cluster.powered = np.zeros(self.setup.hosts, dtype=bool)
        plan = Plan.of(cluster)
        detector = getattr(strategy, "detector", None) or StaticThreshold(1.0)
        placement = PowerAwareBestFit(detector)
        power_now = plan.power_now()
        none = np.zeros(self.setup.hosts, dtype=bool)
        for v in sorted(range(len(r)), key=lambda v: -r[v]):
            target = placement.find_host(plan, v, none, power_now)
            if target is None:
                target = PowerAwareBestFit(StaticThreshold(np.inf)).find_host(plan, v, none, power_now)
            if target is None:
                raise PlacementError(f"VM {v} fits on no host: too little memory for the VMs")
            plan.add(v, target)
            self.host[v] = target

    def _snake(self, r: Floats) -> None:
        """Deal the VMs out largest first, host 0..H-1 then back H-1..0 (fast and even, for huge runs)."""
        order = np.argsort(-r, kind="stable")
        hosts = self.setup.hosts
        position = np.arange(len(order)) % (2 * hosts)
        self.host[order] = np.where(position < hosts, position, 2 * hosts - 1 - position)
        if (self.ram_used() > self.host_ram).any():
            raise PlacementError("the VMs do not fit in the hosts' memory when dealt out evenly")

    def _spread(self, r: Floats) -> None:
        load = np.zeros(self.setup.hosts)
        ram = np.zeros(self.setup.hosts)
        for v in sorted(range(len(r)), key=lambda v: -r[v]):
            fits = ram + self.ram[v] <= self.host_ram
            if not fits.any():
                raise PlacementError(f"VM {v} fits on no host: too little memory for the VMs")
            target = int(np.argmin(np.where(fits, load / self.capacity, np.inf)))
            self.host[v] = target
            load[target] += r[v]
            ram[target] += self.ram[v]


def run_honest(traces: Traces, settings: StrategySettings, setup: HonestSetup | None = None) -> RunResult:
    """Run one strategy through the honest model over the whole trace; returns the figures."""
    setup = setup or HonestSetup()
    strategy = strategy_for(settings)
    run = Recorder(settings, ("ram_fill_max", "vms_placed"))
    world = HonestWorld(traces, setup)
    step = setup.interval_s
    world.place_initially(world.trace[:, 0] * world.mips, strategy)
    acc = Accumulator(world.capacity, world.power_kind, world.watts, setup.threshold)
    for k in range(traces.points):
        t = k * step
        r = world.trace[:, k] * world.mips  # the demand of the coming interval: not known to the strategy
        chosen = run.decide(world.snapshot(world.trace[:, k - 1] * world.mips), t) if k > 0 else []
        for m in chosen:
            world.dst[m.vm] = m.target
        run.series["ram_fill_max"].append(float((world.ram_used() / world.host_ram).max()))
        run.series["vms_placed"].append(float((world.host >= 0).sum()))
        ends = sorted({float(world.migration_s[m.vm]) for m in chosen})
        segment_start = 0.0
        state = _honest_state(world, r)
        acc.moment(state)
        run.step(t, state, len(chosen), world.capacity)
        for end in [*ends, step]:
            dt = min(end, step) - segment_start
            acc.interval(state, state.utilisation, dt)
            segment_start = min(end, step)
            done = (world.dst >= 0) & (world.migration_s <= end)
            world.host[done] = world.dst[done]
            world.seq[done] = world.arrivals + np.arange(int(done.sum()))
            world.arrivals += int(done.sum())
            world.dst[done] = -1
            state = _honest_state(world, r)
            if end < step:
                acc.moment(state)
        world.history = np.roll(world.history, 1, axis=1)  # the interval is over: now it is measured
        world.history[:, 0] = world.trace[:, k]
        world.history_len = min(world.history_len + 1, HISTORY)
    return run.result(acc, strategy.name, "honest", setup.hosts, traces.vms)


def _honest_state(world: HonestWorld, r: Floats) -> HostState:
    """The state for the metrics: a host is active while it is on, and it is in violation (SLATAH) while any of
    its VMs gets less CPU than it asks for: the host is asked for more than it has, a VM for more than one core,
    or a VM is migrating out (10 % less). A VM migrating in costs its destination nothing here."""
    state = world.state(r)
    on = world.powered()
    # A powered host with idle VMs draws idle power: mark it active with a tiny utilisation for the metrics.
    state.utilisation = np.where(on & (state.utilisation == 0), 1e-12, np.where(on, state.utilisation, 0.0))
    given_all = state.allocated >= state.requested * (1 - 1e-9)
    state.allocated = np.where(given_all, state.requested, state.allocated)
    return state
