"""The worker metrics convention a supervisor scrapes, and the per-worker limit on requests in flight.

Convention (unlabelled, one series each): counter `http_requests_total`, gauge `http_requests_in_flight`,
histogram `http_request_duration_seconds`, counting served requests only: /healthz and /metrics are the
supervisor's own probes and are not load. Requests refused for being over the limit are counted too (they are
demand), and also in `logsift_refused_requests_total`.
"""

from __future__ import annotations

import asyncio
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Receive, Scope, Send

UNMETERED_PATHS = frozenset({"/healthz", "/metrics"})
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
RETRY_AFTER_S = 1


class WorkerMetrics:
    """The worker's metrics, in a registry of its own so that several apps can live in one process (tests)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("http_requests", "Requests served (not /healthz, /metrics)", registry=self.registry)
        self.in_flight = Gauge("http_requests_in_flight", "Requests being served now", registry=self.registry)
        self.duration = Histogram(
            "http_request_duration_seconds",
            "Time to serve a request, from its start to its last byte sent",
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.refused = Counter(
            "logsift_refused_requests", "Requests answered 503 for being over --concurrency", registry=self.registry
        )
        self.lines = Counter("logsift_lines", "Log lines analysed", registry=self.registry)
        self.count_errors = Counter(
            "logsift_count_errors", "Analyses whose template counts could not be stored", registry=self.registry
        )

    def exposition(self) -> bytes:
        """The metrics in Prometheus' text format."""
        return generate_latest(self.registry)


class ServedRequests:
    """ASGI middleware: meters served requests, serves at most `concurrency` at once, lets up to `queue` more
    wait their turn (first come, first served), and refuses the rest with 503 and Retry-After.

    The refusal is immediate, before the body is read, so that a balancer (nginx `proxy_next_upstream http_503`,
    HAProxy) can retry elsewhere at once rather than queue behind a busy worker.
    """

    def __init__(self, app: ASGIApp, metrics: WorkerMetrics, concurrency: int, queue: int = 0) -> None:
        self.app = app
        self.metrics = metrics
        self.concurrency = concurrency
        self.queue = queue
        self.active = 0
        self.waiting = 0
        self._slots: asyncio.Semaphore | None = None  # made on first use, inside the server's event loop

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection event: probes pass straight through, served requests are metered."""
        if scope["type"] != "http" or scope["path"] in UNMETERED_PATHS:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        try:
            if self.active + self.waiting >= self.concurrency + self.queue:
                self.metrics.refused.inc()
                await _refuse(send, self.concurrency)
                return
            if self._slots is None:
                self._slots = asyncio.Semaphore(self.concurrency)
            self.waiting += 1
            try:
                await self._slots.acquire()
            finally:
                self.waiting -= 1
            self.active += 1
            self.metrics.in_flight.inc()
            try:
                await self.app(scope, receive, send)
            finally:
                self.active -= 1
                self.metrics.in_flight.dec()
                self._slots.release()
        finally:
            self.metrics.requests.inc()
            self.metrics.duration.observe(time.perf_counter() - started)


async def _refuse(send: Send, concurrency: int) -> None:
    body = (
        f"busy: {concurrency} requests in flight, this worker's limit (--concurrency {concurrency}); "
        f"retry in {RETRY_AFTER_S} s or on another worker\n"
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(RETRY_AFTER_S).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
