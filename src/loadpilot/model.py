"""Frozen value types shared by every part of loadpilot.

Units follow DESIGN.md: utilisation is a fraction 0..1 of capacity, time is UNIX seconds (float), memory is
bytes and rates are per second.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple


def slot_of(timestamp: float, interval: float) -> int:
    """Return the sampling slot a timestamp falls in: floor(timestamp / interval).

    A sample's identity is (resource_id, metric, slot), so two readings of the same thing in the same slot are
    one sample: storing it twice keeps one row.
    """
    if interval <= 0:
        raise ValueError("interval must be > 0")
    return math.floor(timestamp / interval)


class Sample(NamedTuple):
    """One reading of one metric of one resource: utilisation as 0..1, memory in bytes, time in UNIX seconds.

    A tuple, because millions are made per minute.
    """

    resource_id: str
    metric: str
    value: float
    timestamp: float
    unit: str = ""
    source: str = ""


SampleFields = tuple[str, str, float, float, str, str]
"""A sample's fields in `Sample`'s order, as a plain tuple: what a store needs to write it.

A `Sample` is one; the server passes the tuples it checked as they are, because making a thousand named tuples
per batch cost a sixth of its ingest time.
"""


@dataclass(frozen=True, slots=True)
class Resource:
    """Something loadpilot watches: a host, a VM, a process, a pool worker."""

    id: str
    kind: str
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Batch:
    """What an agent ships at once: samples taken at one interval, and the resources they describe."""

    batch_id: str
    agent: str
    interval: float
    samples: Sequence[SampleFields]
    resources: tuple[Resource, ...] = ()


@dataclass(frozen=True, slots=True)
class WindowStats:
    """Aggregates of one metric over a time window, for one resource or a group of resources."""

    key: str
    metric: str
    count: int
    mean: float
    max: float
    p95: float
    latest: float


@dataclass(frozen=True, slots=True)
class Event:
    """Something loadpilot did or saw, with the reason and the result, kept for people to read."""

    time: float
    kind: str
    subject: str
    reason: str
    result: str
    details: dict[str, Any] = field(default_factory=dict)
    id: int | None = None


def stale_after_s(interval_s: float) -> float:
    """How old a resource's newest reading may be before readers (the dashboard, `loadpilot top`) count it gone:
    three sampling intervals, and at least 30 s (an agent may sample less often than the reader's config says,
    and a batch takes a moment to arrive)."""
    return max(3 * interval_s, 30.0)


# The per-worker metrics a scaling policy may track (PoolView.metric); "query" is a Prometheus query's answer.
POOL_METRICS = ("cpu", "rps_per_worker", "latency_p95", "in_flight", "query")


@dataclass(frozen=True, slots=True)
class PoolView:
    """What a scaling policy sees of one pool: its sizes, and its metrics over the latest window.

    `desired` is the size last asked for, `size` the workers running (starting, ready or draining), `ready` those
    taking requests. Metrics are None when nothing was measured: `cpu` is the mean cpu.util of the ready workers
    (cores, 0..1 for a one-core worker), `rps` the requests/s the whole pool completed, `latency_p95` seconds,
    `in_flight` the requests in the whole pool (served or queued), all over `window_s` up to `observed_at`.
    `queries` holds the answers of the pool's Prometheus queries (checks with metric = "query"), keyed by the
    query as configured; None when Prometheus had no data for it.
    """

    name: str
    desired: int
    size: int
    ready: int
    min: int
    max: int
    cpu: float | None = None
    rps: float | None = None
    latency_p95: float | None = None
    in_flight: float | None = None
    failed: int = 0
    window_s: float = 0.0
    observed_at: float = 0.0
    queries: Mapping[str, float | None] = field(default_factory=dict)

    @property
    def rps_per_worker(self) -> float | None:
        """Requests/s per ready worker: the pool's rate shared among the workers that served it."""
        return None if self.rps is None or self.ready <= 0 else self.rps / self.ready

    @property
    def in_flight_per_worker(self) -> float | None:
        """Requests in flight per ready worker (Knative's "concurrency")."""
        return None if self.in_flight is None or self.ready <= 0 else self.in_flight / self.ready

    @property
    def scale_in_progress(self) -> bool:
        """True while workers asked for are still starting, or workers let go are still draining."""
        return self.ready + self.failed < self.desired or self.size > self.desired

    def metric(self, name: str, query: str = "") -> float | None:
        """The per-worker value of one of POOL_METRICS, or None when it was not measured (for "query": the
        answer to `query`)."""
        if name == "query":
            return self.queries.get(query)
        if name == "cpu":
            return self.cpu
        if name == "rps_per_worker":
            return self.rps_per_worker
        if name == "latency_p95":
            return self.latency_p95
        if name == "in_flight":
            return self.in_flight_per_worker
        raise ValueError(f"unknown pool metric {name!r} (known: {', '.join(POOL_METRICS)})")


@dataclass(frozen=True, slots=True)
class ScaleTo:
    """Set a pool's desired size. `epoch` is the leader's term that decided it, so a stale leader is refused."""

    pool: str
    size: int
    reason: str
    epoch: int = 0


@dataclass(frozen=True, slots=True)
class Migrate:
    """Live-migrate a VM from one host to another, and why. `epoch` as for ScaleTo."""

    vm: str
    source: str
    target: str
    reason: str
    epoch: int = 0


@dataclass(frozen=True, slots=True)
class Resize:
    """Change a VM's vCPUs and/or memory (bytes) in place; None leaves that one as it is. `epoch` as for ScaleTo."""

    vm: str
    reason: str
    vcpus: int | None = None
    memory: int | None = None
    epoch: int = 0


# Every action a decision may carry; more kinds (Restart) join this union.
Action = ScaleTo | Migrate | Resize


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one evaluation: the actions to take (none is a decision too), why, and what it saw.

    `inputs` holds the numbers the decision was made from, so the event log can show them beside the reason.
    """

    subject: str
    time: float
    actions: tuple[Action, ...]
    reason: str
    inputs: dict[str, float | int | str | None] = field(default_factory=dict)


# --- VM clusters: what a VM strategy sees (the simulator and the controller build the same views) ----------


@dataclass(frozen=True, slots=True)
class HostView:
    """One host: CPU in any unit shared by the whole view (all its cores), the most one VM may get (one core),
    memory in bytes, its power model's name, its measured CPU utilisation (0..1), whether it is on, and whether it
    is in maintenance (to be emptied, never a target)."""

    id: str
    cpu: float
    cpu_per_vm: float
    memory: float
    power_model: str
    utilisation: float
    powered: bool = True
    maintenance: bool = False


@dataclass(frozen=True, slots=True)
class VmView:
    """One VM: its host (None when not placed), the CPU it asks for now and its size (same unit as HostView.cpu),
    memory in bytes, its CPU history as fractions of its size (newest first), how long a migration of it takes,
    how long ago it last migrated, and its anti-affinity group if any."""

    id: str
    host: str | None
    cpu_request: float
    cpu_size: float
    memory: float
    history: tuple[float, ...] = ()
    migration_s: float = 0.0
    moved_ago_s: float = float("inf")
    group: str | None = None


@dataclass(frozen=True, slots=True)
class ClusterView:
    """Hosts and VMs at one decision time; VMs are listed in the order they arrived on their hosts."""

    hosts: tuple[HostView, ...]
    vms: tuple[VmView, ...]
    interval_s: float = 300.0
    memory_limit: bool = True
    observed_at: float = 0.0
