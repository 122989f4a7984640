"""What a VM cluster run is judged by, accumulated interval by interval (CloudSim's definitions).

- energy: each host's power, interpolated linearly over each interval between its utilisation at the start
  (after that moment's changes) and at the end (before them); a host that was off at the start adds nothing.
- SLATAH: the share of active host-time during which a host was given less CPU than its VMs asked for
  (a host receiving a VM counts the VM's whole request but gives it 10 %, as in CloudSim).
- PDM: the CPU the VMs lost while migrating (10 % of their request on the source) over all they asked for.
- SLAV = SLATAH x PDM, ESV = energy x SLAV; host shutdowns; the time with any host over a threshold; and the
  real under-allocation: the CPU the VMs asked for and did not get, over all they asked for.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
from numpy.typing import NDArray

from loadpilot.decide.vms.cluster import VmCluster
from loadpilot.decide.vms.place import Migration
from loadpilot.decide.vms.power import PowerCurves
from loadpilot.decide.vms.strategies import PlanState, StrategySettings, plan_cluster

Floats = NDArray[np.float64]
Bools = NDArray[np.bool_]
Ints = NDArray[np.intp]


@dataclass
class HostState:
    """Hosts and VMs at one moment: utilisation (0..1), CPU given and asked for, per host and per VM."""

    utilisation: Floats
    allocated: Floats
    requested: Floats
    vm_alive: Bools
    vm_requested: Floats
    vm_allocated: Floats
    vm_migrating: Bools


@dataclass
class RunResult:
    """The figures of one run, and what it did."""

    strategy: str
    model: str
    hosts: int
    vms: int
    energy_kwh: float
    slatah: float
    pdm: float
    slav: float
    esv: float
    migrations: int
    host_shutdowns: int
    over_threshold_s: float
    host_over_threshold_s: float
    under_allocation: float
    mean_active_hosts: float
    run_time_s: float
    decision_time_max_s: float
    decision_time_mean_s: float
    steps: int
    series: dict[str, list[float]] = field(default_factory=dict, repr=False)
    heat: list[Floats] = field(default_factory=list, repr=False)
    moves: list[tuple[float, int, int, int]] = field(default_factory=list, repr=False)

    def summary(self) -> dict[str, Any]:
        """Every figure but the time series, as plain values (for JSON and tables)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("series", "heat", "moves")}


class Accumulator:
    """Adds up the figures interval by interval."""

    def __init__(self, capacity: Floats, power_kind: Ints, power_watts: Floats, threshold: float) -> None:
        self.capacity = capacity
        self.power_kind = power_kind
        self.curves = PowerCurves(power_watts)
        self.threshold = threshold
        self.energy_ws = 0.0
        self.active_s = 0.0
        self.violation_s = 0.0
        self.requested = 0.0
        self.allocated = 0.0
        self.migration_loss = 0.0
        self.shutdowns = 0
        self.over_s = 0.0
        self.host_over_s = 0.0
        self._previous_active: Bools = np.ones(len(capacity), dtype=bool)
        self.active_samples: list[float] = []

    def moment(self, state: HostState) -> None:
        """Record the state a host history entry would hold (for shutdown counting)."""
        active = state.utilisation > 0
        self.shutdowns += int((self._previous_active & ~active).sum())
        self._previous_active = active
        self.active_samples.append(float(active.sum()))

    def interval(self, start: HostState, end_utilisation: Floats, dt: float) -> None:
        """Add the interval [t, t + dt] that began in `start` and ended with hosts at `end_utilisation`."""
        if dt <= 0:
            return
        active = start.utilisation > 0
        p0 = self.curves.power(self.power_kind, start.utilisation)
        p1 = self.curves.power(self.power_kind, end_utilisation)
        self.energy_ws += float(((p0 + (p1 - p0) / 2) * dt)[active].sum())
        self.active_s += float(active.sum()) * dt
        self.violation_s += float((active & (start.allocated < start.requested)).sum()) * dt
        alive = start.vm_alive
        requested = start.vm_requested[alive]
        allocated = start.vm_allocated[alive]
        self.requested += float(requested.sum()) * dt
        self.allocated += float(allocated.sum()) * dt
        short = (allocated < requested) & start.vm_migrating[alive]
        self.migration_loss += float((requested - allocated)[short].sum()) * dt
        over = start.requested / self.capacity > self.threshold
        self.host_over_s += float(over.sum()) * dt
        if over.any():
            self.over_s += dt

    def result(self, **fields: Any) -> RunResult:
        """The figures so far."""
        slatah = self.violation_s / self.active_s if self.active_s else 0.0
        pdm = self.migration_loss / self.requested if self.requested else 0.0
        energy = self.energy_ws / 3.6e6
        under = (self.requested - self.allocated) / self.requested if self.requested else 0.0
        return RunResult(
            energy_kwh=energy,
            slatah=slatah,
            pdm=pdm,
            slav=slatah * pdm,
            esv=energy * slatah * pdm,
            host_shutdowns=self.shutdowns,
            over_threshold_s=self.over_s,
            host_over_threshold_s=self.host_over_s,
            under_allocation=under,
            mean_active_hosts=float(np.mean(self.active_samples)) if self.active_samples else 0.0,
            **fields,
        )


class Recorder:
    """What a run did, decision by decision: the strategy's calls (through `plan_cluster`, as the controller's),
    their duration, the moves, and the series the report charts."""

    def __init__(self, settings: StrategySettings, extra_series: tuple[str, ...] = ()) -> None:
        self.settings = settings
        self.state = PlanState()
        self.started = time.perf_counter()
        self.decision_times: list[float] = []
        self.heat: list[Floats] = []
        self.moves: list[tuple[float, int, int, int]] = []
        self.migrations = 0
        keys = ("time", "active_hosts", "migrations", "violation_hosts", *extra_series)
        self.series: dict[str, list[float]] = {k: [] for k in keys}

    def decide(self, cluster: VmCluster, now: float) -> list[Migration]:
        """One decision, timed; the strategy's state carried to the next."""
        tick = time.perf_counter()
        chosen, self.state = plan_cluster(cluster, self.settings, self.state, now)
        self.decision_times.append(time.perf_counter() - tick)
        self.moves.extend((now, m.vm, m.source, m.target) for m in chosen)
        self.migrations += len(chosen)
        return chosen

    def step(self, t: float, state: HostState, migrations: int, capacity: Floats) -> None:
        """The series' values after the decision at t."""
        self.series["time"].append(t)
        self.series["active_hosts"].append(float((state.utilisation > 0).sum()))
        self.series["migrations"].append(float(migrations))
        violating = (state.allocated < state.requested) & (state.utilisation > 0)
        self.series["violation_hosts"].append(float(violating.sum()))
        self.heat.append(state.requested / capacity)

    def result(self, acc: Accumulator, strategy: str, model: str, hosts: int, vms: int) -> RunResult:
        """The run's figures."""
        times = self.decision_times
        return acc.result(
            strategy=strategy,
            model=model,
            hosts=hosts,
            vms=vms,
            migrations=self.migrations,
            run_time_s=time.perf_counter() - self.started,
            decision_time_max_s=max(times, default=0.0),
            decision_time_mean_s=float(np.mean(times)) if times else 0.0,
            steps=len(times),
            series=self.series,
            heat=self.heat,
            moves=self.moves,
        )
