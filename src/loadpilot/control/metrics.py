"""The controller's own Prometheus metrics, served on `control.metrics_listen` when it is set.

Decisions by pool, policy and direction; actions by kind and result (from the events the controller records,
so VM migrations count too); whether this controller leads and with which epoch; how long a tick takes; the
Prometheus queries it asks (metric = "query" checks) and how many failed.
"""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from loadpilot.model import Event

# The event kinds that are actions attempted (control.events, control.migrate).
ACTION_KINDS = ("scale", "migrate", "migrated")
_RESULT_WORD = re.compile(r"[a-z_]+")
TICK_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def result_kind(result: str) -> str:
    """An event's result reduced to its first word (ok, error, refused, failed, started, ...), for a label."""
    found = _RESULT_WORD.match(result.strip().lower())
    return found.group(0) if found else "other"


class ControllerMetrics:
    """The counters, gauges and histograms of one controller."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.decisions = Counter(
            "loadpilot_controller_decisions",
            "Scaling evaluations, by pool, configured policy and direction (out, in, none)",
            ["pool", "policy", "direction"],
            registry=r,
        )
        self.actions = Counter(
            "loadpilot_controller_actions",
            "Actions attempted (scale, migrate) and migrations finished (migrated), by kind and result",
            ["kind", "result"],
            registry=r,
        )
        self.leader = Gauge("loadpilot_controller_leader", "1 while this controller is the leader, else 0", registry=r)
        self.epoch = Gauge(
            "loadpilot_controller_leader_epoch", "The leadership epoch this controller last saw", registry=r
        )
        self.tick_seconds = Histogram(
            "loadpilot_controller_tick_seconds",
            "Time one controller tick takes (leadership, then observe, decide and act for every pool)",
            buckets=TICK_BUCKETS,
            registry=r,
        )
        self.flagged = Gauge(
            "loadpilot_controller_pool_flagged",
            "1 when a pool is flagged after a permanent error (not scaled until the controller restarts)",
            ["pool"],
            registry=r,
        )
        self.queries = Counter(
            "loadpilot_controller_prometheus_queries",
            'Prometheus queries evaluated for metric = "query" checks, by pool and result (ok, empty, error)',
            ["pool", "result"],
            registry=r,
        )
        self.events_pending = Gauge(
            "loadpilot_controller_events_pending", "Events waiting for the store to take them", registry=r
        )

    def event(self, event: Event) -> None:
        """Count an event the controller records, when it is an action."""
        if event.kind in ACTION_KINDS:
            self.actions.labels(event.kind, result_kind(event.result)).inc()

    def decided(self, pool: str, policy: str, desired: int, sizes: list[int]) -> None:
        """Count one evaluation: out when any action raises the size, in when it lowers it, else none."""
        direction = "out" if any(s > desired for s in sizes) else "in" if any(s < desired for s in sizes) else "none"
        self.decisions.labels(pool, policy, direction).inc()
