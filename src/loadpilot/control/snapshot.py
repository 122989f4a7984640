"""A pool's readings at one moment, and the arithmetic that turns a window of them into a PoolView.

Pure: no I/O and no clock. observe.py takes the readings (the supervisor's state.json and each ready worker's
Prometheus counters); this module only computes, so the window's definition can be tested on plain values:

- rps: the requests every worker completed between the window's first and last reading, over that time (a worker
  that started inside the window counts from zero, as its counters do);
- latency_p95: the 95th percentile of those requests, from the sum of the workers' histogram buckets (so it is
  the pool's percentile, not an average of the workers');
- in_flight: the requests in the pool, served or queued, on average over the window: completed rate x mean time
  in the worker (Little's law), or the in-flight gauges at the last reading when they are higher (requests that
  have not completed yet are in no histogram);
- cpu: the mean CPU (cores) of the ready workers over the readings of the window, as the supervisor measured it.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from loadpilot.act.pool.probe import WorkerMetrics, latency_between
from loadpilot.model import PoolView

_ZERO = WorkerMetrics(0.0, 0.0, 0.0, 0.0, ())


@dataclass(frozen=True, slots=True)
class WorkerReading:
    """One worker process at one reading: `key` names the process (worker id and pid), so a restart is new."""

    key: str
    state: str
    started_at: float
    cpu: float | None = None  # cores, as the supervisor last measured it
    metrics: WorkerMetrics | None = None  # its cumulative request counters, scraped at the reading

    @property
    def ready(self) -> bool:
        """True while the worker takes requests."""
        return self.state == "ready"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The pool at one reading: its sizes from state.json and each running worker."""

    at: float
    desired: int
    size: int
    ready: int
    failed: int
    workers: tuple[WorkerReading, ...] = ()

    def mean_ready_cpu(self) -> float | None:
        """Mean CPU (cores) of the ready workers measured at this reading, None when none was measured."""
        cpus = [w.cpu for w in self.workers if w.ready and w.cpu is not None]
        return sum(cpus) / len(cpus) if cpus else None


def base_of(snapshots: Sequence[Snapshot], window_s: float) -> Snapshot | None:
    """The reading a window of `window_s` ending at the newest reading starts from: the newest one at least that
    old, else the oldest one kept (a shorter window, until enough readings exist); None with a single reading."""
    if len(snapshots) < 2:
        return None
    newest = snapshots[-1]
    base = snapshots[0]
    for snap in itertools.islice(snapshots, len(snapshots) - 1):  # any sequence: the observer keeps a deque
        if snap.at <= newest.at - window_s + 1e-9:
            base = snap
    return base


def _summed(parts: Sequence[WorkerMetrics]) -> WorkerMetrics:
    """The pool's counters: every worker's summed, histogram buckets summed by bound."""
    buckets: dict[float, float] = {}
    for m in parts:
        for bound, count in m.buckets:
            buckets[bound] = buckets.get(bound, 0.0) + count
    return WorkerMetrics(
        requests=sum(m.requests for m in parts),
        in_flight=sum(m.in_flight for m in parts),
        duration_sum=sum(m.duration_sum for m in parts),
        duration_count=sum(m.duration_count for m in parts),
        buckets=tuple(sorted(buckets.items())),
    )


def _pairs(base: Snapshot, newest: Snapshot) -> tuple[list[WorkerMetrics], list[WorkerMetrics]]:
    """Each worker's counters at the window's start and end; a worker unseen (or unscraped) at the start counts
    from zero, and a worker whose counters went backwards is a new process."""
    before = {w.key: w.metrics for w in base.workers if w.metrics is not None}
    old, new = [], []
    for w in newest.workers:
        if w.metrics is None:
            continue
        start = before.get(w.key) or _ZERO
        if w.metrics.requests < start.requests or w.metrics.duration_count < start.duration_count:
            start = _ZERO
        old.append(start)
        new.append(w.metrics)
    return old, new


def view_of(
    name: str, snapshots: Sequence[Snapshot], low: int, high: int, window_s: float, desired: int | None = None
) -> PoolView:
    """The pool as a policy sees it over the last `window_s` seconds of readings (oldest first, at least one).

    `desired` is the size last asked for (desired.json) when known, else the supervisor's. The view's window_s is
    the time the readings really span (shorter while the controller has just started).
    """
    newest = snapshots[-1]
    base = base_of(snapshots, window_s)
    rps = latency_p95 = in_flight = None
    gauges = [w.metrics.in_flight for w in newest.workers if w.metrics is not None]
    span = newest.at - base.at if base is not None else 0.0
    if base is not None and span > 0:
        old, new = _pairs(base, newest)
        if new:
            start, end = _summed(old), _summed(new)
            rps = max(0.0, end.requests - start.requests) / span
            mean, latency_p95 = latency_between(start, end)
            little = rps * mean if mean is not None else 0.0
            in_flight = max(little, end.in_flight)
    elif gauges:
        in_flight = float(sum(gauges))
    inside = [s for s in snapshots if base is None or s.at > base.at]
    cpus = [c for c in (s.mean_ready_cpu() for s in inside) if c is not None]
    return PoolView(
        name=name,
        desired=newest.desired if desired is None else desired,
        size=newest.size,
        ready=newest.ready,
        min=low,
        max=high,
        cpu=sum(cpus) / len(cpus) if cpus else None,
        rps=rps,
        latency_p95=latency_p95,
        in_flight=in_flight,
        failed=newest.failed,
        window_s=span,
        observed_at=newest.at,
    )
