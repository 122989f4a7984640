"""The balancer contract, run against every driver: shared socket, nginx and HAProxy.

Removing a worker is always "update() without it, then retire it" as the supervisor does; for the shared socket
retiring means stopping the worker (the kernel cannot be told to skip it), for a proxy the worker keeps running
and must simply get nothing.
"""

from __future__ import annotations

import socket
import threading

import psutil
import pytest

from loadpilot.act.lb.base import Balancer
from tests.act.lb.conftest import Harness, accepts, request, wait_for

EMPTY_ANSWER = {"nginx": 502, "haproxy": 503}  # the shared socket has nobody to answer: the client times out


def test_every_driver_is_a_balancer(lb: Harness) -> None:
    assert isinstance(lb.balancer, Balancer)
    assert lb.balancer.kind == lb.kind
    host, port = lb.front
    assert host == "127.0.0.1" and port > 0  # port 0 was asked for: the real one is reported


def test_requests_reach_exactly_the_routed_workers(lb: Harness) -> None:
    a, b, c = lb.spawn("a"), lb.spawn("b"), lb.spawn("c")
    lb.update(a, b)
    lb.retire(c)
    assert lb.answered_by({"a", "b"}) == {"a", "b"}
    assert lb.route_set() == {a.route, b.route}


def test_a_removed_worker_gets_no_new_requests(lb: Harness) -> None:
    a, b = lb.spawn("a"), lb.spawn("b")
    lb.update(a, b)
    assert lb.answered_by({"a", "b"}) == {"a", "b"}
    lb.update(a)
    lb.retire(b)
    assert lb.answered_by({"a"}) == {"a"}
    assert wait_for(lambda: lb.route_set() == {a.route})


def test_a_request_in_flight_to_a_removed_worker_completes(lb: Harness) -> None:
    a, b = lb.spawn("a"), lb.spawn("b")
    lb.update(a, b)
    answers: list[tuple[int, str]] = []
    threads: list[threading.Thread] = []

    def slow() -> None:
        answers.append(request(lb.front, "/slow?ms=1200", timeout=10))

    # Send slow requests until one is being served by b (the kernel or the proxy picks who gets each).
    for _ in range(40):
        threads.append(threading.Thread(target=slow))
        threads[-1].start()
        if wait_for(lambda: b.in_flight() > 0, timeout=0.3):
            break
    assert b.in_flight() > 0, "no slow request reached b"
    lb.update(a)
    lb.retire(b)
    for thread in threads:
        thread.join(timeout=15)
    assert len(answers) == len(threads)
    assert all(status == 200 for status, _ in answers), answers
    assert "b" in {body for _, body in answers}
    assert lb.answered_by({"a"}) == {"a"}


def test_no_routes_answers_no_request_and_routes_again_after(lb: Harness) -> None:
    a = lb.spawn("a")
    lb.update(a)
    assert lb.answered_by({"a"}) == {"a"}
    lb.update()
    lb.retire(a)
    assert lb.balancer.routes() == []
    if lb.kind in EMPTY_ANSWER:
        assert request(lb.front, timeout=2)[0] == EMPTY_ANSWER[lb.kind]  # at once, not after a timeout
    else:
        with pytest.raises(socket.timeout):  # accepted by the kernel, queued for a worker that never comes
            request(lb.front, timeout=0.5)
    b = lb.spawn("b")
    lb.update(b)
    assert lb.answered_by({"b"}) == {"b"}
    assert lb.route_set() == {b.route}


def test_the_same_routes_again_change_nothing(lb: Harness) -> None:
    a, b = lb.spawn("a"), lb.spawn("b")
    lb.update(a, b)
    processes = {p.pid for p in lb.balancer_processes()}
    lb.update(b, a)
    # No reload means no new balancer processes; workers of an earlier reload may still be leaving.
    assert {p.pid for p in lb.balancer_processes()} <= processes
    assert lb.route_set() == {a.route, b.route}
    assert lb.answered_by({"a", "b"}) == {"a", "b"}


def test_start_twice_is_idempotent(lb: Harness) -> None:
    a = lb.spawn("a")
    lb.update(a)
    front = lb.front
    processes = {p.pid for p in lb.balancer_processes()}
    lb.balancer.start()
    assert lb.front == front
    assert {p.pid for p in lb.balancer_processes()} == processes
    assert lb.route_set() == {a.route}
    assert lb.answered_by({"a"}) == {"a"}


def test_stop_leaves_nothing_listening_and_no_process(lb: Harness) -> None:
    a = lb.spawn("a")
    lb.update(a)
    assert lb.answered_by({"a"}) == {"a"}
    lb.update()
    lb.retire(a)  # the supervisor stops the workers before the balancer
    processes = lb.balancer_processes()
    lb.balancer.stop()
    lb.balancer.stop()
    assert not accepts(lb.front)
    assert not [p for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert lb.balancer.routes() == []
