"""HAProxy-only behaviour: slots through the runtime API, drain then maint, a clear error when slots run out."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from loadpilot.act.lb.base import Route
from loadpilot.act.lb.haproxy import HAProxyBalancer
from loadpilot.errors import PermanentError
from tests.act.lb.conftest import Harness, running

DRAIN, MAINT = 0x08, 0x01


@pytest.fixture
def lb(tmp_path: Path) -> Iterator[Harness]:
    with running("haproxy", tmp_path) as harness:  # 4 slots
        yield harness


def slots(tmp_path: Path) -> dict[str, tuple[int, int]]:
    """Each slot's (port, admin state) straight from HAProxy's runtime API."""
    with socket.socket(socket.AF_UNIX) as conn:
        conn.connect(str(tmp_path / "haproxy" / "admin.sock"))
        conn.sendall(b"show servers state pool\n")
        text = b"".join(iter(lambda: conn.recv(65536), b"")).decode()
    lines = [line.split() for line in text.splitlines() if line.strip()]
    names = lines[1][1:]
    rows = [dict(zip(names, line, strict=False)) for line in lines[2:]]
    return {row["srv_name"]: (int(row["srv_port"]), int(row["srv_admin_state"])) for row in rows}


def slot_of(tmp_path: Path, port: int) -> str:
    return next(name for name, (p, _) in slots(tmp_path).items() if p == port)


def test_a_worker_keeps_its_slot_and_a_removed_one_drains_then_goes_to_maint(lb: Harness, tmp_path: Path) -> None:
    a, b, c = lb.spawn("a"), lb.spawn("b"), lb.spawn("c")
    lb.update(a, b)
    slot_a, slot_b = slot_of(tmp_path, a.port), slot_of(tmp_path, b.port)
    lb.update(a)
    assert slots(tmp_path)[slot_b][1] & DRAIN  # no new requests; those in flight finish
    assert slot_of(tmp_path, a.port) == slot_a
    lb.update(a)
    assert slots(tmp_path)[slot_b][1] & MAINT  # at the next update a drained slot goes to maint: free again
    lb.update(a, c)
    assert slot_of(tmp_path, c.port) == slot_b
    assert slot_of(tmp_path, a.port) == slot_a
    assert lb.route_set() == {a.route, c.route}
    assert lb.answered_by({"a", "c"}) == {"a", "c"}


def test_routes_beyond_the_slots_are_a_clear_error_and_change_nothing(lb: Harness) -> None:
    a = lb.spawn("a")
    lb.update(a)
    too_many = [a.route, *(Route(f"w{i}", "127.0.0.1", 9000 + i) for i in range(4))]
    with pytest.raises(PermanentError, match=r"4 server slots .* but 5 workers"):
        lb.balancer.update(too_many)
    assert lb.route_set() == {a.route}


def test_a_full_pool_can_be_replaced_in_one_update(lb: Harness) -> None:
    old = [lb.spawn(f"old{i}") for i in range(4)]
    lb.update(*old)
    new = [lb.spawn(f"new{i}") for i in range(4)]
    lb.update(*new)  # every slot is taken: the leaving workers' slots are reused at once
    assert lb.route_set() == {w.route for w in new}
    assert lb.answered_by({w.name for w in new}) == {w.name for w in new}


def test_a_host_name_is_refused_the_runtime_api_takes_addresses(lb: Harness) -> None:
    with pytest.raises(PermanentError, match="IP address"):
        lb.balancer.update([Route("a", "localhost", 8000)])


def test_a_weight_reaches_haproxy(lb: Harness) -> None:
    a = lb.spawn("a")
    lb.balancer.update([a.route._replace(weight=5)])
    assert lb.balancer.routes() == [a.route._replace(weight=5)]


@pytest.mark.parametrize(("kwargs", "field"), [({"slots": 0}, "slots"), ({"slots": 2, "method": "first"}, "method")])
def test_bad_settings_name_the_field(tmp_path: Path, kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(PermanentError, match=field):
        HAProxyBalancer("127.0.0.1", 0, tmp_path, **kwargs)  # type: ignore[arg-type]


def test_a_deep_work_directory_puts_the_admin_socket_somewhere_short(tmp_path: Path) -> None:
    """A unix socket path has at most 107 bytes; deep state dirs are common, so the socket moves, the rest stays."""
    balancer = HAProxyBalancer("127.0.0.1", 0, tmp_path / ("d" * 120), slots=2)
    try:
        balancer.start()
        assert balancer.routes() == []  # the runtime API answers through the short socket
        assert (tmp_path / ("d" * 120) / "haproxy.cfg").exists()
    finally:
        balancer.stop()
