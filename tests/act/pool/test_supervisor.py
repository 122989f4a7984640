"""The supervisor against real worker processes: start, crash, restart, fail, scale, replace, stop."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
import urllib.request

from loadpilot.act.pool.state import Desired, write_desired
from tests.act.pool.conftest import RunningPool, pool_config


def _get(port: int, path: str = "/") -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        return r.read().decode()


def _events(pool: RunningPool, kind: str) -> list[dict[str, object]]:
    lines = pool.paths.events.read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["kind"] == kind]


def test_initial_workers_start_on_their_own_ports_and_answer(start_pool) -> None:
    pool = start_pool(pool_config())
    state = pool.wait_ready(2)
    ports = [w.port for w in state.workers]
    assert len(set(ports)) == 2
    assert sorted(_get(p).strip() for p in ports) == ["web-0", "web-1"]
    assert all(w.pid and w.started_at and w.ready_at for w in state.workers)
    assert state.status == "running" and state.desired == 2


def test_a_killed_worker_is_replaced_and_counted(start_pool) -> None:
    pool = start_pool(pool_config())
    before = pool.wait_ready(2)
    victim = before.workers[0]
    os.kill(victim.pid, signal.SIGKILL)
    after = pool.wait(lambda s: s.ready == 2 and victim.pid not in {w.pid for w in s.workers})
    replaced = next(w for w in after.workers if w.id == victim.id)
    assert replaced.restarts == 1
    assert _get(replaced.port).strip() == victim.id
    crash = _events(pool, "crashed")[0]
    assert crash["subject"] == victim.id and "killed by SIGKILL" in str(crash["reason"])


def test_a_command_that_exits_at_once_is_marked_failed_with_its_reason(start_pool) -> None:
    config = pool_config(extra_args=("--exit-at-once",), initial=1, restart={"max_crashes": 3})
    pool = start_pool(config)
    state = pool.wait(lambda s: s.failed == 1, timeout=20)
    worker = state.workers[0]
    assert worker.state == "failed" and worker.pid is None and worker.restarts == 3
    assert "3 crashes" in worker.reason and "exited with code 3" in worker.reason
    assert "exiting at once as asked" in worker.reason  # the last words of its log
    assert len(_events(pool, "failed")) == 1
    time.sleep(0.5)  # the breaker stays open: no more starts
    assert len(_events(pool, "starting")) == 3


def test_scale_out_then_in_drains_the_highest_slots(start_pool) -> None:
    pool = start_pool(pool_config())
    pool.wait_ready(2)
    write_desired(pool.paths, Desired(size=4))
    grown = pool.wait_ready(4)
    assert sorted(w.id for w in grown.workers) == ["web-0", "web-1", "web-2", "web-3"]
    write_desired(pool.paths, Desired(size=1))
    shrunk = pool.wait_ready(1)
    assert [w.id for w in shrunk.workers] == ["web-0"]
    gone = {w.pid for w in grown.workers} - {w.pid for w in shrunk.workers}
    assert all(not os.path.exists(f"/proc/{pid}") for pid in gone)
    reasons = [str(e["reason"]) for e in _events(pool, "stopped")]
    assert sum("scale in to 1; exited with code 0" in r for r in reasons) == 3  # TERM, not KILL


def test_desired_size_is_clamped_to_min_max(start_pool) -> None:
    pool = start_pool(pool_config())
    pool.wait_ready(2)
    write_desired(pool.paths, Desired(size=99))
    assert pool.wait_ready(4).desired == 4


def test_rolling_restart_keeps_every_slot_serving(start_pool) -> None:
    pool = start_pool(pool_config(initial=3))
    before = pool.wait_ready(3)
    write_desired(pool.paths, Desired(size=3, generation=1))
    lowest_ready = 3
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        state = pool.state()
        lowest_ready = min(lowest_ready, state.ready)
        replaced = all(w.generation == 1 and w.state == "ready" for w in state.workers)
        if state.generation == 1 and replaced and len(state.workers) == 3:
            break
        time.sleep(0.02)
    assert {w.pid for w in state.workers}.isdisjoint({w.pid for w in before.workers})
    assert lowest_ready >= 3  # a new worker is ready before an old one leaves


def test_a_port_in_use_is_skipped_with_an_event(start_pool) -> None:
    config = pool_config(initial=1)
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", config.worker_ports[0]))
    blocker.listen()
    try:
        pool = start_pool(config)
        state = pool.wait_ready(1)
        assert state.workers[0].port != config.worker_ports[0]
        assert _events(pool, "port_skipped")[0]["subject"] == f"port {config.worker_ports[0]}"
    finally:
        blocker.close()


def test_a_worker_that_stops_answering_leaves_and_is_replaced(start_pool) -> None:
    config = pool_config(initial=1, stop_timeout_s=0.5, health={"failures": 2, "timeout_s": 0.2})
    pool = start_pool(config)
    victim = pool.wait_ready(1).workers[0]
    os.kill(victim.pid, signal.SIGSTOP)  # alive, but it answers nothing: only a health check can tell
    after = pool.wait(lambda s: s.ready == 1 and s.workers[0].pid != victim.pid and len(s.workers) == 1)
    assert after.workers[0].restarts == 1
    crash = _events(pool, "crashed")[0]
    assert "failed checks" in str(crash["reason"])
    assert _events(pool, "killed")[0]["subject"] == victim.id  # TERM was not enough for a stopped process


def test_a_worker_never_ready_counts_as_a_crash(start_pool) -> None:
    config = pool_config(extra_args=("--unready",), initial=1, health={"start_timeout_s": 0.5})
    pool = start_pool(config)
    pool.wait(lambda s: s.workers and s.workers[0].restarts >= 1)
    assert "not ready within 0.5 s" in str(_events(pool, "crashed")[0]["reason"])


def test_stop_drains_and_leaves_no_process(start_pool) -> None:
    pool = start_pool(pool_config(initial=3))
    state = pool.wait_ready(3)
    pool.stop()
    final = pool.state()
    assert final.status == "stopped" and final.workers == []
    assert all(not os.path.exists(f"/proc/{w.pid}") for w in state.workers)
