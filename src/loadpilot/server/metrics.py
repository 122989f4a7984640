"""The server's own Prometheus metrics, in a registry of its own so several servers can share a process."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class ServerMetrics:
    """Counters and histograms the server exports on /metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.batches = Counter(
            "loadpilot_ingest_batches", "Batches received, by result", ["result"], registry=self.registry
        )
        self.samples = Counter(
            "loadpilot_ingest_samples", "Samples received, by result", ["result"], registry=self.registry
        )
        self.rejects = Counter(
            "loadpilot_ingest_rejects", "Requests to ingest refused, by reason", ["reason"], registry=self.registry
        )
        self.store_latency = Histogram(
            "loadpilot_store_write_seconds",
            "Time to store one batch",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=self.registry,
        )
        self.retention_removed = Counter(
            "loadpilot_retention_removed_samples", "Samples removed by retention", registry=self.registry
        )
