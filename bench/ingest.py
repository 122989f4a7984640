"""Ingest throughput: signed batches of 1,000 samples over loopback HTTP, per store backend.

Beside each HTTP figure stands the same backend written directly in-process (no HTTP, no signature, no JSON),
so the ratio shows what the API costs on top of the store. Both backends run durably: SQLite with
synchronous=FULL, PostgreSQL with fsync and synchronous_commit on. Target for SQLite on a 2-core machine:
>= 100,000 samples/s over HTTP.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from rich.progress import Progress

from bench.common import loadpilot, stop, wait_healthy, write_results
from loadpilot.model import Batch, Resource, Sample
from loadpilot.store import open_store
from loadpilot.transport.signing import signed_headers
from loadpilot.transport.wire import encode_batch
from tests.helpers import free_port
from tests.pgserver import running_postgres

KEY = b"bench-ingest-key"
SAMPLES_PER_BATCH = 1_000
BATCHES = int(os.environ.get("BENCH_INGEST_BATCHES", "300"))
CLIENTS = 4
ROUNDS = int(os.environ.get("BENCH_INGEST_ROUNDS", "5"))
TARGET_SQLITE = 100_000


def make_batches(n: int, first: int = 0) -> list[Batch]:
    """n batches of 1,000 distinct samples: 50 processes x 20 metrics, one slot per batch from slot `first`."""
    t0 = time.time() - 86_400 + first
    resources = tuple(Resource(f"host{k}/proc/web/{k}", "process", {"pool": "web"}) for k in range(50))
    return [
        Batch(
            uuid.uuid4().hex,
            "bench",
            1.0,
            tuple(Sample(resources[i % 50].id, f"m{i // 50}", 0.5, t0 + b, "", "bench") for i in range(1000)),
            resources,
        )
        for b in range(n)
    ]


def in_threads(work: Callable[[], None]) -> float:
    """Run `work` in CLIENTS threads at once; the wall-clock seconds until all finished."""
    started = time.perf_counter()
    threads = [threading.Thread(target=work) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started


def direct(url: str, batches: list[Batch], synchronous: str) -> float:
    """Samples/s writing straight to the store from CLIENTS threads."""
    store = open_store(url, synchronous)
    it = iter(batches)
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                batch = next(it, None)
            if batch is None:
                return
            store.write_batch(batch)

    elapsed = in_threads(work)
    store.close()
    return len(batches) * SAMPLES_PER_BATCH / elapsed


def over_http(base: str, batches: list[Batch], progress: Progress, label: str) -> tuple[float, list[float]]:
    """Samples/s and request latencies posting signed batches from CLIENTS threads."""
    bodies = [(b.batch_id, encode_batch(b)) for b in batches]
    it = iter(bodies)
    lock = threading.Lock()
    latencies: list[float] = []
    failures: list[str] = []
    task = progress.add_task(label, total=len(bodies))

    def work() -> None:
        with httpx.Client(timeout=60) as client:
            while True:
                with lock:
                    item = next(it, None)
                if item is None:
                    return
                batch_id, body = item
                t = time.perf_counter()
                r = client.post(
                    f"{base}/api/v1/samples", content=body, headers=signed_headers(KEY, batch_id, body, time.time())
                )
                latencies.append(time.perf_counter() - t)
                if r.status_code != 200 or r.json()["stored"] != SAMPLES_PER_BATCH:
                    failures.append(f"{r.status_code} {r.text[:200]}")
                progress.advance(task)

    elapsed = in_threads(work)
    if failures:
        raise RuntimeError(f"{len(failures)} batches failed, first: {failures[0]}")
    return len(bodies) * SAMPLES_PER_BATCH / elapsed, latencies


@contextmanager
def server(tmp: Path, store_url: str, synchronous: str) -> Iterator[str]:
    """A `loadpilot server` child process on a free port, storing into `store_url`."""
    port = free_port()
    config = tmp / f"server-{port}.toml"
    config.write_text(
        f'log_level = "warning"\nstate_dir = "{tmp}"\n[server]\nport = {port}\n[auth]\nsigning_key = "{KEY.decode()}"\n'
        f'[store]\nsqlite_synchronous = "{synchronous}"\n'
    )
    proc = loadpilot(
        "server", "--config", str(config), log=tmp / f"server-{port}.log", env={"LOADPILOT_STORE_URL": store_url}
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, proc)
        yield base
    finally:
        stop(proc)


def measure(
    backend: str, urls: tuple[str, str], tmp: Path, progress: Progress, synchronous: str = "full"
) -> dict[str, object]:
    """One backend: HTTP into the first store URL, direct into the second (fresh databases).

    ROUNDS rounds each, into the same growing store; the median round is reported beside the slowest and fastest,
    because a shared 2-core machine's disk and CPU vary from one run to the next.
    """
    http_rates, direct_rates, lat = [], [], []
    with server(tmp, urls[0], synchronous) as base:
        for r in range(ROUNDS):
            batches = make_batches(BATCHES, r * BATCHES)
            rate, latencies = over_http(base, batches, progress, f"{backend} over HTTP, round {r + 1}/{ROUNDS}")
            http_rates.append(rate)
            lat += latencies
    for r in range(ROUNDS):
        direct_rates.append(direct(urls[1], make_batches(BATCHES, r * BATCHES), synchronous))
    http_rate, direct_rate = statistics.median(http_rates), statistics.median(direct_rates)
    lat_ms = sorted(x * 1000 for x in lat)
    row: dict[str, object] = {
        "backend": backend,
        "HTTP samples/s": http_rate,
        "HTTP rounds min-max": f"{min(http_rates):,.0f}-{max(http_rates):,.0f}",
        "direct samples/s": direct_rate,
        "HTTP / direct": http_rate / direct_rate,
        "batch p50 ms": statistics.median(lat_ms),
        "batch p99 ms": lat_ms[int(len(lat_ms) * 0.99) - 1],
    }
    if backend == "sqlite":
        row["target"] = f">= {TARGET_SQLITE:,} (median): {'met' if http_rate >= TARGET_SQLITE else 'NOT met'}"
    return row


def run() -> Path:
    """Measure both backends and write bench/results/ingest.{json,md}."""
    rows = []
    with tempfile.TemporaryDirectory() as tmpdir, Progress() as progress:
        tmp = Path(tmpdir)
        rows.append(measure("sqlite", (f"sqlite:///{tmp}/http.db", f"sqlite:///{tmp}/direct.db"), tmp, progress))
        normal = (f"sqlite:///{tmp}/http-normal.db", f"sqlite:///{tmp}/direct-normal.db")
        rows.append(measure("sqlite, synchronous=normal", normal, tmp, progress, "normal"))
        with running_postgres(durable=True) as pg:
            urls = (pg.create_database("bench_http"), pg.create_database("bench_direct"))
            rows.append(measure("postgresql", urls, tmp, progress))
    return write_results(
        "ingest",
        "Ingest: signed batches of 1,000 samples over loopback HTTP",
        [
            "backend",
            "HTTP samples/s",
            "HTTP rounds min-max",
            "direct samples/s",
            "HTTP / direct",
            "batch p50 ms",
            "batch p99 ms",
            "target",
        ],
        rows,
        [
            f"{ROUNDS} rounds of {BATCHES} batches x {SAMPLES_PER_BATCH} distinct samples (50 resources x 20 metrics), "
            f"{CLIENTS} client threads, server and client on the same machine; samples/s is the median round. "
            "Direct = the same batches written in-process by the same number of threads.",
            "Batches are encoded as the agent encodes them (samples as compact arrays); the server also takes objects.",
            "Durable settings (the defaults): SQLite WAL with synchronous=FULL, an fsync per commit; PostgreSQL with "
            'fsync and synchronous_commit. `store.sqlite_synchronous = "normal"` (its own row) still loses nothing '
            "when a process crashes, but may lose the last commits when the machine loses power.",
            "Run: `make bench` or `.venv/bin/python -m bench ingest`.",
        ],
    )
