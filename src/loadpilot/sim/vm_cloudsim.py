"""CloudSim 3.0.3's power-example world, quirks included, to validate the simulator against its figures.

As CloudSim does it (see shared/data/cloudsim_reference.md): host i is an HP ML110 G4 (even i) or G5 (odd i);
VM i gets type i // ceil(N/4); at t = 0 VMs are placed with their full CPU and memory; decisions at
t = 300k + 0.1; a VM's demand is its trace interpolated at that moment; migrations take RAM / 62.5 MB/s, the VM
gets 90 % of its request on the source and the destination reserves 10 %; each migration's end is an event at
which every host is updated; a VM whose demand is exactly 0 is removed for good; memory is only checked at
t = 0; energy is counted from the first decision on; a VM placed on a host in the over-load phase and moved
on when that host is emptied in the under-load phase migrates twice (the duplicate counts, and the host the
first migration aims at reserves CPU for it while both run).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from loadpilot.decide.vms.cluster import Plan, VmCluster, sum_by
from loadpilot.decide.vms.place import Migration, PowerAwareBestFit
from loadpilot.decide.vms.power import HP_G4, HP_G5, table_matrix
from loadpilot.decide.vms.strategies import StrategySettings, VmStrategy, strategy_for
from loadpilot.sim.planetlab import Traces
from loadpilot.sim.vm_metrics import Accumulator, HostState, Recorder, RunResult

Floats = NDArray[np.float64]
Ints = NDArray[np.intp]
Bools = NDArray[np.bool_]

PE_MIPS = (1860.0, 2660.0)  # G4, G5: two cores each
HOST_RAM_MB = 4096.0
VM_MIPS = (2500.0, 2000.0, 1000.0, 500.0)
VM_RAM_MB = (870.0, 1740.0, 1740.0, 613.0)
MIGRATION_MB_S = 1_000_000 / (2 * 8000)  # half of 1 Gbit/s, in CloudSim's units
HISTORY = 30
VMS_PER_HOST_BY_BW = 10  # 100 Mbit/s per VM on 1 Gbit/s hosts, checked at t = 0


@dataclass(frozen=True)
class CloudSimSetup:
    """The reference set-up: host count, decision interval, and the threshold for the over-threshold time."""

    hosts: int = 800
    interval_s: float = 300.0
    threshold: float = 0.8


class CloudSimWorld:
    """The state of the simulated data centre between events."""

    def __init__(self, traces: Traces, setup: CloudSimSetup) -> None:
        n = traces.vms
        self.setup = setup
        self.trace = np.concatenate([traces.utilisation, traces.utilisation[:, -1:]], axis=1)
        kind = np.arange(setup.hosts) % 2
        self.power_kind = kind.astype(np.intp)
        self.watts = table_matrix([HP_G4, HP_G5])
        self.pe = np.array(PE_MIPS)[kind]
        self.capacity = 2 * self.pe
        block = math.ceil(n / 4)
        vm_type = np.arange(n) // block
        self.mips = np.array(VM_MIPS)[vm_type]
        self.ram = np.array(VM_RAM_MB)[vm_type]
        self.migration_s = self.ram / MIGRATION_MB_S
        self.host: Ints = np.full(n, -1, dtype=np.intp)
        self.seq: Ints = np.zeros(n, dtype=np.intp)
        self.arrivals = 0
        self.history = np.zeros((n, HISTORY))
        self.history_len = 0
        self.flight_vm: list[int] = []
        self.flight_dst: list[int] = []
        self.flight_end: list[float] = []
        self.migrating: Bools = np.zeros(n, dtype=bool)

    # -- the workload -------------------------------------------------------------------------------------
    def requests(self, t: float) -> Floats:
        """Every VM's CPU request at time t: its trace interpolated as UtilizationModelPlanetLabInMemory does."""
        step = self.setup.interval_s
        if t % step == 0:
            return np.asarray(self.trace[:, int(t // step)] * self.mips)
        k1 = math.floor(t / step)
        k2 = math.ceil(t / step)
        u1 = self.trace[:, k1]
        u2 = self.trace[:, k2]
        delta = (u2 - u1) / ((k2 - k1) * step)
        return np.asarray((u1 + delta * (t - k1 * step)) * self.mips)

    # -- host scheduling ------------------------------------------------------------------------------------
    def state(self, r: Floats) -> HostState:
        """Hosts' allocation for requests r: VmSchedulerTimeSharedOverSubscription with migrations in flight."""
        h = self.setup.hosts
        alive = self.host >= 0
        hv = self.host[alive]
        rv = r[alive]
        capped = np.minimum(rv, self.pe[hv])
        mig = self.migrating[alive]
        fv = np.array(self.flight_vm, dtype=np.intp)
        fd = np.array(self.flight_dst, dtype=np.intp)
        in_capped = np.minimum(r[fv], self.pe[fd]) * 0.1
        required = sum_by(hv, capped, h) + sum_by(fd, in_capped, h)
        over = required > self.capacity
        scale = np.divide(self.capacity, required, out=np.ones(h), where=required > 0)
        normal = np.where(mig, capped * 0.9, capped)
        squeezed = np.floor(np.where(mig, capped * scale[hv] * 0.9, capped * scale[hv]))
        alloc_v = np.where(over[hv], squeezed, normal)
        in_alloc = np.where(over[fd], np.floor(np.minimum(r[fv], self.pe[fd]) * 0.1 * scale[fd]), in_capped)
        used = sum_by(hv, np.where(mig, alloc_v / 0.9, alloc_v), h)
        used += sum_by(fd, in_alloc, h)
        requested = sum_by(hv, rv, h) + sum_by(fd, r[fv], h)
        vm_alloc = np.zeros(len(r))
        vm_alloc[alive] = alloc_v
        return HostState(
            utilisation=np.minimum(used / self.capacity, 1.0),
            allocated=used,
            requested=requested,
            vm_alive=alive,
            vm_requested=np.where(alive, r, 0.0),
            vm_allocated=vm_alloc,
            vm_migrating=self.migrating & alive,
        )

    def remove_finished(self, r: Floats) -> bool:
        """CloudSim treats a VM asking for exactly 0 (and not migrating) as finished, and removes it for good;
        whether any was."""
        gone = (self.host >= 0) & ~self.migrating & (r == 0)
        if not gone.any():
            return False
        self.host[gone] = -1
        return True

    # -- decisions ------------------------------------------------------------------------------------------
    def snapshot(self, r: Floats, pre: HostState) -> VmCluster:
        """What the strategy sees at a decision time (no migration is in flight then)."""
        alive = self.host >= 0
        hv = self.host[alive]
        capped_sum = sum_by(hv, np.minimum(r[alive], self.pe[hv]), self.setup.hosts)
        allocated = sum_by(hv, pre.vm_allocated[alive], self.setup.hosts)
        available = np.where(capped_sum > self.capacity, 0.0, self.capacity - capped_sum)
        return VmCluster(
            capacity=self.capacity,
            pe_capacity=self.pe,
            ram=np.full(self.setup.hosts, HOST_RAM_MB),
            power_kind=self.power_kind,
            power_watts=self.watts,
            utilisation=pre.utilisation,
            allocated=allocated,
            available=available,
            vm_host=self.host.copy(),
            vm_request=r,
            vm_size=self.mips,
            vm_ram=self.ram,
            vm_history=self.history,
            vm_migration_s=self.migration_s,
            vm_order=self.seq,
            vm_history_len=np.full(len(r), self.history_len, dtype=np.intp),
            interval_s=self.setup.interval_s,
        )

    def start(self, migrations: list[Migration], t: float) -> None:
        """Start migrations now; each ends after RAM / bandwidth."""
        for m in migrations:
            self.flight_vm.append(m.vm)
            self.flight_dst.append(m.target)
            self.flight_end.append(t + float(self.ram[m.vm]) / MIGRATION_MB_S)
            self.migrating[m.vm] = True

    def finish(self, end: float) -> None:
        """Complete the migrations ending at `end`, in the order they started."""
        keep_vm, keep_dst, keep_end = [], [], []
        for v, d, e in zip(self.flight_vm, self.flight_dst, self.flight_end, strict=True):
            if e == end:
                self.host[v] = d
                self.seq[v] = self.arrivals
                self.arrivals += 1
            else:
                keep_vm.append(v)
                keep_dst.append(d)
                keep_end.append(e)
        self.flight_vm, self.flight_dst, self.flight_end = keep_vm, keep_dst, keep_end
        self.migrating[:] = False
        self.migrating[np.array(keep_vm, dtype=np.intp)] = True

    # -- t = 0 --------------------------------------------------------------------------------------------
    def place_initially(self, strategy: VmStrategy) -> None:
        """Create every VM at t = 0 with its full CPU and memory: PABFD for migrating policies (CloudSim's quirk:
        VMs already placed ask for nothing yet, so only the new VM's CPU is tested), first fit otherwise."""
        n = len(self.mips)
        h = self.setup.hosts
        cluster = VmCluster(
            capacity=self.capacity,
            pe_capacity=self.pe,
            ram=np.full(h, HOST_RAM_MB),
            power_kind=self.power_kind,
            power_watts=self.watts,
            utilisation=np.zeros(h),
            allocated=np.zeros(h),
            available=self.capacity.copy(),
            vm_host=np.full(n, -1, dtype=np.intp),
            vm_request=self.mips,
            vm_size=self.mips,
            vm_ram=self.ram,
            vm_history=np.zeros((n, HISTORY)),
            vm_migration_s=self.migration_s,
            vm_order=np.arange(n, dtype=np.intp),
            interval_s=self.setup.interval_s,
            ram_limit=True,
        )
        plan = Plan.of(cluster)
        detector = getattr(strategy, "detector", None)
        placement = PowerAwareBestFit(detector) if detector is not None else None
        power_now = plan.power_now()
        for v in range(n):
            full = plan.count >= VMS_PER_HOST_BY_BW
            if placement is None:
                fits = ~full & (self.pe >= self.mips[v]) & (plan.avail >= self.mips[v])
                fits &= plan.ram_used + self.ram[v] <= HOST_RAM_MB
                target = int(np.argmax(fits)) if fits.any() else None
            else:
                target = placement.find_host(plan, v, full, power_now)
            if target is None:
                continue
            plan.add(v, target)
            plan.requested[target] -= self.mips[v]
            self.host[v] = target
            self.seq[v] = self.arrivals
            self.arrivals += 1


def run_cloudsim(traces: Traces, settings: StrategySettings, setup: CloudSimSetup | None = None) -> RunResult:
    """Run one strategy through the CloudSim model over the whole trace; returns the figures."""
    setup = setup or CloudSimSetup()
    strategy = strategy_for(settings)
    run = Recorder(replace(settings, merge_moves=False))  # CloudSim migrates a VM planned twice twice
    world = CloudSimWorld(traces, setup)
    world.place_initially(strategy)
    acc = Accumulator(world.capacity, world.power_kind, world.watts, setup.threshold)
    limit = traces.points * setup.interval_s
    last_t = 0.0
    last_state: HostState | None = None
    t = 0.1
    while True:
        t = t + setup.interval_s  # CloudSim's clock adds the interval each time: the same float steps
        if t >= limit:
            break
        r = world.requests(t)
        pre = world.state(r)
        if last_state is not None:
            acc.interval(last_state, pre.utilisation, t - last_t)
        world.history = np.roll(world.history, 1, axis=1)
        world.history[:, 0] = np.where(world.host >= 0, r / world.mips, 0.0)
        world.history_len = min(world.history_len + 1, HISTORY)
        removed = world.remove_finished(r)
        chosen = run.decide(world.snapshot(r, world.state(r) if removed else pre), t)
        world.start(chosen, t)
        post = world.state(r)
        acc.moment(post)
        run.step(t, post, len(chosen), world.capacity)
        last_t, last_state = t, post
        for end in sorted(set(world.flight_end)):
            r = world.requests(end)
            pre = world.state(r)
            acc.interval(last_state, pre.utilisation, end - last_t)
            world.remove_finished(r)
            world.finish(end)
            world.remove_finished(r)
            post = world.state(r)
            acc.moment(post)
            last_t, last_state = end, post
    return run.result(acc, strategy.name, "cloudsim", setup.hosts, traces.vms)
