"""The simulated cluster as a VM actuator: the honest model (sim/vm_model.py) run in accelerated time, so the live
controller can drive it (`loadpilot up --cluster sim:<planetlab day dir> --speed 600`).

The world moves one trace interval at a time, as `run_honest` moves it: at the start of interval k the
controller sees every VM's demand as measured over interval k-1 (and its history up to it), and its migrations
start then; all of them end within the interval, in order of their durations, each VM arriving on its target;
when the interval ends its trace values are measured and join the history. Simulated time is
`(now - the first call's now) x speed`, so at --speed 600 a 300 s interval passes in half a second. Nothing has
been measured during the first interval (the simulator does not decide on it either), so `view` answers None then.

Here the simulator's snapshot is turned into a ClusterView (sim/vm_view.py) for the controller, which plans on it
with `decide.vms.strategies.plan`, the entry point the simulator reaches through `plan_cluster`; a test checks
that both take the same decisions, step by step. VMs are `vm-<i>` and hosts `host-<h>`, as in the simulator.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from loadpilot.act.fencing import EpochFence
from loadpilot.act.vm.base import (
    Domain,
    HostInfo,
    MigrationBook,
    MigrationProgress,
    MigrationSlots,
    ViewSource,
    VmDriver,
    VmNotFoundError,
    check_resize,
)
from loadpilot.config import Config
from loadpilot.decide.vms.strategies import StrategySettings, strategy_for
from loadpilot.errors import ConfigError, PermanentError
from loadpilot.model import ClusterView, Migrate, Resize
from loadpilot.sim.planetlab import Traces, load_traces
from loadpilot.sim.vm_cloudsim import HISTORY
from loadpilot.sim.vm_model import HonestSetup, HonestWorld
from loadpilot.sim.vm_view import MB, view_of


class SimCluster:
    """A VmActuator (and the view of itself) over the honest model, `speed` simulated seconds per real second."""

    def __init__(
        self,
        traces: Traces,
        setup: HonestSetup,
        settings: StrategySettings,
        fence: EpochFence,
        slots: MigrationSlots,
        speed: float = 1.0,
        name: str = "sim",
        clock: Callable[[], float] = time.time,
    ) -> None:
        if speed <= 0:
            raise PermanentError(f"cluster {name}: speed must be > 0, got {speed:g}")
        self.name, self.speed, self.setup = name, speed, setup
        self.world = HonestWorld(traces, setup)
        self.world.place_initially(self.world.trace[:, 0] * self.world.mips, strategy_for(settings))
        self.book = MigrationBook(fence, slots, clock)
        self.step = 0
        self.started: float | None = None
        self.moves: list[tuple[float, str, str, str]] = []  # (simulated time, vm, source, target), all so far
        self._this_step: list[int] = []

    # --- time ----------------------------------------------------------------------------------------------------

    @property
    def points(self) -> int:
        """Intervals in the trace."""
        return int(self.world.trace.shape[1])

    @property
    def sim_time(self) -> float:
        """The simulated time of the current interval's start."""
        return self.step * self.setup.interval_s

    def advance(self, now: float) -> int:
        """Move the world to the interval `now` falls in (the first call starts the clock); the interval."""
        if self.started is None:
            self.started = now
        wanted = min(int((now - self.started) * self.speed // self.setup.interval_s), self.points - 1)
        while self.step < wanted:
            self._finish_interval()
            self.step += 1
            self._this_step = []
        return self.step

    def _finish_interval(self) -> None:
        """Every migration of the interval ends, shortest first, then the interval's demand is measured, as in
        run_honest."""
        w = self.world
        ends = sorted({float(w.migration_s[v]) for v in self._this_step})
        for end in [*ends, self.setup.interval_s]:
            done = (w.dst >= 0) & (w.migration_s <= end)
            for v in np.flatnonzero(done).tolist():
                self.book.update(f"vm-{v}", state="completed", data_processed=int(w.ram[v] * MB), data_remaining=0)
            w.host[done] = w.dst[done]
            w.seq[done] = w.arrivals + np.arange(int(done.sum()))
            w.arrivals += int(done.sum())
            w.dst[done] = -1
        w.history = np.roll(w.history, 1, axis=1)
        w.history[:, 0] = w.trace[:, self.step]
        w.history_len = min(w.history_len + 1, HISTORY)

    # --- what the controller sees ----------------------------------------------------------------------------------

    def view(self, now: float) -> ClusterView | None:
        """The cluster at the start of the current interval, as the simulator's strategies see it; None during the
        first interval (no history yet) and once the trace is over."""
        k = self.advance(now)
        if k == 0 or (k == self.points - 1 and self._over(now)):
            return None
        w = self.world
        snapshot = w.snapshot(w.trace[:, k - 1] * w.mips)  # the last interval's demand, as measured
        return replace(view_of(snapshot), observed_at=self.sim_time)

    def _over(self, now: float) -> bool:
        assert self.started is not None
        return (now - self.started) * self.speed >= self.points * self.setup.interval_s

    def hosts(self) -> list[HostInfo]:
        """Every simulated host: two cores each, and its memory."""
        w = self.world
        return [HostInfo(f"host-{h}", 2, int(w.host_ram[h] * MB)) for h in range(self.setup.hosts)]

    def domains(self, host: str) -> list[Domain]:
        """The VMs on one host (one vCPU each), named vm-<i>."""
        h = self._host(host)
        w = self.world
        return [Domain(f"vm-{v}", f"vm-{v}", host, 1, int(w.ram[v] * MB)) for v in np.flatnonzero(w.host == h).tolist()]

    def _host(self, host: str) -> int:
        if host.startswith("host-") and host[5:].isdigit() and int(host[5:]) < self.setup.hosts:
            return int(host[5:])
        raise VmNotFoundError(
            f"cluster {self.name}: no host {host!r} (hosts are host-0 .. host-{self.setup.hosts - 1})"
        )

    def _vm(self, vm: str) -> int:
        n = len(self.world.host)
        if vm.startswith("vm-") and vm[3:].isdigit() and int(vm[3:]) < n:
            return int(vm[3:])
        raise VmNotFoundError(f"cluster {self.name}: no VM {vm!r} (VMs are vm-0 .. vm-{n - 1})")

    # --- acting --------------------------------------------------------------------------------------------------

    def migrate(self, action: Migrate) -> MigrationProgress:
        """Start a migration now: the VM arrives on its target at the end of the interval (fenced, limited)."""
        v, source, target = self._vm(action.vm), self._host(action.source), self._host(action.target)
        w = self.world
        if int(w.host[v]) != source:
            raise VmNotFoundError(f"cluster {self.name}: {action.vm} is on host-{int(w.host[v])}, not {action.source}")
        if target == source:
            raise PermanentError(f"migration of {action.vm}: the target is its source ({action.source})")
        with self.book.admit(action) as job:
            w.dst[v] = target
            self._this_step.append(v)
            self.moves.append((self.sim_time, action.vm, action.source, action.target))
        return replace(job, data_total=int(w.ram[v] * MB), data_processed=0)

    def migrations(self) -> list[MigrationProgress]:
        """Migrations of the current interval (running), and those that ended since the last call (once)."""
        return self.book.report()

    def resize(self, action: Resize) -> None:
        """Change a simulated VM's memory (its CPU is its trace's); PermanentError for vCPUs."""
        check_resize(action)
        v = self._vm(action.vm)
        if action.vcpus is not None and action.vcpus != 1:
            raise PermanentError(f"cluster {self.name}: simulated VMs have one vCPU each (their trace); cannot resize")
        with self.book.fence.admit(action.epoch):
            if action.memory is not None:
                self.world.ram[v] = action.memory / MB

    def close(self) -> None:
        """Nothing to let go of."""


def _open(
    config: Config, fence: EpochFence, slots: MigrationSlots, clock: Callable[[], float]
) -> tuple[SimCluster, ViewSource]:
    cluster = config.cluster
    settings = StrategySettings.of(cluster)  # control/migrate.py settings_of has checked the strategy's name
    try:
        traces = load_traces(Path(config.path(cluster.sim_trace)))
    except PermanentError as exc:
        raise ConfigError([f"cluster.url: {exc}"]) from None
    setup = HonestSetup(hosts=cluster.sim.hosts, interval_s=cluster.interval_s)
    sim = SimCluster(traces, setup, settings, fence, slots, cluster.sim.speed, cluster.name, clock)
    return sim, sim.view


DRIVER = VmDriver(_open, store=False)  # `sim:<PlanetLab day dir or CSV>`: the simulated cluster, its own view
