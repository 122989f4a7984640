"""Each worker's health checks and metrics scrapes, on a small thread pool so a slow worker never stalls the loop.

A starting worker is checked often (readiness decides how soon a replacement takes traffic); a ready one every
`health.interval_s`. Results wait in a queue until the supervisor's next tick takes them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

from loadpilot.act.pool.probe import CheckResult, WorkerMetrics, check_health, scrape_metrics
from loadpilot.act.pool.worker import Worker
from loadpilot.config import HealthConfig

Result = tuple[Worker, CheckResult, WorkerMetrics | None]


class HealthChecks:
    """Schedules checks for the workers that are due and collects what they found."""

    def __init__(
        self, health: HealthConfig, host: str, threads: int, starting_interval_s: float, wake: Callable[[], None]
    ) -> None:
        self.health = health
        self.host = host
        self.starting_interval_s = min(starting_interval_s, health.interval_s)
        self._wake = wake
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="check")
        self._results: deque[Result] = deque()

    def schedule(self, workers: Iterable[Worker], now: float) -> None:
        """Start a check of every starting or ready worker whose next check is due."""
        health = self.health
        for worker in workers:
            if worker.check_pending or worker.state not in ("starting", "ready") or now < worker.next_check_at:
                continue
            if worker.state == "starting":
                worker.next_check_at = now + self.starting_interval_s
                if not health.path:  # no HTTP check: running for start_s means ready
                    if now - worker.started_at >= health.start_s:
                        self._results.append((worker, CheckResult(True), None))
                    continue
            else:
                worker.next_check_at = now + health.interval_s
            if not health.path and not health.metrics_path:
                continue
            worker.check_pending = True
            self._pool.submit(self._check, worker)

    def results(self) -> Iterator[Result]:
        """The checks finished since the last call, oldest first."""
        while self._results:
            yield self._results.popleft()

    def close(self) -> None:
        """Stop checking (checks in flight are abandoned)."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _check(self, worker: Worker) -> None:
        """On a checker thread: the health check, then (for a ready worker) its metrics."""
        health, port = self.health, worker.port or 0
        result = check_health(self.host, port, health.path, health.timeout_s) if health.path else CheckResult(True)
        metrics = None
        if result.ok and worker.state == "ready" and health.metrics_path:
            metrics = scrape_metrics(self.host, port, health.metrics_path, health.timeout_s)
        self._results.append((worker, result, metrics))
        self._wake()
