"""logsift's web layer: the routes, and where each piece of work runs.

Routes: POST /api/analyze (JSON answer), GET / and POST / (the HTML page), GET /api/templates, GET /healthz,
GET /metrics. Each analysis mines from nothing, so any worker can serve any request; only the template counts
behind /api/templates outlive a request (in memory, or in a SQLite file shared by workers).

Mining is CPU-bound, so it runs on one thread beside the event loop: a big request then delays /healthz and
/metrics by a few GIL switch intervals instead of by the whole analysis. Measured with four clients each posting
4,000 lines at once: /healthz p99 33 ms with one mining thread, 250 ms mining on the loop, 77 ms with two threads
and 150 ms with four (threads contend for the GIL and throughput drops too); bench/logsift.py measures it again.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from loadpilot.apps.logsift import mining, page
from loadpilot.apps.logsift.counts import MemoryCounts, SQLiteCounts, TemplateCount, TemplateCounts, Totals
from loadpilot.apps.logsift.inputs import MAX_LINE_CHARS, InputError, declared_size, lines_of, text_of, too_large
from loadpilot.apps.logsift.metrics import ServedRequests, WorkerMetrics

log = logging.getLogger("logsift")
T = TypeVar("T")

MAX_TEMPLATES_LISTED = 10_000
DEFAULT_TEMPLATES_LISTED = 100
_HTML_HEADERS = {
    "Content-Security-Policy": page.CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
_JSON_HEADERS = {"X-Content-Type-Options": "nosniff"}


@dataclass(frozen=True)
class Settings:
    """How one worker behaves; the command line's options, with the same defaults."""

    io_ms: float = 0.0
    """Simulated backend wait per analysis (an asyncio sleep), so a pool's capacity grows with its workers."""
    concurrency: int = 64
    """Requests served at once; up to `queue` more wait, the rest get 503 with Retry-After."""
    queue: int = 0
    """Requests that may wait for one of the `concurrency` places (0: none wait, over the limit is 503)."""
    db: Path | None = None
    """SQLite file for template counts shared by workers; None keeps this worker's counts in memory."""
    max_bytes: int = 8 * 2**20
    max_lines: int = 200_000
    threads: int = 1
    """Threads mining at once; 0 mines on the event loop (blocking it while mining). More than 1 only adds GIL
    contention: the analyses queue for the thread instead."""


@dataclass(frozen=True)
class Analysis:
    """What one request's lines hold: the templates found, the biggest first."""

    lines: int
    truncated: int
    templates: list[mining.Template]
    seconds: float
    counts_stored: bool
    text: str = field(repr=False)


class Service:
    """One worker's state: settings, metrics, template counts and the mining threads."""

    def __init__(self, settings: Settings, metrics: WorkerMetrics, counts: TemplateCounts) -> None:
        self.settings = settings
        self.metrics = metrics
        self.counts = counts
        self.ready = False
        self._executor = (
            ThreadPoolExecutor(settings.threads, thread_name_prefix="logsift-mine") if settings.threads > 0 else None
        )

    def start(self) -> None:
        """Warm mining up (first use of its regexes) and declare the worker ready."""
        mining.mine(["logsift warm-up 1"])
        self.ready = True

    def stop(self) -> None:
        """Let analyses under way finish, then release the threads and the counts."""
        self.ready = False
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        self.counts.close()

    async def run(self, work: Callable[..., T], *args: Any) -> T:
        """Run blocking `work` on the mining threads (or right here when there are none)."""
        if self._executor is None:
            return work(*args)
        return await asyncio.get_running_loop().run_in_executor(self._executor, work, *args)

    async def top(self, limit: int) -> Totals:
        """The `limit` biggest templates seen so far, read on asyncio's default threads: never behind mining."""
        return await asyncio.get_running_loop().run_in_executor(None, self.counts.top, limit)

    async def analyze(self, request: Request) -> Analysis:
        """Read, check and mine one request's log lines; InputError when the body cannot be analysed."""
        limit = self.settings.max_bytes
        declared_size(request.headers.get("content-length"), limit)
        chunks = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_large(size, limit)
            chunks.append(chunk)
        if self.settings.io_ms > 0:
            await asyncio.sleep(self.settings.io_ms / 1000)
        return await self.run(self._analyze, b"".join(chunks), request.headers.get("content-type"))

    def _analyze(self, body: bytes, content_type: str | None) -> Analysis:
        started = time.perf_counter()
        text = text_of(body, content_type)
        lines = lines_of(text, self.settings.max_lines)
        templates = mining.mine(lines.lines)
        self.metrics.lines.inc(len(lines.lines))
        stored = True
        try:
            self.counts.add(TemplateCount(t.template, t.count, t.examples[0]) for t in templates)
        except sqlite3.Error as exc:
            stored = False
            self.metrics.count_errors.inc()
            log.warning("template counts not stored: %s (the analysis is answered anyway)", exc)
        return Analysis(len(lines.lines), lines.truncated, templates, time.perf_counter() - started, stored, text)


def create_app(settings: Settings | None = None, counts: TemplateCounts | None = None) -> Starlette:
    """The logsift ASGI app for one worker; `counts` defaults to what settings.db says (SQLite file or memory).

    Raises OSError when the SQLite file cannot be used, naming it.
    """
    settings = settings or Settings()
    if counts is None:
        counts = SQLiteCounts(settings.db) if settings.db is not None else MemoryCounts()
    metrics = WorkerMetrics()
    service = Service(settings, metrics, counts)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        service.start()
        try:
            yield
        finally:
            service.stop()

    async def api_analyze(request: Request) -> Response:
        try:
            analysis = await service.analyze(request)
        except InputError as exc:
            return JSONResponse({"error": exc.reason}, exc.status, headers=_JSON_HEADERS)
        return JSONResponse(_analysis_json(analysis), headers=_JSON_HEADERS)

    async def form_analyze(request: Request) -> Response:
        try:
            analysis = await service.analyze(request)
        except InputError as exc:
            totals = await service.top(DEFAULT_TEMPLATES_LISTED)
            html = page.render(_SEEN_HEADING, _rows(totals), error=f"{exc.status}: {exc.reason}")
            return HTMLResponse(html, exc.status, headers=_HTML_HEADERS)
        rows = [page.Row(t.template, t.count, t.examples) for t in analysis.templates]
        summary = f"{analysis.lines:,} lines, {len(rows):,} templates, mined in {analysis.seconds * 1000:,.0f} ms"
        if analysis.truncated:
            summary += f"; {analysis.truncated:,} long lines cut to {MAX_LINE_CHARS:,} characters"
        html = page.render("Templates in these lines", rows, summary=summary, text=analysis.text)
        return HTMLResponse(html, headers=_HTML_HEADERS)

    async def index(request: Request) -> Response:
        totals = await service.top(DEFAULT_TEMPLATES_LISTED)
        return HTMLResponse(page.render(_SEEN_HEADING, _rows(totals)), headers=_HTML_HEADERS)

    async def api_templates(request: Request) -> Response:
        try:
            limit = _limit(request.query_params)
        except InputError as exc:
            return JSONResponse({"error": exc.reason}, exc.status, headers=_JSON_HEADERS)
        try:
            totals = await service.top(limit)
        except sqlite3.Error as exc:
            return JSONResponse({"error": f"template counts unavailable: {exc}"}, 503, headers={"Retry-After": "1"})
        return JSONResponse(
            {
                "source": "sqlite" if settings.db is not None else "memory",
                "templates": [
                    {"template": t.template, "count": t.count, "example": t.example} for t in totals.templates
                ],
                "dropped": totals.dropped,
            },
            headers=_JSON_HEADERS,
        )

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok\n" if service.ready else "starting\n", 200 if service.ready else 503)

    async def metrics_page(request: Request) -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    app = Starlette(
        routes=[
            Route("/", index, methods=["GET"]),
            Route("/", form_analyze, methods=["POST"]),
            Route("/api/analyze", api_analyze, methods=["POST"]),
            Route("/api/templates", api_templates, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", metrics_page, methods=["GET"]),
        ],
        middleware=[
            Middleware(ServedRequests, metrics=metrics, concurrency=settings.concurrency, queue=settings.queue)
        ],
        lifespan=lifespan,
    )
    app.state.service = service
    return app


_SEEN_HEADING = "Templates seen so far"


def _rows(totals: Totals) -> list[page.Row]:
    return [page.Row(t.template, t.count, (t.example,)) for t in totals.templates]


def _analysis_json(analysis: Analysis) -> dict[str, Any]:
    return {
        "lines": analysis.lines,
        "truncated_lines": analysis.truncated,
        "seconds": round(analysis.seconds, 6),
        "counts_stored": analysis.counts_stored,
        "templates": [
            {"template": t.template, "count": t.count, "examples": list(t.examples)} for t in analysis.templates
        ],
    }


def _limit(params: Mapping[str, str]) -> int:
    raw = params.get("limit")
    if raw is None:
        return DEFAULT_TEMPLATES_LISTED
    try:
        limit = int(raw)
    except ValueError:
        raise InputError(400, f"limit {raw!r} is not a whole number") from None
    if not 1 <= limit <= MAX_TEMPLATES_LISTED:
        raise InputError(400, f"limit must be between 1 and {MAX_TEMPLATES_LISTED:,}, not {limit}")
    return limit
