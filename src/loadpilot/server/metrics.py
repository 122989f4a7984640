"""The server's own Prometheus metrics, in a registry of its own so several servers can share a process.

Ingest counts what it does as it does it (a few increments per batch, never per sample); the store's row counts
are read when Prometheus scrapes, at most every STORE_ROWS_EVERY_S seconds (counting a large table is not free).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from loadpilot import __version__

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from loadpilot.store import Store

log = logging.getLogger(__name__)
STORE_ROWS_EVERY_S = 30.0


class ServerMetrics:
    """Counters and histograms the server exports on /metrics (and the store's row counts, given a store)."""

    def __init__(self, store: Store | None = None) -> None:
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
        Gauge("loadpilot_server_info", "The server's version (always 1)", ["version"], registry=self.registry).labels(
            __version__
        ).set(1)
        if store is not None:
            self.registry.register(StoreRows(store))


class StoreRows(Collector):
    """`loadpilot_store_rows{table}`: rows per table, counted at most every `every_s` seconds."""

    def __init__(self, store: Store, every_s: float = STORE_ROWS_EVERY_S) -> None:
        self.store = store
        self.every_s = every_s
        self._counts: dict[str, int] = {}
        self._at = float("-inf")
        self._lock = threading.Lock()

    def collect(self) -> Iterator[Metric]:
        """The last row counts (fresh ones when they are older than `every_s`); nothing when the store is away."""
        with self._lock:
            if time.monotonic() - self._at >= self.every_s:
                try:
                    self._counts = self.store.counts()
                except Exception as exc:  # ours, sqlite3's or psycopg's: the scrape still answers the rest
                    log.warning("cannot count the store's rows for /metrics: %s", exc)
                    self._counts = {}
                self._at = time.monotonic()
            counts = dict(self._counts)
        if not counts:
            return
        family = GaugeMetricFamily("loadpilot_store_rows", "Rows per table of the store", labels=["table"])
        for table, n in sorted(counts.items()):
            family.add_metric([table], n)
        yield family
