"""The pool collector reads a real supervisor's state.json and measures its real workers."""

from __future__ import annotations

import os
import signal
import time
import urllib.request
from pathlib import Path
from typing import Any

from loadpilot.sense.collectors.pool import PoolCollector, PoolOptions
from tests.act.pool.conftest import pool_config


def test_workers_are_sampled_as_resources_labelled_with_their_pool(start_pool, tmp_path) -> None:
    pool = start_pool(pool_config(initial=2))
    state = pool.wait_ready(2)
    for w in state.workers:
        for _ in range(5):
            urllib.request.urlopen(f"http://127.0.0.1:{w.port}/", timeout=5).read()
    pool.wait(lambda s: all(w.requests == 5 for w in s.workers))
    collector = PoolCollector(PoolOptions(state_dir=str(tmp_path / "state")), host="h1")
    collector.collect(time.time())
    time.sleep(0.2)
    got = collector.collect(time.time())
    workers = [r for r in got.resources if r.kind == "pool_worker"]
    assert sorted(r.labels["worker"] for r in workers) == ["web-0", "web-1"]
    assert all(r.labels["pool"] == "web" and r.labels["host"] == "h1" for r in workers)
    by = {(s.resource_id, s.metric): s.value for s in got.samples}
    for w in ("web-0", "web-1"):
        rid = f"pool/web/{w}"
        assert by[(rid, "http.requests_total")] == 5
        assert by[(rid, "mem.rss_bytes")] > 1_000_000
        assert 0 <= by[(rid, "cpu.util")] < 2
        assert by[(rid, "worker.ready")] == 1.0
        assert by[(rid, "worker.restarts")] == 0
    assert by[("pool/web", "pool.ready")] == 2 and by[("pool/web", "pool.desired")] == 2


def test_a_stopped_pool_yields_nothing(start_pool, tmp_path) -> None:
    pool = start_pool(pool_config(initial=1))
    pool.wait_ready(1)
    pool.stop()
    collector = PoolCollector(PoolOptions(state_dir=str(tmp_path / "state")), host="h1")
    assert collector.collect(time.time()).samples == []


def test_a_restarted_worker_reports_its_restart_count(start_pool: Any, tmp_path: Path) -> None:
    pool = start_pool(pool_config(initial=1))
    (worker,) = pool.wait_ready(1).workers
    os.kill(worker.pid, signal.SIGKILL)
    state = pool.wait(lambda s: [(w.state, w.restarts) for w in s.workers] == [("ready", 1)])
    collector = PoolCollector(PoolOptions(state_dir=str(tmp_path / "state")), host="h1")
    by = {(s.resource_id, s.metric): s.value for s in collector.collect(time.time()).samples}
    assert by[(f"pool/web/{state.workers[0].id}", "worker.restarts")] == 1
