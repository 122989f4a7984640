"""A pool supervisor's own Prometheus metrics: restarts, spawn failures, workers by state, sizes, the breaker.

Kept in a registry of the supervisor's own (several supervisors may share a process in tests). Gauges are set
from the state the supervisor publishes every tick, counters where the thing happens; nothing here is read per
request. The HTTP listener is given by the caller (`ServeMetrics`, loadpilot.metrics_http.serve_metrics), so
act/ does not reach beyond the config and the value types.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge

from loadpilot.act.pool.state import PoolState

# Every state a worker record can be in (state.WorkerRecord): each is exported, 0 when empty, so series stay put.
WORKER_STATES = ("starting", "ready", "unhealthy", "draining", "stopping", "backoff", "failed")


class Listener(Protocol):
    """A running /metrics listener."""

    def stop(self) -> None:
        """Stop serving."""
        ...


# (registry, "host:port", what) -> a running listener; None when nothing was started.
ServeMetrics = Callable[[CollectorRegistry, str, str], Listener | None]


class PoolMetrics:
    """The counters and gauges of one pool's supervisor."""

    def __init__(self, pool: str, serve: ServeMetrics | None = None) -> None:
        self.pool = pool
        self.serve = serve
        self.listener: Listener | None = None
        self.registry = CollectorRegistry()
        r = self.registry
        self.restarts = Counter(
            "loadpilot_pool_worker_restarts",
            "Workers that died, failed their checks or did not start in time, and were restarted or given up on",
            ["pool"],
            registry=r,
        ).labels(pool)
        self.spawn_failures = Counter(
            "loadpilot_pool_spawn_failures",
            "Worker commands that could not be run at all (not found, not executable)",
            ["pool"],
            registry=r,
        ).labels(pool)
        self.events = Counter(
            "loadpilot_pool_events", "Supervisor events, by kind and result", ["pool", "kind", "result"], registry=r
        )
        self._workers = Gauge("loadpilot_pool_workers", "Workers by state", ["pool", "state"], registry=r)
        self._desired = Gauge(
            "loadpilot_pool_desired_workers", "The size the pool is asked to have", ["pool"], registry=r
        ).labels(pool)
        self._ready = Gauge("loadpilot_pool_ready_workers", "Workers taking requests", ["pool"], registry=r).labels(
            pool
        )
        self._fatal = Gauge(
            "loadpilot_pool_fatal_slots",
            "Worker slots the circuit breaker has given up on (crashed too often; supervisord's FATAL)",
            ["pool"],
            registry=r,
        ).labels(pool)
        self._running = Gauge(
            "loadpilot_pool_running", "1 while the supervisor runs the pool, 0 once it stops", ["pool"], registry=r
        ).labels(pool)
        self._updated = Gauge(
            "loadpilot_pool_last_tick_timestamp_seconds",
            "UNIX time of the supervisor's last published state",
            ["pool"],
            registry=r,
        ).labels(pool)
        for state in WORKER_STATES:
            self._workers.labels(pool, state).set(0)

    def start(self, listen: str) -> None:
        """Serve the registry on `listen` ("host:port"; "" or no `serve` given: nothing to start)."""
        if listen and self.serve is not None:
            self.listener = self.serve(self.registry, listen, f"pool {self.pool}")

    def stop(self) -> None:
        """Stop serving (if serving)."""
        if self.listener is not None:
            self.listener.stop()

    def event(self, kind: str, result: str) -> None:
        """Count one supervisor event."""
        self.events.labels(self.pool, kind, result).inc()

    def published(self, state: PoolState) -> None:
        """Take the gauges from the state the supervisor has just published."""
        counts = dict.fromkeys(WORKER_STATES, 0)
        for worker in state.workers:
            counts[worker.state] = counts.get(worker.state, 0) + 1
        for name, n in counts.items():
            self._workers.labels(self.pool, name).set(n)
        self._desired.set(state.desired)
        self._ready.set(state.ready)
        self._fatal.set(state.failed)
        self._running.set(1 if state.status in ("running", "stopping") else 0)
        self._updated.set(state.updated_at)
