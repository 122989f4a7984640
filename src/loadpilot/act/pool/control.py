"""Service control for a pool from any shell: start, stop, restart, scale, status.

Everything goes through the pool's files in the state dir (see state.py): the supervisor holds a lock while it
runs, reads desired.json every tick and publishes state.json. So `scale` is "write the desired size and watch
state.json", and `stop` is "TERM the lock holder and wait for the lock to go".
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import psutil

from loadpilot.act.fencing import EpochFence
from loadpilot.act.pool.state import (
    Desired,
    PoolPaths,
    PoolState,
    SupervisorLock,
    read_desired,
    read_state,
    supervisor_pid,
    write_desired,
)
from loadpilot.config import Config, PoolConfig
from loadpilot.errors import PermanentError, TemporaryError

if TYPE_CHECKING:
    from loadpilot.act.pool.metrics import ServeMetrics

POLL_S = 0.1
T = TypeVar("T")


def paths_of(config: Config, pool: str) -> PoolPaths:
    """The files of a configured pool (ConfigError when there is no such pool)."""
    return PoolPaths.of(config.state_path, config.pool(pool).name)


def is_running(paths: PoolPaths) -> bool:
    """True when a supervisor holds the pool's lock."""
    return supervisor_pid(paths) is not None


def run_foreground(config: Config, pool: PoolConfig, serve_metrics: ServeMetrics | None = None) -> None:
    """Supervise the pool in this process until SIGTERM/SIGINT (what `pool start` runs in the background);
    `serve_metrics` serves the supervisor's /metrics when the pool's metrics_listen is set."""
    from loadpilot.act.pool.front import build_balancer
    from loadpilot.act.pool.supervisor import Supervisor

    paths = PoolPaths.of(config.state_path, pool.name)
    lock = SupervisorLock(paths)
    lock.acquire()
    try:
        stop_leftovers(paths)
        balancer = build_balancer(pool, paths.balancer_dir)
        cwd = config.path(pool.cwd) if pool.cwd else None
        Supervisor(pool, paths, balancer, cwd=cwd, serve_metrics=serve_metrics).run()
    finally:
        lock.release()


def start_background(config: Config, pool: PoolConfig, config_file: Path | None, timeout: float) -> PoolState:
    """Start the pool's supervisor as a daemon and wait until its initial workers are ready (or have failed)."""
    paths = PoolPaths.of(config.state_path, pool.name)
    if (pid := supervisor_pid(paths)) is not None:
        raise PermanentError(f"pool {pool.name!r} is already running (supervisor pid {pid})")
    paths.root.mkdir(parents=True, exist_ok=True)
    previous = read_desired(paths)
    write_desired(paths, Desired(size=pool.initial_size, generation=previous.generation if previous else 0))
    command = [sys.executable, "-m", "loadpilot", "pool", "start", pool.name, "--foreground"]
    if config_file is not None:
        command += ["--config", str(config_file.resolve())]
    launched = time.time()
    with open(paths.supervisor_log, "ab") as log:
        proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def settled() -> PoolState | None:
        if proc.poll() is not None:
            raise PermanentError(
                f"the supervisor of {pool.name!r} exited with code {proc.returncode}; see {paths.supervisor_log}"
            )
        state = read_state(paths)
        if state is None or state.supervisor_pid != proc.pid or state.updated_at < launched:
            return None
        waiting = [w for w in state.workers if w.state in ("starting", "backoff")]
        return None if waiting and state.ready + state.failed < state.desired else state

    return wait_for(settled, timeout, f"pool {pool.name!r} did not settle within {timeout:g} s; see status")


def stop(paths: PoolPaths, timeout: float) -> bool:
    """Drain and stop the pool's workers and its supervisor; False when it was not running.

    Past `timeout` the supervisor is killed and every worker it recorded is killed too: nothing is left behind.
    """
    pid = supervisor_pid(paths)
    if pid is None:
        stop_leftovers(paths)
        return False
    os.kill(pid, signal.SIGTERM)
    try:
        wait_for(lambda: not is_running(paths) or None, timeout, "")
    except TemporaryError:
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not is_running(paths) or None, 5.0, f"supervisor pid {pid} did not die")
    stop_leftovers(paths)
    return True


def fence_of(paths: PoolPaths, pool: PoolConfig) -> EpochFence:
    """The pool's epoch fence: actions from a replaced leader (an older epoch) are refused."""
    return EpochFence(paths.fence, f"pool {pool.name!r}")


def scale(paths: PoolPaths, pool: PoolConfig, size: int, epoch: int = 0) -> Desired:
    """Set the desired number of workers; PermanentError outside min..max, StaleEpochError when `epoch` is older
    than the newest leadership epoch that has acted on this pool (0: by hand, not fenced)."""
    if not pool.min <= size <= pool.max:
        raise PermanentError(f"size {size} is outside pools.{pool.name}: min..max = {pool.min}..{pool.max}")
    with fence_of(paths, pool).admit(epoch):
        current = read_desired(paths) or Desired(size=pool.initial_size)
        desired = replace(current, size=size, epoch=epoch, updated_at=time.time())
        write_desired(paths, desired)
    return desired


def restart(paths: PoolPaths, pool: PoolConfig, epoch: int = 0) -> Desired:
    """Ask for a rolling restart: each worker is replaced by a new one, which must be ready before the old leaves.
    Fenced like `scale`."""
    with fence_of(paths, pool).admit(epoch):
        current = read_desired(paths) or Desired(size=pool.initial_size)
        desired = replace(current, generation=current.generation + 1, epoch=epoch, updated_at=time.time())
        write_desired(paths, desired)
    return desired


def wait_generation(paths: PoolPaths, generation: int, timeout: float) -> PoolState:
    """Wait until every serving worker runs the given generation and none is left draining."""

    def done() -> PoolState | None:
        state = read_state(paths)
        if state is None or state.generation < generation:
            return None
        serving = [w for w in state.workers if w.state not in ("failed", "backoff")]
        return state if all(w.generation >= generation and w.state == "ready" for w in serving) else None

    return wait_for(done, timeout, f"the rolling restart did not finish within {timeout:g} s; see status")


def wait_size(paths: PoolPaths, size: int, timeout: float) -> PoolState:
    """Wait until the pool has `size` ready workers and nothing draining."""

    def done() -> PoolState | None:
        state = read_state(paths)
        if state is None:
            return None
        settled = state.ready + state.failed == size and all(w.state in ("ready", "failed") for w in state.workers)
        return state if settled else None

    return wait_for(done, timeout, f"the pool did not reach {size} ready workers within {timeout:g} s")


def wait_for(probe: Callable[[], T | None], timeout: float, message: str) -> T:
    """Poll `probe` until it returns something; TemporaryError(message) after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result is not None:
            return result
        if time.monotonic() > deadline:
            raise TemporaryError(message)
        time.sleep(POLL_S)


def stop_leftovers(paths: PoolPaths) -> list[int]:
    """Kill workers a dead supervisor left running (recorded in state.json, same process start time)."""
    state = read_state(paths)
    if state is None:
        return []
    killed = []
    for record in state.workers:
        if record.pid is None or record.started_at is None:
            continue
        try:
            proc = psutil.Process(record.pid)
            if abs(proc.create_time() - record.started_at) > 2.0:
                continue  # the pid was reused by another program
            os.killpg(record.pid, signal.SIGKILL)
            killed.append(record.pid)
        except (psutil.Error, ProcessLookupError, PermissionError):
            continue
    return killed
