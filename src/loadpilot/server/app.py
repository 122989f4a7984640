"""The HTTP API: signed ingest of sample batches, and the reads the dashboard, the CLI and scripts use."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError

from loadpilot import __version__
from loadpilot.config import Config, problems_from
from loadpilot.errors import LoadpilotError, TemporaryError
from loadpilot.model import Batch, Resource
from loadpilot.server.dashboard_api import add_dashboard_api
from loadpilot.server.dashboard_data import event_json
from loadpilot.server.dashboard_pages import add_dashboard_pages
from loadpilot.server.metrics import ServerMetrics
from loadpilot.server.schemas import (
    BatchBody,
    EventOut,
    Health,
    IngestResult,
    Point,
    Problem,
    ResourceOut,
    SampleOut,
    SeriesOut,
    StatsOut,
    parse_batch,
)
from loadpilot.store import Store, group_stats, window_stats
from loadpilot.transport.signing import BATCH_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, SignatureError, verify

log = logging.getLogger(__name__)

API = "/api/v1"
MAX_ID = 2**63 - 1  # the largest id a store keeps (a 64-bit integer)


class _FutureSamples(Exception):
    """A batch holds samples stamped too far ahead of the server's clock (a 422 naming them)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(problems[0])
        self.problems = problems


def _problem(status: int, detail: str, errors: list[str] | None = None) -> JSONResponse:
    return JSONResponse(Problem(detail=detail, errors=errors or []).model_dump(), status_code=status)


async def _read_capped(request: Request, limit: int) -> bytes | None:
    """The request body, or None as soon as it is longer than `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _invalid_query(name: str, value: object, message: str) -> RequestValidationError:
    """A 422 shaped like FastAPI's own (the documented HTTPValidationError), for checks it cannot express."""
    return RequestValidationError([{"type": "value_error", "loc": ("query", name), "msg": message, "input": value}])


def _labels(raw: list[str]) -> dict[str, str]:
    out = {}
    for item in raw:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise _invalid_query("label", item, f"label: {item!r} is not key=value")
        out[key] = value
    return out


def create_app(config: Config, store: Store, signing_key: bytes, now: Callable[[], float] = time.time) -> FastAPI:
    """Build the API around an open store; `now` is injectable so tests can move the server's clock."""
    metrics = ServerMetrics(store)
    read_token = config.server.read_token_value()

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(_retention_loop())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _retention_loop() -> None:
        while True:
            try:
                removed = await run_in_threadpool(store.delete_before, now() - config.store.retention_s)
                metrics.retention_removed.inc(removed)
                if removed:
                    log.info("retention removed %d samples older than %.0f s", removed, config.store.retention_s)
            except LoadpilotError as exc:
                log.warning("retention pass failed: %s", exc)
            await asyncio.sleep(config.server.retention_check_s)

    def require_read(authorization: Annotated[str | None, Header()] = None) -> None:
        """Reads need `Authorization: Bearer <token>` when the server is configured to ask for it."""
        if not config.server.reads_need_token:
            return
        given = (authorization or "").removeprefix("Bearer ").strip()
        if not read_token or not hmac.compare_digest(given.encode(), read_token.encode()):
            raise HTTPException(
                401,
                "reads need a valid token: Authorization: Bearer <server.read_token>",
                headers={"WWW-Authenticate": "Bearer"},
            )

    app = FastAPI(
        title="loadpilot",
        version=__version__,
        description="Ingest signed sample batches; read resources, series, aggregates and events.",
        lifespan=lifespan,
    )
    reads = [Depends(require_read)]
    app.add_middleware(GZipMiddleware, minimum_size=1000)  # the dashboard's JSON shrinks ~5x; small answers stay as is

    @app.exception_handler(TemporaryError)
    async def _unavailable(_: Request, exc: TemporaryError) -> JSONResponse:
        return _problem(503, f"store unavailable, retry later: {exc}")

    @app.post(
        f"{API}/samples",
        response_model=IngestResult,
        summary="Store a signed batch of samples",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/BatchBody"}}},
            },
            "parameters": [
                {"name": h, "in": "header", "required": True, "schema": {"type": "string"}, "description": d}
                for h, d in (
                    (SIGNATURE_HEADER, "sha256=<hex HMAC-SHA256 of '<timestamp>\\n<batch id>\\n<body>'>"),
                    (TIMESTAMP_HEADER, "UNIX time the batch was signed at: digits, optionally a fraction"),
                    (BATCH_HEADER, "the batch's unique id: resending it stores nothing twice"),
                )
            ],
        },
        responses={401: {"model": Problem}, 413: {"model": Problem}, 422: {"model": Problem}, 503: {"model": Problem}},
    )
    async def ingest(request: Request) -> Any:
        """Check size, signature and body, then store the batch once."""
        body = await _read_capped(request, config.server.max_body_bytes)
        if body is None:
            metrics.rejects.labels("too_large").inc()
            return _problem(413, f"body larger than server.max_body_bytes ({config.server.max_body_bytes})")
        h = request.headers
        try:
            batch_id = verify(
                signing_key,
                h.get(SIGNATURE_HEADER),
                h.get(TIMESTAMP_HEADER),
                h.get(BATCH_HEADER),
                body,
                now(),
                config.server.max_clock_skew_s,
            )
        except SignatureError as exc:
            metrics.rejects.labels("signature").inc()
            return _problem(401, str(exc))
        try:
            result = await run_in_threadpool(_store_batch, batch_id, body)
        except ValidationError as exc:
            metrics.rejects.labels("malformed").inc()
            problems = problems_from(exc)
            return _problem(422, problems[0] if len(problems) == 1 else f"{len(problems)} problems", problems)
        except _FutureSamples as exc:
            metrics.rejects.labels("malformed").inc()
            return _problem(422, exc.problems[0], exc.problems)
        return result

    def _store_batch(batch_id: str, body: bytes) -> IngestResult:
        doc = parse_batch(body)
        # A sample from a clock far ahead would stay the newest of its series (and outlive retention) for good.
        latest_allowed = now() + config.server.max_clock_skew_s
        ahead = [i for i, sample in enumerate(doc.samples) if sample[3] > latest_allowed]
        if ahead:
            raise _FutureSamples(
                [
                    f"samples[{i}].timestamp: {doc.samples[i][3]:.0f} is more than server.max_clock_skew_s "
                    f"({config.server.max_clock_skew_s:.0f} s) ahead of the server's clock; check the agent's clock"
                    for i in ahead[:10]
                ]
            )
        batch = Batch(
            batch_id,
            doc.agent,
            doc.interval,
            doc.samples,
            tuple(Resource(r.id, r.kind, r.labels) for r in doc.resources),
        )
        started = time.perf_counter()
        written = store.write_batch(batch)
        metrics.store_latency.observe(time.perf_counter() - started)
        metrics.batches.labels("duplicate" if written.duplicate else "stored").inc()
        metrics.samples.labels("stored").inc(written.stored)
        metrics.samples.labels("duplicate").inc(written.received - written.stored)
        return IngestResult(
            batch_id=batch_id, duplicate=written.duplicate, received=written.received, stored=written.stored
        )

    @app.get(f"{API}/resources", response_model=list[ResourceOut], dependencies=reads)
    def resources(
        kind: str | None = None,
        label: Annotated[list[str], Query(description="key=value; repeat to require several")] = [],  # noqa: B006
    ) -> Any:
        """The resources seen so far, optionally of one kind and carrying the given labels."""
        return [ResourceOut(id=r.id, kind=r.kind, labels=r.labels) for r in store.resources(kind, _labels(label))]

    @app.get(f"{API}/series", response_model=SeriesOut, dependencies=reads)
    def series(
        resource: Annotated[str, Query(min_length=1)],
        metric: Annotated[str, Query(min_length=1)],
        start: Annotated[float | None, Query(description="UNIX seconds; default: end - 3600")] = None,
        end: Annotated[float | None, Query(description="UNIX seconds; default: now")] = None,
        limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
    ) -> Any:
        """One metric of one resource over [start, end), oldest first."""
        stop = now() if end is None else end
        begin = stop - 3600 if start is None else start
        if begin > stop:
            raise _invalid_query("start", start, "start: must be <= end")
        rows = store.series(resource, metric, begin, stop, limit)
        unit = rows[0].unit if rows else ""
        return SeriesOut(
            resource_id=resource,
            metric=metric,
            unit=unit,
            points=[Point(timestamp=s.timestamp, value=s.value) for s in rows],
        )

    @app.get(f"{API}/latest", response_model=list[SampleOut], dependencies=reads)
    def latest(
        metric: str | None = None,
        resource: Annotated[list[str] | None, Query()] = None,
    ) -> Any:
        """The newest sample of each (resource, metric)."""
        return [SampleOut(**{f: getattr(s, f) for f in SampleOut.model_fields}) for s in store.latest(metric, resource)]

    @app.get(f"{API}/stats", response_model=list[StatsOut], dependencies=reads)
    def stats(
        metric: Annotated[str, Query(min_length=1)],
        window: Annotated[float, Query(gt=0, le=31 * 86400, description="seconds before now")] = 60.0,
        group_by: Annotated[str | None, Query(description="a label: aggregate per value of it")] = None,
        kind: str | None = None,
    ) -> Any:
        """Mean, max and p95 of a metric over the last `window` seconds, per resource or per label value."""
        t = now()
        rows = (
            group_stats(store, metric, window, t, group_by, kind)
            if group_by
            else window_stats(store, metric, window, t)
        )
        return [StatsOut(**{f: getattr(s, f) for f in StatsOut.model_fields}) for s in rows]

    @app.get(f"{API}/events", response_model=list[EventOut], dependencies=reads)
    def events(
        since: float | None = None,
        kind: str | None = None,
        subject: str | None = None,
        after_id: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
        result: str | None = None,
    ) -> Any:
        """What loadpilot did and saw, newest first."""
        return [EventOut(**event_json(e)) for e in store.events(since, kind, subject, after_id, limit, result=result)]

    @app.get(f"{API}/healthz", response_model=Health)
    def healthz() -> Any:
        """Up, and the store answers (503 otherwise)."""
        store.events(limit=1)
        return Health(status="ok", version=__version__, store=store.url.split(":", 1)[0])

    @app.get("/metrics", response_class=PlainTextResponse, dependencies=reads)
    def prometheus() -> PlainTextResponse:
        """The server's counters in Prometheus text format."""
        return PlainTextResponse(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    add_dashboard_pages(app)

    add_dashboard_api(app, store, config, require_read, now)

    # POST /samples reads its body itself (size and signature come first), so FastAPI does not see BatchBody:
    # add its schema, which the operation's requestBody refers to, to the document's components.
    default_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        doc = default_openapi()  # cached as app.openapi_schema: the additions below are kept with it
        body = BatchBody.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        schemas.update(body.pop("$defs", {}))
        schemas["BatchBody"] = body
        return doc

    app.openapi = openapi  # type: ignore[method-assign]
    return app
