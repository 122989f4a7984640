"""What the managed proxies (nginx, HAProxy) promise beyond the contract: safe retries, restarts, takeover."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import psutil
import pytest

from loadpilot.act.lb.base import Route
from loadpilot.errors import PermanentError
from tests.act.lb.conftest import MANAGED, Harness, Worker, make_balancer, request, running, wait_for


def in_flight_on(lb: Harness, worker: Worker, method: str, answers: list[tuple[int, str]]) -> list[threading.Thread]:
    """Send slow requests through the front until `worker` is serving one; returns the request threads."""
    threads: list[threading.Thread] = []

    def slow() -> None:
        try:
            answers.append(request(lb.front, "/slow?ms=1500", timeout=10, method=method))
        except Exception as exc:  # any failure is an answer the test checks
            answers.append((0, repr(exc)))

    for _ in range(40):
        threads.append(threading.Thread(target=slow))
        threads[-1].start()
        if wait_for(lambda: worker.in_flight() > 0, timeout=0.3):
            return threads
    raise AssertionError(f"no slow {method} reached {worker.name}")


def test_killing_a_routed_worker_fails_no_get(managed: Harness) -> None:
    a, b = managed.spawn("a"), managed.spawn("b")
    managed.update(a, b)
    slow: list[tuple[int, str]] = []
    threads = in_flight_on(managed, b, "GET", slow)
    b.proc.kill()  # while it serves a GET, before it has answered anything; still routed
    results: list[tuple[int, str]] = []
    deadline = time.monotonic() + 0.8
    while time.monotonic() < deadline:  # new connections: the dead worker refuses, the balancer moves on
        try:
            results.append(request(managed.front, timeout=10))
        except Exception as exc:  # any failure counts
            results.append((0, repr(exc)))
    for thread in threads:
        thread.join(timeout=15)
    failed = [r for r in results + slow if r[0] != 200]
    assert not failed, failed
    assert len(results) > 5
    assert {body for _, body in results} == {"a"}
    assert {body for _, body in slow} == {"a"}  # what b was serving was retried on a


def test_a_post_in_flight_on_a_killed_worker_is_not_replayed(managed: Harness) -> None:
    a, b = managed.spawn("a"), managed.spawn("b")
    managed.update(a, b)
    answers: list[tuple[int, str]] = []
    threads = in_flight_on(managed, b, "POST", answers)
    on_b = b.in_flight()
    b.proc.kill()
    for thread in threads:
        thread.join(timeout=15)
    failed = [status for status, _ in answers if status != 200]
    assert len(failed) == on_b and all(status in (502, 503) for status in failed), answers
    assert all(body.startswith("a ") for status, body in answers if status == 200)


def test_a_restarted_balancer_routes_the_last_routes(managed: Harness) -> None:
    a = managed.spawn("a")
    managed.update(a)
    managed.balancer.stop()
    assert managed.balancer.routes() == []
    managed.balancer.start()
    assert managed.route_set() == {a.route}
    assert managed.answered_by({"a"}) == {"a"}


@pytest.mark.parametrize("kind", MANAGED)
def test_start_takes_over_from_an_earlier_run_in_the_same_workdir(kind: str, tmp_path: Path) -> None:
    with running(kind, tmp_path) as earlier:
        a = earlier.spawn("a")
        earlier.update(a)
        old = {p.pid for p in earlier.balancer_processes()}
        # A restarted supervisor: a new driver object on the same work directory and port.
        later = make_balancer(kind, tmp_path, port=earlier.front[1])
        try:
            later.start()
            assert later.front == earlier.front
            pid = getattr(later, "pid", None)
            assert pid is not None and pid not in old
            assert wait_for(lambda: all(p.proc.poll() is None for p in [a]))  # the worker is untouched
            later.update([a.route])
            assert request(later.front) == (200, "a")
        finally:
            later.stop()


@pytest.mark.parametrize("kind", MANAGED)
def test_a_front_port_in_use_is_a_clear_error(kind: str, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        balancer = make_balancer(kind, tmp_path, port=taken.getsockname()[1])
        with pytest.raises(PermanentError, match="in use"):
            balancer.start()
        balancer.stop()


@pytest.mark.parametrize(
    "route",
    [
        Route("a b", "127.0.0.1", 8000),
        Route("a;", "127.0.0.1", 8000),
        Route("a", "127.0.0.1;x", 8000),
        Route("a", "127.0.0.1", 0),
        Route("a", "127.0.0.1", 8000, weight=0),
    ],
)
def test_values_that_would_break_a_config_are_refused(managed: Harness, route: Route) -> None:
    a = managed.spawn("a")
    managed.update(a)
    with pytest.raises(PermanentError, match="route"):
        managed.balancer.update([a.route, route])
    assert managed.route_set() == {a.route}


def test_a_killed_balancer_starts_again_and_leaves_nothing_behind(managed: Harness) -> None:
    a = managed.spawn("a")
    managed.update(a)
    before = managed.balancer_processes()
    before[0].kill()  # the main process (nginx: its master; its workers do not notice and keep serving)
    assert wait_for(lambda: getattr(managed.balancer, "pid", None) is None)
    assert managed.balancer.routes() == []
    managed.balancer.start()
    assert not [p for p in before if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert managed.route_set() == {a.route}
    assert managed.answered_by({"a"}) == {"a"}
