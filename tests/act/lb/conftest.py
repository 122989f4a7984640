"""Fixtures for the load-balancer tests: real worker processes (tests/act/worker_app.py) behind each real driver.

`lb` is a Harness around one started balancer of each kind. It plays the pool supervisor's part: it starts
workers (with the shared socket's descriptor when the driver is the shared socket), routes them, and retires the
ones it removed from the routes the way the supervisor does for that driver.
"""

from __future__ import annotations

import http.client
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from loadpilot.act.lb.base import Balancer, Route
from loadpilot.act.lb.haproxy import HAProxyBalancer
from loadpilot.act.lb.nginx import NginxBalancer
from loadpilot.act.lb.shared import SharedSocketBalancer

WORKER_APP = Path(__file__).parents[1] / "worker_app.py"
KINDS = ["shared", "nginx", "haproxy"]
MANAGED = ["nginx", "haproxy"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll `condition` until it holds or `timeout` passes; returns whether it held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def request(front: tuple[str, int], path: str = "/", timeout: float = 5.0, method: str = "GET") -> tuple[int, str]:
    """One request on a fresh connection (no keep-alive, so every request is balanced anew): (status, body)."""
    conn = http.client.HTTPConnection(*front, timeout=timeout)
    try:
        conn.request(method, path, body=b"x" if method == "POST" else None, headers={"Connection": "close"})
        response = conn.getresponse()
        return response.status, response.read().decode().strip()
    finally:
        conn.close()


def accepts(front: tuple[str, int]) -> bool:
    """Whether something accepts TCP connections on `front`."""
    try:
        with socket.create_connection(front, timeout=0.5):
            return True
    except OSError:
        return False


@dataclass
class Worker:
    """One worker_app process: its id, its own port, and (shared socket) the listening socket it inherited."""

    name: str
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def route(self) -> Route:
        return Route(self.name, "127.0.0.1", self.port, 1, self.proc.pid)

    def in_flight(self) -> int:
        """Requests this worker is serving now, from its own /metrics."""
        status, body = request(("127.0.0.1", self.port), "/metrics")
        assert status == 200
        line = next(line for line in body.splitlines() if line.startswith("http_requests_in_flight "))
        return int(float(line.split()[1]))

    def terminate(self, timeout: float = 10.0) -> None:
        """SIGTERM (the worker finishes what it serves) and wait for it to exit.

        The signal is repeated: worker_app's main thread waits on an Event without a timeout, so a SIGTERM the
        kernel delivers to one of its server threads is not acted on until another signal reaches the main one.
        """
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=min(0.5, max(0.0, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                if time.monotonic() >= deadline:
                    raise


@dataclass
class Harness:
    """A started balancer plus the workers a test starts behind it; stands in for the pool supervisor."""

    kind: str
    balancer: Balancer
    workers: list[Worker] = field(default_factory=list)

    @property
    def front(self) -> tuple[str, int]:
        return self.balancer.front

    def spawn(self, name: str, port: int | None = None) -> Worker:
        """Start a worker (on `port`, or a free one) and wait until it answers on its own port (the supervisor's
        readiness check)."""
        port = port or free_port()
        args = [sys.executable, str(WORKER_APP), "--port", str(port), "--id", name]
        fds: tuple[int, ...] = ()
        if isinstance(self.balancer, SharedSocketBalancer):
            fds = (self.balancer.fileno(),)
            args += ["--fd", str(fds[0])]
        worker = Worker(name, port, subprocess.Popen(args, pass_fds=fds))
        self.workers.append(worker)
        assert wait_for(lambda: accepts(("127.0.0.1", port))), f"worker {name} did not start"
        return worker

    def update(self, *workers: Worker) -> None:
        self.balancer.update([w.route for w in workers])

    def retire(self, *workers: Worker) -> None:
        """What the supervisor does with workers it removed from the routes, for this driver.

        Behind the shared socket a worker takes connections for as long as it holds the socket, so the
        supervisor stops it. A proxy stops sending it requests by itself, so it is left running here: the
        tests then also show that a live worker outside the routes gets nothing.
        """
        if self.kind == "shared":
            for worker in workers:
                worker.terminate()

    def answered_by(self, expected: set[str], at_least: int = 8, at_most: int = 200) -> set[str]:
        """Who answered requests through the front, sent until all of `expected` answered (`at_most` tries).

        Every request must succeed. Asking until everyone answered, rather than a fixed number of times, keeps
        the shared socket's test honest: the kernel, not the driver, picks who accepts, and under load it may
        favour one worker for a while.
        """
        seen: set[str] = set()
        for sent in range(1, at_most + 1):
            status, body = request(self.front)
            assert status == 200, (status, body)
            seen.add(body)
            if sent >= at_least and seen >= expected:
                break
        return seen

    def route_set(self) -> set[Route]:
        return set(self.balancer.routes())

    def balancer_processes(self) -> list[psutil.Process]:
        """The balancer's processes (a managed proxy and, for nginx, its workers); none for the shared socket."""
        pid = getattr(self.balancer, "pid", None)
        if pid is None:
            return []
        main = psutil.Process(pid)
        return [main, *main.children(recursive=True)]

    def close(self) -> None:
        for worker in self.workers:
            if worker.proc.poll() is None:
                worker.proc.kill()
            worker.proc.wait()


def make_balancer(kind: str, workdir: Path, port: int = 0) -> Balancer:
    """A balancer of `kind` on 127.0.0.1 (port 0: the driver picks a free one), with short test timeouts."""
    if kind == "shared":
        return SharedSocketBalancer("127.0.0.1", port)
    if kind == "nginx":
        return NginxBalancer("127.0.0.1", port, workdir / "nginx", drain_timeout_s=10)
    if kind == "haproxy":
        return HAProxyBalancer("127.0.0.1", port, workdir / "haproxy", slots=4, drain_timeout_s=10)
    raise ValueError(kind)


@contextmanager
def running(kind: str, workdir: Path) -> Iterator[Harness]:
    """A started balancer of `kind` with its harness; the balancer is stopped and the workers killed after."""
    balancer = make_balancer(kind, workdir)
    harness = Harness(kind, balancer)
    try:
        balancer.start()
        yield harness
    finally:
        try:
            balancer.stop()
        finally:
            harness.close()


@pytest.fixture(params=KINDS)
def lb(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    """A started balancer of each kind, on a free 127.0.0.1 port, in a fresh work directory."""
    with running(request.param, tmp_path) as harness:
        yield harness


@pytest.fixture(params=MANAGED)
def managed(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    """A started managed proxy (nginx, HAProxy): the drivers with a process of their own."""
    with running(request.param, tmp_path) as harness:
        yield harness
