"""The controller's VM half: once per interval, while leading, plan the cluster's migrations and start them.

Each tick (Controller.step calls `reconcile` while this controller leads):
1. the cluster is observed: a ClusterView, from the simulated cluster itself or built from the actuator's
   inventory and the VMs' CPU samples in the store (control/cluster_view.py);
2. the migrations the actuator finished since the last tick are recorded (`migrated` events: completed or failed);
3. once per new view (one per `cluster.interval_s`), the pure entry point `decide.vms.strategies.plan` decides,
   with the migrations still in flight, at the view's time, with the leader's epoch: the same code and the same
   state the simulator uses, so both decide alike;
4. each migration is started through the actuator (epoch-fenced, within its limits), right after checking the
   leadership again, and recorded as a `migrate` event with the strategy's reason; a decision to move nothing is a
   `hold` event, written once per kind of reason.

Errors: a migration refused for the limits (MigrationLimitError) or failing for a moment (TemporaryError) is
recorded and decided afresh next interval; a stale epoch stops this tick's migrations (a newer leader acts); a
permanent error is recorded and the next migration is tried.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from loadpilot import plugins
from loadpilot.act.fencing import EpochFence
from loadpilot.act.vm.base import (
    Inventory,
    MigrationLimitError,
    MigrationProgress,
    MigrationSlots,
    ViewSource,
    VmActuator,
    VmDriver,
)
from loadpilot.config import ClusterConfig, Config
from loadpilot.control.events import EventLog, reason_kind
from loadpilot.control.status import ClusterControlStatus
from loadpilot.decide.vms.strategies import PlanState, StrategyError, StrategySettings, plan, strategy_for
from loadpilot.errors import ConfigError, LoadpilotError, PermanentError, StaleEpochError, TemporaryError
from loadpilot.model import ClusterView, Migrate
from loadpilot.store import Store

log = logging.getLogger(__name__)

STARTED_KEPT = 10_000  # migrations remembered for `loadpilot up` and tests (events keep them all)


class Leader(Protocol):
    """The part of a Leadership this module needs."""

    epoch: int

    def is_leader(self) -> bool:
        """True while this controller may act."""
        ...


def settings_of(cluster: ClusterConfig) -> StrategySettings:
    """The strategy settings of a [cluster] section; ConfigError naming cluster.strategy when it is unknown."""
    settings = StrategySettings.of(cluster)
    try:
        strategy_for(settings)
    except StrategyError as exc:
        raise ConfigError([f"cluster.strategy: {exc}"]) from None
    return settings


def open_cluster(
    config: Config, store: Store | None, clock: Callable[[], float] = time.time
) -> tuple[VmActuator, ViewSource]:
    """The actuator the [cluster] section names (the `loadpilot.vm_actuators` entry point of its url's scheme), and
    where its views come from; ConfigError for a bad setting, MissingDependencyError for a driver whose library is
    not installed, TemporaryError for a host not answering."""
    cluster = config.cluster
    settings_of(cluster)  # checks cluster.strategy (ConfigError naming it)
    try:
        driver: VmDriver = plugins.load(plugins.VM_ACTUATORS, cluster.kind)
    except PermanentError as exc:
        raise ConfigError([f"cluster.url: {exc}"]) from None
    if driver.store and store is None:
        raise ConfigError([f"cluster.url: a {cluster.kind} cluster is observed through the store; none is open"])
    fence = EpochFence(config.state_path / "vm" / cluster.name / "epoch.json", f"cluster {cluster.name}")
    slots = MigrationSlots(cluster.max_migrations, cluster.max_migrations_per_host)
    actuator, seen = driver.open(config, fence, slots, clock)
    if not isinstance(seen, Inventory):
        return actuator, seen
    assert store is not None, f"the {cluster.kind} VM actuator answers an Inventory but declares store=False"
    from loadpilot.control.cluster_view import InventoryView

    return actuator, InventoryView(actuator, store, cluster.interval_s, seen.power_model, seen.bandwidth_mib_s)


@dataclass
class MigrationControl:
    """What the controller keeps about the cluster between ticks."""

    name: str
    opener: Callable[[], tuple[VmActuator, ViewSource]]  # open_cluster, called at the first tick (and until it works)
    settings: StrategySettings
    events: EventLog
    member_id: str = ""
    actuator: VmActuator | None = None
    observe: ViewSource | None = None
    flagged: str = ""  # a permanent error opening the cluster: not balanced until the controller restarts
    state: PlanState = field(default_factory=PlanState)
    decided_at: float | None = None  # observed_at of the last view decided on
    held: str = ""
    epoch: int = 0  # the leadership term of the last tick
    last_reason: str = ""
    started: deque[Migrate] = field(default_factory=lambda: deque(maxlen=STARTED_KEPT))  # the latest started
    started_total: int = 0
    running: int = 0  # migrations in flight at the last tick
    seen: ClusterView | None = None  # the last view observed

    def reconcile(self, now: float, leader: Leader) -> list[Migrate]:
        """One tick (see the module's docstring); the migrations started."""
        if leader.epoch != self.epoch:  # a new term records its first hold again
            self.epoch, self.held = leader.epoch, ""
        if not self._open(now, leader):
            return []
        assert self.observe is not None
        try:
            view = self.observe(now)
        except LoadpilotError as exc:
            self._collect(now)
            self._hold(now, leader, f"cannot observe the cluster: {exc}", {})
            return []
        running = self._collect(now)
        self.running = len(running)
        if view is not None:
            self.seen = view
        if view is None or view.observed_at == self.decided_at:
            return []
        in_flight = [Migrate(m.vm, m.source, m.target, "in flight") for m in running]
        try:
            actions, state = plan(view, self.settings, self.state, view.observed_at, in_flight, leader.epoch)
        except (StrategyError, ValueError) as exc:
            self._hold(now, leader, f"cannot plan: {exc}", {})
            return []
        self.decided_at, self.state = view.observed_at, state
        inputs = {"hosts": len(view.hosts), "vms": len(view.vms), "in_flight": len(in_flight)}
        if not actions:
            self._hold(now, leader, f"{self.settings.strategy}: no migration needed", inputs)
            return []
        self.held = ""
        started = []
        for action in actions:
            if not leader.is_leader():  # checked again right before acting
                break
            if self._start(now, action, view, inputs):
                started.append(action)
            elif self.last_reason.startswith("refused"):
                break
        return started

    def _open(self, now: float, leader: Leader) -> bool:
        """Open the cluster's actuator if it is not open yet; False (and a hold event) when it cannot be."""
        if self.actuator is not None:
            return True
        if self.flagged:
            return False
        try:
            self.actuator, self.observe = self.opener()
        except PermanentError as exc:
            self.flagged = str(exc)
            self._hold(now, leader, f"cannot open the cluster: {exc}; not balanced until the controller restarts", {})
            log.error("cluster %s flagged: %s", self.name, exc)
            return False
        except TemporaryError as exc:
            self._hold(now, leader, f"cannot reach the cluster: {exc}; trying again next tick", {})
            return False
        return True

    def _start(self, now: float, action: Migrate, view: ClusterView, inputs: dict[str, Any]) -> bool:
        assert self.actuator is not None
        began = time.monotonic()
        ok = False
        try:
            self.actuator.migrate(action)
        except StaleEpochError as exc:
            result = f"refused: {exc}"
        except MigrationLimitError as exc:
            result = f"deferred: {exc}"
        except TemporaryError as exc:
            result = f"error: {exc}; decided afresh next interval"
        except PermanentError as exc:
            result = f"failed: {exc}"
        else:
            result, ok = "started", True
            self.started.append(action)
            self.started_total += 1
        self.last_reason = result if not ok else action.reason
        details = {
            **inputs,
            "source": action.source,
            "target": action.target,
            "epoch": action.epoch,
            "member": self.member_id,
            "strategy": self.settings.strategy,
            "cluster": self.name,
            "view_at": view.observed_at,
            "duration_s": round(time.monotonic() - began, 6),
        }
        log.info(
            "cluster %s: %s %s -> %s: %s (%s)",
            self.name,
            action.vm,
            action.source,
            action.target,
            result,
            action.reason,
        )
        self.events.add(now, "migrate", f"vm/{action.vm}", action.reason, result, details)
        return ok

    def _collect(self, now: float) -> list[MigrationProgress]:
        """An event for every migration that ended since the last tick; the migrations still running."""
        assert self.actuator is not None
        try:
            jobs = self.actuator.migrations()
        except LoadpilotError as exc:
            log.warning("cluster %s: cannot read the migrations' progress: %s", self.name, exc)
            return []
        running = []
        for job in jobs:
            if job.state == "running":
                running.append(job)
                continue
            result = "completed" if job.state == "completed" else f"failed: {job.error}"
            details = {
                "source": job.source,
                "target": job.target,
                "elapsed_s": round(job.elapsed_s, 3),
                "bytes": job.data_processed,
                "cluster": self.name,
            }
            self.events.add(now, "migrated", f"vm/{job.vm}", f"migration {job.source} -> {job.target}", result, details)
        return running

    def _hold(self, now: float, leader: Leader, reason: str, inputs: dict[str, Any]) -> None:
        """Record a decision to move nothing, once per kind of reason."""
        self.last_reason = reason
        kind = reason_kind(reason)
        if kind == self.held:
            return
        self.held = kind
        details = {**inputs, "epoch": leader.epoch, "member": self.member_id, "strategy": self.settings.strategy}
        self.events.add(now, "hold", f"cluster/{self.name}", reason, "kept", details)

    def status(self) -> ClusterControlStatus:
        """What `loadpilot up`'s view shows of the cluster: its size and heat at the last view, the migrations."""
        status = ClusterControlStatus(
            self.name,
            self.settings.strategy,
            in_flight=self.running,
            started=self.started_total,
            flagged=self.flagged,
            last_reason=self.last_reason,
        )
        if self.seen is not None:
            powered = [h for h in self.seen.hosts if h.powered]
            status.observed_at = self.seen.observed_at
            status.hosts, status.powered, status.vms = len(self.seen.hosts), len(powered), len(self.seen.vms)
            if powered:
                status.mean_utilisation = sum(h.utilisation for h in powered) / len(powered)
                hottest = max(powered, key=lambda h: h.utilisation)
                status.hottest, status.hottest_utilisation = hottest.id, hottest.utilisation
        return status

    def close(self) -> None:
        """Let go of the actuator's connections."""
        if self.actuator is not None:
            self.actuator.close()


def migration_control(
    config: Config, store: Store, events: EventLog, member_id: str, clock: Callable[[], float] = time.time
) -> MigrationControl | None:
    """The controller's VM half for an enabled [cluster] section (None when it is off). The cluster is opened at
    the first tick: a cluster that cannot be reached yet is tried again every tick, one that cannot be opened at
    all (a missing trace, a missing driver) is flagged, each with an event, and the controller runs on."""
    if not config.cluster.enabled:
        return None
    settings = settings_of(config.cluster)
    name = config.cluster.name
    return MigrationControl(name, lambda: open_cluster(config, store, clock), settings, events, member_id)
