"""A real supervisor on real worker processes (tests/act/worker_app.py), run in a thread of the test."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from loadpilot.act.pool.front import build_balancer
from loadpilot.act.pool.state import PoolPaths, PoolState, read_state
from loadpilot.act.pool.supervisor import Supervisor
from loadpilot.config import PoolConfig
from tests.helpers import free_port

WORKER_APP = str(Path(__file__).parent.parent / "worker_app.py")


def pool_config(mode: str = "ports", extra_args: tuple[str, ...] = (), **fields: Any) -> PoolConfig:
    """A pool of worker_app processes on free ports, fast timings for tests."""
    first = free_port()
    command = [sys.executable, WORKER_APP, "--port", "{port}", "--id", "{worker}", *extra_args]
    if mode == "shared":
        command += ["--fd", "{fd}"]
    data: dict[str, Any] = {
        "name": "web",
        "command": command,
        "mode": mode,
        "port": 0 if mode == "shared" else free_port(),
        "min": 1,
        "max": 4,
        "initial": 2,
        "worker_ports": (first, first + 40),
        "drain_s": 0.3,
        "stop_timeout_s": 3.0,
        "tick_s": 0.1,
        "health": {"interval_s": 0.2, "timeout_s": 0.5},
        "restart": {"backoff_initial_s": 0.05, "backoff_max_s": 0.2},
    }
    for key, value in fields.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return PoolConfig.model_validate(data)


class RunningPool:
    """A supervisor running in a background thread, and helpers to watch its state.json."""

    def __init__(self, config: PoolConfig, root: Path) -> None:
        self.config = config
        self.paths = PoolPaths.of(root, config.name)
        self.supervisor = Supervisor(config, self.paths, build_balancer(config, self.paths.balancer_dir))
        self.thread = threading.Thread(target=self.supervisor.run, kwargs={"install_signals": False}, daemon=True)
        self.pids_seen: set[int] = set()

    def state(self) -> PoolState:
        state = read_state(self.paths)
        assert state is not None
        self.pids_seen |= {w.pid for w in state.workers if w.pid}
        return state

    def wait(self, predicate: Callable[[PoolState], bool], timeout: float = 15.0) -> PoolState:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = read_state(self.paths)
            if state is not None:
                self.pids_seen |= {w.pid for w in state.workers if w.pid}
                if predicate(state):
                    return state
            time.sleep(0.05)
        raise AssertionError(f"timed out; last state: {read_state(self.paths)}")

    def wait_ready(self, n: int, timeout: float = 15.0) -> PoolState:
        return self.wait(lambda s: s.ready == n and all(w.state == "ready" for w in s.workers), timeout)

    def stop(self) -> None:
        self.supervisor.request_stop()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), "the supervisor did not stop"


@pytest.fixture
def start_pool(tmp_path: Path) -> Iterator[Callable[[PoolConfig], RunningPool]]:
    pools: list[RunningPool] = []

    def start(config: PoolConfig) -> RunningPool:
        pool = RunningPool(config, tmp_path / "state")
        pool.thread.start()
        pools.append(pool)
        return pool

    yield start
    for pool in pools:
        if pool.thread.is_alive():
            pool.stop()
        alive = [pid for pid in pool.pids_seen if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]
        assert not alive, f"workers left behind: {alive}"
