"""Helpers shared by tests: free ports, a real server in a thread, waiting for a condition, required servers,
stopping child processes."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path
from typing import IO, TypeVar

import psutil
import pytest
import uvicorn

from loadpilot.config import Config, parse_config
from loadpilot.server.app import create_app
from loadpilot.store import Store

KEY = b"test-signing-key"
T = TypeVar("T")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(condition: Callable[[], bool], timeout: float = 10.0, interval: float = 0.05) -> bool:
    """Poll `condition` until it holds or `timeout` passes; returns whether it held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


def make_config(tmp_path: Path, port: int, **agent: object) -> Config:
    """A config for tests: everything under tmp_path, the given port, a fixed signing key."""
    return parse_config(
        {
            "state_dir": str(tmp_path / "state"),
            "server": {"port": port},
            "auth": {"signing_key": KEY.decode()},
            "agent": {"server_url": f"http://127.0.0.1:{port}", "id": "agent-test", **agent},
        }
    )


@contextmanager
def running_server(config: Config, store: Store) -> Iterator[str]:
    """A real uvicorn server for `store` on config.server.port, in a thread; yields its base URL."""
    app = create_app(config, store, KEY)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=config.server.port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    assert wait_for(lambda: server.started, timeout=10), "server did not start"
    try:
        yield f"http://127.0.0.1:{config.server.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def required_server(
    start: Callable[[], AbstractContextManager[T]], unavailable: type[Exception], what: str
) -> Iterator[T]:
    """Yield what `start()` gives for as long as a fixture needs it; fail the test, never skip it, when it raises
    `unavailable` (a real server is tested for real or not at all)."""
    with ExitStack() as stack:
        try:
            server = stack.enter_context(start())
        except unavailable as exc:
            problem = str(exc)
        else:
            problem = ""
        if problem:
            pytest.fail(f"{what} is needed for this test: {problem}", pytrace=False)
        yield server


def terminate_all(procs: Iterable[subprocess.Popen[bytes]], timeout: float = 40.0) -> None:
    """SIGTERM every child still running (resuming a stopped one first), wait for each to exit (they may take
    their time to leave gracefully), and SIGKILL whoever is still there after `timeout` seconds."""
    procs = list(procs)
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def descendants(pid: int) -> dict[int, float]:
    """Every process below `pid` now, with its start time (so a recycled pid is not taken for it later)."""
    try:
        return {p.pid: p.create_time() for p in psutil.Process(pid).children(recursive=True)}
    except psutil.Error:
        return {}


def alive(pid: int, created: float) -> bool:
    """Whether the process seen as (pid, start time) still runs (a zombie does not)."""
    try:
        proc = psutil.Process(pid)
        return proc.create_time() == created and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


Launcher = Callable[..., "subprocess.Popen[str]"]


@contextmanager
def launcher(log_dir: Path) -> Iterator[Launcher]:
    """Start `loadpilot <args>` as child processes logging to log_dir/<log_name>.log; on exit every child still
    running gets SIGTERM, then SIGKILL after 15 s."""
    children: list[subprocess.Popen[str]] = []
    logs: list[IO[str]] = []

    def start(*args: str, log_name: str, sigint_ignored: bool = False) -> subprocess.Popen[str]:
        """sigint_ignored: start it as a shell starts a background job, with SIGINT ignored (inherited)."""
        log = open(log_dir / f"{log_name}.log", "a")  # noqa: SIM115 (closed once every child has stopped)
        logs.append(log)
        ignore = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if sigint_ignored else None
        proc = subprocess.Popen(
            [sys.executable, "-m", "loadpilot", *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=ignore,
        )
        children.append(proc)
        return proc

    try:
        yield start
    finally:
        for proc in children:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in children:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for log in logs:
            log.close()
