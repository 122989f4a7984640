"""Shared-socket-only behaviour: the port, the descriptor workers inherit, and routes read from /proc."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from loadpilot.act.lb.base import Route
from loadpilot.act.lb.shared import SharedSocketBalancer
from loadpilot.errors import PermanentError
from tests.act.lb.conftest import Harness, accepts, free_port, running, wait_for


@pytest.fixture
def lb(tmp_path: Path) -> Iterator[Harness]:
    with running("shared", tmp_path) as harness:
        yield harness


def test_a_fixed_port_is_used_and_the_descriptor_is_a_listening_socket() -> None:
    port = free_port()
    balancer = SharedSocketBalancer("127.0.0.1", port, backlog=16, inheritable=True)
    with pytest.raises(PermanentError, match="start"):
        balancer.fileno()
    balancer.start()
    try:
        assert balancer.front == ("127.0.0.1", port)
        fd = balancer.fileno()
        assert os.get_inheritable(fd)
        assert not os.get_blocking(fd)  # a worker that loses the race for a connection must not block in accept()
        with socket.socket(fileno=os.dup(fd)) as view:
            assert view.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
        assert accepts(balancer.front)
    finally:
        balancer.stop()
    assert not accepts(("127.0.0.1", port))


def test_a_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(PermanentError, match="another port"):
            SharedSocketBalancer("127.0.0.1", taken.getsockname()[1]).start()


def test_routes_are_the_routed_processes_that_hold_the_socket(lb: Harness) -> None:
    a, b = lb.spawn("a"), lb.spawn("b")
    outsider = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])  # alive, no socket
    try:
        no_pid = Route("c", "127.0.0.1", 1)
        lb.balancer.update([a.route, b.route, Route("d", "127.0.0.1", 2, pid=outsider.pid), no_pid])
        assert lb.route_set() == {a.route, b.route}
        b.proc.kill()
        assert wait_for(lambda: lb.route_set() == {a.route})
        assert lb.answered_by({"a"}) == {"a"}
    finally:
        outsider.kill()
        outsider.wait()
