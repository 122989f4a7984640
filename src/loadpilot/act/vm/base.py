"""What every VM actuator offers, and the parts they share: fencing, concurrency limits, migration progress.

A VM actuator drives one cluster of hypervisors: it lists hosts and the domains (VMs) on each, live-migrates a
VM from one host to another and reports the migration's progress, and resizes a VM's vCPUs and memory. Every
action carries the epoch of the leadership term that decided it and passes the cluster's epoch fence
(act/fencing.py), so a leader that was replaced cannot act any more. Migrations are counted here, in the
actuator, as well as in the strategies: never more than `total` at once in the cluster, nor more than `per_host`
leaving or arriving on any one host, whoever asks.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

from loadpilot.act.fencing import EpochFence
from loadpilot.config import Config
from loadpilot.errors import PermanentError, TemporaryError
from loadpilot.model import ClusterView, Migrate, Resize

MigrationState = Literal["running", "completed", "failed"]


class MigrationLimitError(TemporaryError):
    """A migration would exceed the cluster's or a host's limit of concurrent migrations: try it later."""


class VmNotFoundError(PermanentError):
    """The VM or host an action names is not in the cluster (or not where the action says it is)."""


@dataclass(frozen=True, slots=True)
class HostInfo:
    """One hypervisor: its name in the cluster, its CPU cores and its memory in bytes."""

    id: str
    cpus: int
    memory: int


@dataclass(frozen=True, slots=True)
class Domain:
    """One VM on one host: a stable id (libvirt UUID, Nova server id), its name, vCPUs, memory (bytes), whether it
    runs (holds memory and may use CPU), and whether it is paused (as a live migration's incoming copy is)."""

    id: str
    name: str
    host: str
    vcpus: int
    memory: int
    running: bool = True
    paused: bool = False


@dataclass(frozen=True, slots=True)
class MigrationProgress:
    """A migration started by this actuator: where it stands, and the bytes of memory moved so far (None where
    the hypervisor does not say)."""

    vm: str
    source: str
    target: str
    state: MigrationState
    started_at: float
    elapsed_s: float = 0.0
    data_total: int | None = None
    data_processed: int | None = None
    data_remaining: int | None = None
    error: str = ""

    @property
    def fraction(self) -> float | None:
        """How much of the memory has been copied, 0..1 (1 once completed; None when unknown)."""
        if self.state == "completed":
            return 1.0
        if not self.data_total or self.data_processed is None:
            return None
        return min(1.0, self.data_processed / self.data_total)


class VmActuator(Protocol):
    """One cluster of hypervisors, as the controller drives it."""

    name: str

    def hosts(self) -> list[HostInfo]:
        """Every host of the cluster."""
        ...

    def domains(self, host: str) -> list[Domain]:
        """The VMs on one host (VmNotFoundError for an unknown host)."""
        ...

    def migrate(self, action: Migrate) -> MigrationProgress:
        """Start a live migration (fenced, within the limits); returns its progress at once."""
        ...

    def migrations(self) -> list[MigrationProgress]:
        """Every migration started and not yet reported finished: running ones, and those that ended since the
        last call (reported once, then forgotten)."""
        ...

    def resize(self, action: Resize) -> None:
        """Change a VM's vCPUs and/or memory (fenced)."""
        ...

    def close(self) -> None:
        """Let go of connections and wait for nothing."""
        ...


class MigrationSlots:
    """Counts the migrations in flight: at most `total` in the cluster, at most `per_host` leaving or arriving
    on any one host (None: no limit). Thread-safe: migrations end on other threads."""

    def __init__(self, total: int | None = None, per_host: int | None = None) -> None:
        self.total, self.per_host = total, per_host
        self._moving: dict[str, tuple[str, str]] = {}
        self._lock = threading.Lock()

    def reserve(self, vm: str, source: str, target: str) -> None:
        """Count one more migration; MigrationLimitError (temporary) when a limit is reached or the VM already
        migrates."""
        with self._lock:
            if vm in self._moving:
                raise MigrationLimitError(f"{vm} is already migrating ({self._moving[vm][0]} -> {self._moving[vm][1]})")
            if self.total is not None and len(self._moving) >= self.total:
                raise MigrationLimitError(
                    f"{len(self._moving)} migrations in flight, the cluster's limit (max_migrations = {self.total}); "
                    "try again when one has finished"
                )
            for host in (source, target):
                busy = sum(host in pair for pair in self._moving.values())
                if self.per_host is not None and busy >= self.per_host:
                    raise MigrationLimitError(
                        f"{busy} migrations in flight on {host}, its limit (max_migrations_per_host = "
                        f"{self.per_host}); try again when one has finished"
                    )
            self._moving[vm] = (source, target)

    def release(self, vm: str) -> None:
        """Stop counting a migration (it finished or failed)."""
        with self._lock:
            self._moving.pop(vm, None)

    def in_flight(self) -> dict[str, tuple[str, str]]:
        """VM -> (source, target) of every migration counted now."""
        with self._lock:
            return dict(self._moving)


class MigrationBook:
    """The migrations an actuator started, their progress, and the slots they hold; shared by the actuators."""

    def __init__(self, fence: EpochFence, slots: MigrationSlots, clock: Callable[[], float] = time.time) -> None:
        self.fence, self.slots, self.clock = fence, slots, clock
        self._jobs: dict[str, MigrationProgress] = {}
        self._lock = threading.Lock()

    @contextmanager
    def admit(self, action: Migrate) -> Iterator[MigrationProgress]:
        """Fence, then take a slot, for the body that starts `action`; the slot is given back if the body raises.
        Yields the new migration's progress (state running), already recorded."""
        with self.fence.admit(action.epoch):
            self.slots.reserve(action.vm, action.source, action.target)
            job = MigrationProgress(action.vm, action.source, action.target, "running", self.clock())
            with self._lock:
                self._jobs[action.vm] = job
            try:
                yield job
            except BaseException:
                self.slots.release(action.vm)
                with self._lock:
                    self._jobs.pop(action.vm, None)
                raise

    def update(self, vm: str, **changes: Any) -> MigrationProgress:
        """Record new progress of a migration (state, bytes); a finished one gives its slot back."""
        with self._lock:
            job = self._jobs[vm]
            elapsed = self.clock() - job.started_at
            job = replace(job, elapsed_s=max(0.0, elapsed), **changes)
            self._jobs[vm] = job
        if job.state != "running":
            self.slots.release(vm)
        return job

    def get(self, vm: str) -> MigrationProgress | None:
        """The latest progress of a VM's migration, if this actuator started one."""
        with self._lock:
            return self._jobs.get(vm)

    def running(self) -> list[MigrationProgress]:
        """The migrations still running."""
        with self._lock:
            return [job for job in self._jobs.values() if job.state == "running"]

    def report(self) -> list[MigrationProgress]:
        """Every migration known: the finished ones are reported once and forgotten."""
        with self._lock:
            jobs = list(self._jobs.values())
            for job in jobs:
                if job.state != "running":
                    del self._jobs[job.vm]
        return jobs


def check_resize(action: Resize) -> None:
    """PermanentError for a resize that asks for nothing, or for no vCPU or no memory."""
    if action.vcpus is None and action.memory is None:
        raise PermanentError(f"resize of {action.vm}: give vcpus, memory or both")
    if action.vcpus is not None and action.vcpus < 1:
        raise PermanentError(f"resize of {action.vm}: vcpus must be >= 1 (got {action.vcpus})")
    if action.memory is not None and action.memory < 1024 * 1024:
        raise PermanentError(f"resize of {action.vm}: memory must be >= 1 MiB (got {action.memory} bytes)")


# --- plug-ins: the `loadpilot.vm_actuators` entry points, named as the cluster.url schemes they open -------------


class ViewSource(Protocol):
    """Something that can say what the cluster looks like now (None: nothing to decide on yet)."""

    def __call__(self, now: float) -> ClusterView | None:
        """The cluster at `now`."""
        ...


@dataclass(frozen=True, slots=True)
class Inventory:
    """A cluster observed through its actuator's inventory and its VMs' CPU samples in the store
    (control/cluster_view.py), with its hosts' power model and the migrations' bandwidth (MiB/s, 0: the default)."""

    power_model: str
    bandwidth_mib_s: int = 0


Opener = Callable[[Config, EpochFence, MigrationSlots, Callable[[], float]], tuple[VmActuator, ViewSource | Inventory]]


@dataclass(frozen=True, slots=True)
class VmDriver:
    """A `loadpilot.vm_actuators` entry: `open(config, fence, slots, clock)` builds the actuator [cluster] names
    and says how the cluster is seen: a ViewSource of its own (the simulated cluster) or an Inventory (the store).

    What it declares: `store`, that it is observed through the store (so a controller without one is told before
    anything is opened); `requires`, the loadpilot extra whose library it imports when it opens ("" none: a missing
    one is a MissingDependencyError naming it).
    """

    open: Opener
    store: bool = True
    requires: str = ""
