"""The dashboard's data: one JSON document per page (overview, a pool, a host, coordination), all reads.

Every chart is a set of aligned arrays over the same buckets (see dashboard_data.Window), computed in the store
with one grouped query per metric, so a page costs a handful of queries whatever the size of the fleet.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from loadpilot.config import Config
from loadpilot.errors import LoadpilotError
from loadpilot.model import Resource
from loadpilot.server.dashboard_data import (
    Window,
    last_seen,
    latest_by_resource,
    name_of,
    newest_events,
    per_resource,
    sig,
    sig_all,
    value_of,
)
from loadpilot.server.dashboard_pools import PoolFacts, PoolSeries, autoscale_json, pool_config, pool_name
from loadpilot.server.schemas import Problem
from loadpilot.store import Store

DASH = "/api/v1/dash"
WindowParam = Annotated[int, Query(ge=60, le=86400, description="seconds of history the charts cover")]
HOST_SERIES = (
    "cpu.util",
    "mem.util",
    "net.rx_bytes_per_s",
    "net.tx_bytes_per_s",
    "disk.read_bytes_per_s",
    "disk.write_bytes_per_s",
)
OVERVIEW_EVENTS = 20
PAGE_EVENTS = 50
MAX_EVENT_SUBJECTS = 64  # a host page asks for the events of at most this many subjects (the host and its VMs)
COORDINATION_TTL_S = 2.0
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Problem}}


def _problem(status: int, detail: str) -> JSONResponse:
    return JSONResponse(Problem(detail=detail).model_dump(), status_code=status)


def _head(window: Window, now: float, window_s: int) -> dict[str, Any]:
    return {"now": now, "window_s": window_s, "step_s": window.step_s}


def overview(store: Store, config: Config, now: float, window_s: int) -> dict[str, Any]:
    """The whole fleet at a glance: counts, hosts with their CPU heat map, pools with their series, events."""
    window = Window.ending_at(now, window_s, config.agent.interval_s)
    hosts = store.resources(kind="host")
    vms = store.resources(kind="vm")
    facts = PoolFacts.load(store, now, config.agent.interval_s)
    workers = facts.live_workers()  # those that reported lately: a pool scaled in keeps its old workers' records
    host_rows = _host_rows(store, hosts, vms, workers)
    series = PoolSeries(store, window, facts)
    return {
        **_head(window, now, window_s),
        "counts": {"hosts": len(hosts), "vms": len(vms), "pools": len(facts.pools), "workers": len(workers)},
        "hosts": host_rows,
        "heat": {
            "metric": "cpu.util",
            "start": window.start,
            "step_s": window.step_s,
            "rows": _heat(store, window, hosts),
        },
        "pools": [_pool_overview(facts, series, p) for p in facts.pools],
        "events": newest_events([store.events(limit=OVERVIEW_EVENTS)], OVERVIEW_EVENTS),
    }


def _host_rows(
    store: Store, hosts: list[Resource], vms: list[Resource], workers: list[Resource]
) -> list[dict[str, Any]]:
    vm_count = Counter(v.labels.get("host") for v in vms)
    worker_count = Counter(w.labels.get("host") for w in workers)
    latest = latest_by_resource(s for metric in ("cpu.util", "mem.util") for s in store.latest(metric=metric))
    rows = []
    for h in hosts:
        name = name_of(h)
        rows.append(
            {
                "id": h.id,
                "name": name,
                "cpu": sig(value_of(latest, h.id, "cpu.util"), 3),
                "mem": sig(value_of(latest, h.id, "mem.util"), 3),
                "vms": vm_count[name],
                "workers": worker_count[name],
                "last_seen": last_seen(latest, h.id),
            }
        )
    return rows


def _heat(store: Store, window: Window, hosts: list[Resource]) -> list[list[int | None]]:
    """Each host's CPU per bucket in whole percent (null: no sample), in the order of `hosts`."""
    cpu = per_resource(store, "cpu.util", window, kind="host")
    empty: list[float | None] = [None] * window.count
    return [[None if v is None else max(0, min(100, round(v * 100))) for v in cpu.get(h.id, empty)] for h in hosts]


def _pool_overview(facts: PoolFacts, series: PoolSeries, pool: Resource) -> dict[str, Any]:
    return {"name": pool_name(pool), "host": pool.labels.get("host"), **facts.summary(pool), "series": series.of(pool)}


def pool_detail(store: Store, config: Config, now: float, window_s: int, name: str) -> dict[str, Any] | None:
    """One pool: its size and load now, each worker, the series with demand, its events and autoscale settings."""
    facts = PoolFacts.load(store, now, config.agent.interval_s, name)
    if not facts.pools:
        return None
    pool = facts.pools[0]
    window = Window.ending_at(now, window_s, config.agent.interval_s)
    series = PoolSeries(store, window, facts)
    settings = pool_config(config, name)
    rows = (facts.worker_row(w) for w in facts.workers.get(name, []))
    return {
        "name": name,
        **_head(window, now, window_s),
        "latest": facts.summary(pool),
        "workers": sorted((r for r in rows if r is not None), key=lambda r: str(r["worker"])),
        "series": {**series.of(pool), "demand": series.demand(pool, settings)},
        "events": _pool_events(store, name),
        "autoscale": autoscale_json(settings),
    }


def _pool_events(store: Store, name: str) -> list[dict[str, Any]]:
    """The newest events about a pool: subject <name>, <name>/..., pool/<name> (the controller's) or pool/<name>/..."""
    queries = [
        store.events(subject=name, limit=PAGE_EVENTS),
        store.events(subject_prefix=f"{name}/", limit=PAGE_EVENTS),
        store.events(subject=f"pool/{name}", limit=PAGE_EVENTS),
        store.events(subject_prefix=f"pool/{name}/", limit=PAGE_EVENTS),
    ]
    return newest_events(queries, PAGE_EVENTS)


def host_detail(store: Store, config: Config, now: float, window_s: int, host_id: str) -> dict[str, Any] | None:
    """One host: every metric now, its series, its VMs and pool workers, and the events that mention it."""
    host = next((h for h in store.resources(kind="host") if h.id == host_id), None)
    if host is None:
        return None
    name = name_of(host)
    window = Window.ending_at(now, window_s, config.agent.interval_s)
    vms = store.resources(kind="vm", labels={"host": name})
    workers = store.resources(kind="pool_worker", labels={"host": name})
    latest = latest_by_resource(store.latest(resource_ids=[host.id, *(r.id for r in vms + workers)]))
    count = window.count
    series: dict[str, Any] = {"t": window.times()}
    for metric in HOST_SERIES:
        series[metric] = sig_all(per_resource(store, metric, window, ids=[host.id]).get(host.id, [None] * count))
    # Events name what they act on: the host itself, or one of its VMs (a migration's subject is vm/<id or name>).
    vm_names = (f"vm/{vm.labels['name']}" for vm in vms if "name" in vm.labels)
    subjects = {host.id, name, *(vm.id for vm in vms), *vm_names}
    return {
        "id": host.id,
        "name": name,
        "labels": host.labels,
        **_head(window, now, window_s),
        "last_seen": last_seen(latest, host.id),
        "latest": {m: sig(s.value) for m, s in sorted(latest.get(host.id, {}).items())},
        "series": series,
        "vms": [_member_row(latest, vm, {"name": vm.labels.get("name", vm.id)}, "mem.util", "mem") for vm in vms],
        "workers": [
            _member_row(
                latest, w, {"pool": w.labels.get("pool"), "worker": w.labels.get("worker")}, "mem.rss_bytes", "rss"
            )
            for w in workers
        ],
        "events": newest_events(
            (store.events(subject=s, limit=PAGE_EVENTS) for s in sorted(subjects)[:MAX_EVENT_SUBJECTS]), PAGE_EVENTS
        ),
    }


def _member_row(
    latest: dict[str, Any], res: Resource, labels: dict[str, Any], mem_metric: str, mem_key: str
) -> dict[str, Any]:
    """A VM or worker on a host page: its id, a label or two, and its CPU and memory now."""
    return {
        "id": res.id,
        **labels,
        "cpu": sig(value_of(latest, res.id, "cpu.util")),
        mem_key: sig(value_of(latest, res.id, mem_metric)),
    }


class CoordinationView:
    """`loadpilot status --json` for the dashboard, read in the thread pool and kept for a couple of seconds, so
    many open pages cost one backend read per TTL."""

    def __init__(self, config: Config, ttl_s: float = COORDINATION_TTL_S) -> None:
        self.config = config
        self.ttl_s = ttl_s
        self._cached: tuple[float, int, dict[str, Any]] | None = None  # (monotonic time, status, document)
        self._lock = asyncio.Lock()

    async def get(self) -> tuple[int, dict[str, Any]]:
        """(HTTP status, document): 200 and the status, or 503 and why the backend could not be read."""
        async with self._lock:
            cached = self._cached
            if cached is None or time.monotonic() - cached[0] >= self.ttl_s:
                status, doc = await run_in_threadpool(self._read)
                cached = self._cached = (time.monotonic(), status, doc)
        return cached[1], cached[2]

    def _read(self) -> tuple[int, dict[str, Any]]:
        from loadpilot.coord import CoordSettings
        from loadpilot.coord.shared import AGENTS
        from loadpilot.coord.status import read_status

        try:
            settings = CoordSettings(**self.config.coordination_options())
            data = read_status(settings).to_json()
        except LoadpilotError as exc:
            return 503, Problem(detail=f"coordination backend unavailable: {exc}").model_dump()
        data["namespace"] = settings.namespace
        agents = [m for m in data["members"] if m["role"] == AGENTS]
        total = sum(m["owned"] for m in agents)
        data["shares"] = {m["id"]: round(m["owned"] / total, 4) if total else 0.0 for m in agents}
        return 200, data


def add_dashboard_api(
    app: FastAPI, store: Store, config: Config, require_read: Callable[..., None], now: Callable[[], float]
) -> None:
    """Add the dashboard's GET /api/v1/dash/... reads to `app`, behind the same read check as the other reads."""
    reads = [Depends(require_read)]
    coordination_view = CoordinationView(config)

    @app.get(f"{DASH}/overview", dependencies=reads, summary="The fleet at a glance (dashboard)")
    def dash_overview(window_s: WindowParam = 900) -> JSONResponse:
        """Counts, hosts with a CPU heat map, pools with their series, and the newest events."""
        return JSONResponse(overview(store, config, now(), window_s))

    @app.get(f"{DASH}/pools/{{name}}", dependencies=reads, responses=NOT_FOUND, summary="One pool (dashboard)")
    def dash_pool(name: str, window_s: WindowParam = 900) -> JSONResponse:
        """A pool's size and load, its workers, its series with demand, its events and autoscale settings."""
        doc = pool_detail(store, config, now(), window_s, name)
        return _problem(404, f"no pool named {name!r} has reported") if doc is None else JSONResponse(doc)

    @app.get(f"{DASH}/hosts/{{host_id:path}}", dependencies=reads, responses=NOT_FOUND, summary="One host (dashboard)")
    def dash_host(host_id: str, window_s: WindowParam = 900) -> JSONResponse:
        """A host's metrics now and over the window, its VMs and workers, and the events that mention it."""
        doc = host_detail(store, config, now(), window_s, host_id)
        return _problem(404, f"no host with id {host_id!r} has reported") if doc is None else JSONResponse(doc)

    @app.get(
        f"{DASH}/coordination",
        dependencies=reads,
        responses={503: {"model": Problem}},
        summary="Members, leader and shares (dashboard)",
    )
    async def dash_coordination() -> JSONResponse:
        """What `loadpilot status --json` prints, with each agent's share of the polled resources."""
        status, doc = await coordination_view.get()
        return JSONResponse(doc, status_code=status)
