"""What the controller sees of a pool: readings taken on this machine, every tick, windowed into a PoolView.

The fast local path. Each tick the observer reads the pool's state.json (sizes, each worker's state and CPU, as
the supervisor publishes them every pool tick) and desired.json, and scrapes every ready worker's metrics on its
own port, as the supervisor does (act.pool.probe). The agent's path through the store is slower by construction:
a reading every agent.interval_s (5 s in the example), shipped, then stored, so a load step would be seen 5-10 s
late; the reaction target (load step to a new worker serving in <= 3 s) leaves no room for that. The actuator
writes the pool's desired.json in the same state dir anyway, so a controller always runs beside the pools it
scales, and reading them here costs a few local HTTP requests per tick. The store keeps what the agent measured
for people and dashboards, and the events of what the controller did.

The window is the policy's evaluation interval (at least one controller tick): each evaluation sees the requests
completed since the one before (see snapshot.py for what each number is).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from loadpilot.act.pool.probe import WorkerMetrics, scrape_metrics
from loadpilot.act.pool.state import PoolPaths, PoolState, WorkerRecord, read_desired, read_state
from loadpilot.config import PoolConfig
from loadpilot.control.snapshot import Snapshot, WorkerReading, view_of
from loadpilot.errors import TemporaryError
from loadpilot.model import PoolView

SERVING = ("starting", "ready", "draining", "stopping", "unhealthy")  # states with a process (pool collector's)
STALE_STATE_S = 10.0  # a state.json older than this belongs to a supervisor that stopped or hangs
KEPT_READINGS = 256

Scraper = Callable[[str, int, str, float], WorkerMetrics | None]


class PoolUnavailable(TemporaryError):
    """The pool cannot be observed now (not running here, or its supervisor is not publishing)."""


class PoolObserver:
    """Readings of one pool, kept for the longest window asked for, and the views made of them."""

    def __init__(self, pool: PoolConfig, paths: PoolPaths, scrape: Scraper = scrape_metrics) -> None:
        self.pool = pool
        self.paths = paths
        self.scrape = scrape
        self.snapshots: deque[Snapshot] = deque(maxlen=KEPT_READINGS)
        self._threads = ThreadPoolExecutor(max_workers=min(16, pool.max), thread_name_prefix=f"observe-{pool.name}")

    def observe(self, now: float, window_s: float) -> PoolView:
        """Take a reading and return the pool over the last `window_s` seconds; PoolUnavailable when it is not
        running here."""
        state = read_state(self.paths)
        if state is None:
            raise PoolUnavailable(f"pool {self.pool.name!r} is not running here (no {self.paths.state})")
        age = time.time() - state.updated_at
        if state.status != "running" or age > STALE_STATE_S:
            why = f"it is {state.status}" if state.status != "running" else f"state.json is {age:.0f} s old"
            raise PoolUnavailable(f"pool {self.pool.name!r} is not running ({why})")
        self._keep(self._reading(state, now), window_s)
        asked = read_desired(self.paths)
        desired = asked.size if asked is not None else None
        return view_of(self.pool.name, self.snapshots, self.pool.min, self.pool.max, window_s, desired)

    def close(self) -> None:
        """Stop the scraping threads."""
        self._threads.shutdown(wait=False, cancel_futures=True)

    def _reading(self, state: PoolState, now: float) -> Snapshot:
        running = [w for w in state.workers if w.pid and w.state in SERVING]
        health = self.pool.health
        ready = [w for w in running if w.state == "ready" and w.port and health.metrics_path]
        futures = {
            w.id: self._threads.submit(self.scrape, self.pool.host, w.port or 0, health.metrics_path, health.timeout_s)
            for w in ready
        }
        metrics = {wid: f.result() for wid, f in futures.items()}
        return Snapshot(
            at=now,
            desired=state.desired,
            size=len(running),
            ready=len([w for w in running if w.state == "ready"]),
            failed=state.failed,
            workers=tuple(_worker(w, metrics.get(w.id)) for w in running),
        )

    def _keep(self, snapshot: Snapshot, window_s: float) -> None:
        """Add a reading; drop those older than the one the longest window starts from."""
        self.snapshots.append(snapshot)
        while len(self.snapshots) > 2 and self.snapshots[1].at <= snapshot.at - window_s:
            self.snapshots.popleft()


def _worker(record: WorkerRecord, metrics: WorkerMetrics | None) -> WorkerReading:
    return WorkerReading(
        key=f"{record.id}:{record.pid}",
        state=record.state,
        started_at=record.started_at or 0.0,
        cpu=record.cpu,
        metrics=metrics,
    )
