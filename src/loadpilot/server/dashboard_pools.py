"""The dashboard's view of worker pools: each pool's size and load now and over a window, its workers, and the
load expressed in workers at the pool's autoscale target ("demand")."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from loadpilot.config import Config, PoolConfig
from loadpilot.model import Resource, Sample, stale_after_s
from loadpilot.server.dashboard_data import (
    Series,
    Window,
    combine,
    last_seen,
    latest_by_resource,
    mean,
    per_resource,
    scaled,
    sig,
    sig_all,
    value_of,
)
from loadpilot.store import Store

SIZE_METRICS = ("desired", "size", "ready")  # pool.<name> on the pool's own resource
Combine = Callable[[list[float]], float]
LOAD_METRICS: dict[str, tuple[str, Combine]] = {
    "rps": ("http.requests_rate", sum),
    "cpu": ("cpu.util", mean),
    "p95": ("http.latency_p95", max),
}
DEMAND_METRICS = {"cpu": "cpu.util", "rps_per_worker": "http.requests_rate", "in_flight": "http.in_flight"}


def pool_name(pool: Resource) -> str:
    """The name a pool resource stands for (its `pool` label; its id is pool/<name>)."""
    return pool.labels.get("pool") or pool.id.removeprefix("pool/")


@dataclass
class PoolFacts:
    """The pools the store knows, their workers, and the newest reading of every metric of both."""

    pools: list[Resource]
    workers: dict[str, list[Resource]]  # by pool name
    latest: dict[str, dict[str, Sample]]
    fresh_after: float  # a worker whose newest sample is older is gone

    @classmethod
    def load(cls, store: Store, now: float, interval_s: float, name: str | None = None) -> PoolFacts:
        """Every pool (or only the one called `name`) with its workers and their newest readings."""
        pools = [p for p in store.resources(kind="pool") if name is None or pool_name(p) == name]
        by_pool: dict[str, list[Resource]] = {}
        for w in store.resources(kind="pool_worker", labels=None if name is None else {"pool": name}):
            by_pool.setdefault(w.labels.get("pool", ""), []).append(w)
        ids = [p.id for p in pools] + [w.id for ws in by_pool.values() for w in ws]
        latest = latest_by_resource(store.latest(resource_ids=ids)) if ids else {}
        return cls(pools, by_pool, latest, now - stale_after_s(interval_s))

    def worker_ids(self, name: str | None = None) -> list[str]:
        """The ids of a pool's workers (of every pool's when `name` is None), gone ones included."""
        groups = self.workers.values() if name is None else [self.workers.get(name, [])]
        return [w.id for ws in groups for w in ws]

    def fresh(self, name: str) -> list[str]:
        """The ids of a pool's workers that reported within the last few agent intervals."""
        return [rid for rid in self.worker_ids(name) if (last_seen(self.latest, rid) or 0.0) >= self.fresh_after]

    def live_workers(self) -> list[Resource]:
        """Every pool's workers that reported within the last few agent intervals."""
        return [
            w for ws in self.workers.values() for w in ws if (last_seen(self.latest, w.id) or 0.0) >= self.fresh_after
        ]

    def summary(self, pool: Resource) -> dict[str, Any]:
        """The pool's size now, and the load of its live workers: mean CPU, total requests/s, worst p95; `reporting`
        is false (and the sizes are its last known) when the pool itself has not reported lately (it stopped)."""
        live = self.fresh(pool_name(pool))
        seen = last_seen(self.latest, pool.id)
        out: dict[str, Any] = {m: value_of(self.latest, pool.id, f"pool.{m}") for m in (*SIZE_METRICS, "failed")}
        out["reporting"] = seen is not None and seen >= self.fresh_after
        out["last_seen"] = seen
        for key, (metric, how) in LOAD_METRICS.items():
            values = [v for rid in live if (v := value_of(self.latest, rid, metric)) is not None]
            out[key] = sig(how(values)) if values else None
        return out

    def worker_row(self, worker: Resource) -> dict[str, Any] | None:
        """One worker as the pool page lists it, or None when it never reported."""
        seen = last_seen(self.latest, worker.id)
        if seen is None:
            return None
        value = self.latest[worker.id]
        ready = value.get("worker.ready")
        state = "gone" if seen < self.fresh_after else "ready" if ready and ready.value >= 1 else "not ready"
        restarts = value_of(self.latest, worker.id, "worker.restarts")
        return {
            "id": worker.id,
            "worker": worker.labels.get("worker", worker.id.rsplit("/", 1)[-1]),
            "host": worker.labels.get("host"),
            "port": worker.labels.get("port"),
            "state": state,
            "cpu": sig(value_of(self.latest, worker.id, "cpu.util")),
            "rss": value_of(self.latest, worker.id, "mem.rss_bytes"),
            "requests_total": sig(value_of(self.latest, worker.id, "http.requests_total"), 12),
            "rps": sig(value_of(self.latest, worker.id, "http.requests_rate")),
            "p95": sig(value_of(self.latest, worker.id, "http.latency_p95")),
            "restarts": None if restarts is None else int(restarts),
            "last_seen": seen,
        }


class PoolSeries:
    """The pools' series over a window, read with one grouped query per metric for all pools together."""

    def __init__(self, store: Store, window: Window, facts: PoolFacts) -> None:
        self.store, self.window, self.facts = store, window, facts
        pool_ids = [p.id for p in facts.pools]
        worker_ids = facts.worker_ids()
        self.own = {m: per_resource(store, f"pool.{m}", window, ids=pool_ids) for m in SIZE_METRICS}
        self.load = {metric: per_resource(store, metric, window, ids=worker_ids) for metric, _ in LOAD_METRICS.values()}

    def of(self, pool: Resource) -> dict[str, Any]:
        """One pool's aligned series: t, desired, size, ready, rps (sum), cpu (mean), p95 (max)."""
        count = self.window.count
        out: dict[str, Any] = {"t": self.window.times()}
        for m in SIZE_METRICS:
            out[m] = sig_all(self.own[m].get(pool.id, [None] * count))
        for key, (metric, how) in LOAD_METRICS.items():
            out[key] = sig_all(self.workers_combined(pool, metric, how))
        return out

    def workers_combined(self, pool: Resource, metric: str, how: Combine) -> Series:
        """A worker metric of one pool, combined over its workers bucket by bucket."""
        rows = self.load.get(metric)
        if rows is None:
            rows = self.load[metric] = per_resource(self.store, metric, self.window, ids=self.facts.worker_ids())
        members = self.facts.worker_ids(pool_name(pool))
        return combine((rows[rid] for rid in members if rid in rows), how, self.window.count, carry=how is sum)

    def demand(self, pool: Resource, config: PoolConfig | None) -> Series | None:
        """The pool's load in workers at its autoscale target, per bucket (None for latency or no config)."""
        if config is None or config.autoscale.metric not in DEMAND_METRICS:
            return None
        total = self.workers_combined(pool, DEMAND_METRICS[config.autoscale.metric], sum)
        return sig_all(scaled(total, 1.0 / config.autoscale.target))


def pool_config(config: Config, name: str) -> PoolConfig | None:
    """The `[[pools]]` entry called `name`, if the server's config has one."""
    return next((p for p in config.pools if p.name == name), None)


def autoscale_json(config: PoolConfig | None) -> dict[str, Any] | None:
    """What the pool page shows of a pool's autoscale settings."""
    if config is None:
        return None
    a = config.autoscale
    return {
        "policy": a.policy,
        "metric": a.metric,
        "target": a.target,
        "enabled": a.enabled,
        "min": config.min,
        "max": config.max,
    }
