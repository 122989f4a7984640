"""The pool collector: each worker of the pools supervised on this machine, labelled with its pool.

It reads what the pool supervisors publish in the state dir (pools/<name>/state.json: pid, port, state, restarts,
and the request counters scraped from each worker) and measures each worker's process itself, so the store can
aggregate CPU, memory, requests/s, in-flight requests and latency per pool.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from loadpilot.model import Resource
from loadpilot.sense.collectors.base import Collection, CollectorOptions, Rates
from loadpilot.sense.collectors.procstat import ProcessGone, read_stat

SOURCE = "pool"
SERVING = ("starting", "ready", "draining", "stopping", "unhealthy")
STALE_AFTER_S = 30.0  # a state file this old belongs to a supervisor that died


class PoolOptions(CollectorOptions):
    """`type = "pool"`: the pools supervised here (all of them, or those named)."""

    pools: list[str] = Field(default_factory=list)
    state_dir: str = ""  # empty: the config's state_dir


class PoolCollector:
    """Samples every worker of every running pool found under the state dir."""

    Options: ClassVar[type[CollectorOptions]] = PoolOptions

    def __init__(self, options: CollectorOptions, host: str) -> None:
        assert isinstance(options, PoolOptions)
        self.options = options
        self.host = host
        self.root = Path(options.state_dir or ".loadpilot") / "pools"
        self._rates = Rates()

    def _states(self) -> list[dict[str, Any]]:
        names = self.options.pools or sorted(p.name for p in self.root.glob("*") if p.is_dir())
        states = []
        for name in names:
            try:
                state = json.loads((self.root / name / "state.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if state.get("status") != "stopped" and time.time() - state.get("updated_at", 0) < STALE_AFTER_S:
                states.append(state)
        return states

    def collect(self, now: float) -> Collection:
        """One reading of each live worker, and the size of each pool."""
        out = Collection()
        seen: set[str] = set()
        for state in self._states():
            pool = state["pool"]
            workers = [w for w in state.get("workers", []) if w.get("pid") and w.get("state") in SERVING]
            for w in workers:
                self._worker(out, pool, w, now, seen)
            pid = f"pool/{pool}"
            out.resources.append(Resource(pid, "pool", {"pool": pool, "host": self.host, "mode": state["mode"]}))
            out.add(pid, "pool.desired", state["desired"], now, "workers", SOURCE)
            out.add(pid, "pool.size", len(workers), now, "workers", SOURCE)
            out.add(pid, "pool.ready", sum(w["state"] == "ready" for w in workers), now, "workers", SOURCE)
            failed = sum(w.get("state") == "failed" for w in state.get("workers", []))
            out.add(pid, "pool.failed", failed, now, "workers", SOURCE)
        self._rates.forget_except(seen)
        return out

    def _worker(self, out: Collection, pool: str, w: dict[str, Any], now: float, seen: set[str]) -> None:
        try:
            stat = read_stat(w["pid"])
        except ProcessGone:
            return
        rid = f"pool/{pool}/{w['id']}"
        labels = {"pool": pool, "host": self.host, "worker": w["id"], "port": str(w.get("port") or "")}
        out.resources.append(Resource(rid, "pool_worker", labels))
        cpu_key, req_key = f"{rid}|{w['pid']}|cpu", f"{rid}|{w['pid']}|req"
        seen |= {cpu_key, req_key}
        if (cpu := self._rates.rate(cpu_key, stat.cpu_s, now)) is not None:
            out.add(rid, "cpu.util", cpu, now, "cores", SOURCE)
        out.add(rid, "mem.rss_bytes", stat.rss_bytes, now, "bytes", SOURCE)
        out.add(rid, "worker.ready", 1.0 if w["state"] == "ready" else 0.0, now, "", SOURCE)
        out.add(rid, "worker.restarts", w.get("restarts", 0), now, "restarts", SOURCE)  # since the supervisor began
        if w.get("requests") is not None:
            out.add(rid, "http.requests_total", w["requests"], now, "requests", SOURCE)
            if (rate := self._rates.rate(req_key, w["requests"], now)) is not None:
                out.add(rid, "http.requests_rate", rate, now, "requests/s", SOURCE)
        if w.get("in_flight") is not None:
            out.add(rid, "http.in_flight", w["in_flight"], now, "requests", SOURCE)
        for key, metric in (("latency_mean_s", "http.latency_mean"), ("latency_p95_s", "http.latency_p95")):
            if w.get(key) is not None:
                out.add(rid, metric, w[key], now, "s", SOURCE)

    def close(self) -> None:
        """Nothing held open."""
