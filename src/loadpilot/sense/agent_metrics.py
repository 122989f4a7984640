"""The agent's own Prometheus metrics, served on `agent.metrics_listen` when it is set.

Most values are the agent's, the shipper's and the spool's running totals, read when Prometheus scrapes (so
collecting and shipping do no extra work for them); the time each collector takes is a histogram observed once
per collector per tick.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector as PromCollector

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from loadpilot.sense.agent import Agent

COLLECT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def collector_name(collector: object) -> str:
    """A collector's label, as its type is written in the config: HostCollector: host, HttpProbeCollector:
    http_probe."""
    name = type(collector).__name__
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name.removesuffix("Collector") or name).lower()


class AgentMetrics:
    """The agent's registry: a histogram of collection times, and the running totals read at scrape time."""

    def __init__(self, agent: Agent) -> None:
        self.registry = CollectorRegistry()
        self.collect_seconds = Histogram(
            "loadpilot_agent_collect_seconds",
            "Time one collector takes to take one reading",
            ["collector"],
            buckets=COLLECT_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_AgentTotals(agent))

    def collected(self, collector: object, seconds: float) -> None:
        """Record how long one collector took this tick."""
        self.collect_seconds.labels(collector_name(collector)).observe(seconds)


class _AgentTotals(PromCollector):
    """Reads the agent's, shipper's and spool's totals when Prometheus scrapes."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent

    def collect(self) -> Iterator[Metric]:
        """The metric families, from the totals as they are now."""
        agent, shipper = self.agent, self.agent.shipper.stats
        stats = agent.stats
        yield _counter("loadpilot_agent_ticks", "Collection ticks run", stats.ticks)
        yield _counter(
            "loadpilot_agent_skipped_ticks", "Collection slots skipped (the agent fell behind)", stats.skipped_ticks
        )
        yield _counter("loadpilot_agent_samples", "Samples collected and spooled", stats.samples)
        yield _counter("loadpilot_agent_collector_errors", "Collector readings that failed", stats.collector_errors)
        batches = CounterMetricFamily(
            "loadpilot_agent_shipped_batches",
            "Batches sent to the server, by result (stored, duplicate: already stored, rejected: refused for good)",
            labels=["result"],
        )
        batches.add_metric(["stored"], shipper.sent_batches - shipper.duplicates)
        batches.add_metric(["duplicate"], shipper.duplicates)
        batches.add_metric(["rejected"], shipper.rejected)
        yield batches
        yield _counter(
            "loadpilot_agent_shipped_samples", "Samples in the batches the server acknowledged", shipper.sent_samples
        )
        yield _counter(
            "loadpilot_agent_ship_failures",
            "Attempts to send a batch that failed (server unreachable or unavailable); the batch stays spooled",
            shipper.failures,
        )
        try:
            spool = agent.spool.stats()
        except sqlite3.Error:  # the spool is closed: the agent is stopping
            return
        yield _gauge("loadpilot_agent_spool_batches", "Batches waiting in the spool", spool.batches)
        yield _gauge("loadpilot_agent_spool_bytes", "Bytes of the batches waiting in the spool", spool.bytes)
        yield _counter(
            "loadpilot_agent_spool_dropped_batches",
            "Batches dropped from the spool (full, or rejected by the server), since the spool was created",
            spool.dropped_batches,
        )
        yield _counter(
            "loadpilot_agent_spool_dropped_samples",
            "Samples in the batches dropped from the spool, since the spool was created",
            spool.dropped_samples,
        )
        shared = agent.shared
        if shared is not None:
            yield _gauge(
                "loadpilot_agent_shared_owned", "Shared resources this agent's share holds", stats.shared_owned
            )
            yield _gauge(
                "loadpilot_agent_shared_polled", "Shared resources polled at the last tick", stats.shared_polled
            )
            members = shared.membership.live if shared.membership is not None else {}
            yield _gauge("loadpilot_agent_coordination_members", "Live members of the agents' group", len(members))
            yield _gauge(
                "loadpilot_agent_coordination_joined", "1 while this agent is in the agents' group", int(shared.started)
            )


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)
