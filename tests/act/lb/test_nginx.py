"""nginx-only behaviour: a rejected config keeps the last good one, quick successive reloads, the rendered file."""

from __future__ import annotations

import http.client
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from loadpilot.act.lb.base import Route
from loadpilot.act.lb.nginx import NginxBalancer, parse_routes, render_config
from loadpilot.errors import PermanentError
from tests.act.lb.conftest import Harness, running

SETTINGS: dict[str, object] = {
    "max_fails": 2,
    "fail_timeout_s": 7,
    "tries": 4,
    "connect_ms": 1000,
    "read_ms": 60000,
    "drain_ms": 30000,
    "method": "least_conn",
    "keepalive": 32,
    "worker_processes": "auto",
    "retry_non_idempotent": False,
}


@pytest.fixture
def lb(tmp_path: Path) -> Iterator[Harness]:
    with running("nginx", tmp_path) as harness:
        yield harness


def test_a_config_nginx_rejects_keeps_the_last_good_one(lb: Harness, tmp_path: Path) -> None:
    a = lb.spawn("a")
    lb.update(a)
    live = tmp_path / "nginx" / "nginx.conf"
    good = live.read_text()
    # A host name passes loadpilot's checks, but nginx resolves it when it loads the config: -t fails.
    with pytest.raises(PermanentError, match="host not found") as caught:
        lb.balancer.update([a.route, Route("b", "no-such-host.invalid", 8000)])
    assert "keeps the previous one" in str(caught.value)
    assert live.read_text() == good
    assert lb.route_set() == {a.route}
    assert lb.answered_by({"a"}) == {"a"}
    b = lb.spawn("b")
    lb.update(a, b)  # and the next good update goes through
    assert lb.answered_by({"a", "b"}) == {"a", "b"}


def test_updates_in_quick_succession_all_take_effect(lb: Harness) -> None:
    a, b, c = lb.spawn("a"), lb.spawn("b"), lb.spawn("c")
    took = []
    for workers in [(a,), (a, b), (c,), (b, c), (a,)]:
        started = time.monotonic()
        lb.update(*workers)
        took.append(time.monotonic() - started)
        assert lb.answered_by({w.name for w in workers}) == {w.name for w in workers}
    assert max(took) < 1.0, took  # a reload is ~105 ms: nginx pauses 100 ms before retiring old workers


def test_the_rendered_config_reads_back_as_the_same_routes(tmp_path: Path) -> None:
    routes = [
        Route("w-2", "::1", 8002, weight=3, pid=42),
        Route("w-1", "127.0.0.1", 8001),
        Route("w-3", "worker3.local", 8003, weight=2),
    ]
    text = render_config(tmp_path, "127.0.0.1:8080", routes, SETTINGS)
    assert sorted(parse_routes(text)) == sorted(routes)
    assert "server [::1]:8002 weight=3 max_fails=2 fail_timeout=7s;" in text
    assert "proxy_next_upstream error timeout http_502 http_503;" in text
    assert "proxy_next_upstream_tries 4;" in text
    assert f"pid {tmp_path / 'nginx.pid'};" in text
    assert "non_idempotent" not in text
    retrying = render_config(tmp_path, "127.0.0.1:8080", routes, {**SETTINGS, "retry_non_idempotent": True})
    assert "proxy_next_upstream error timeout http_502 http_503 non_idempotent;" in retrying


def test_no_routes_render_a_down_placeholder(tmp_path: Path) -> None:
    text = render_config(tmp_path, "127.0.0.1:8080", [], SETTINGS)
    assert parse_routes(text) == []
    assert "down;" in text


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"method": "random"}, "method"),
        ({"worker_processes": "many"}, "worker_processes"),
        ({"retries": -1}, "retries"),
        ({"connect_timeout_s": 0}, "connect_timeout_s"),
        ({"fail_timeout_s": 0}, "fail_timeout_s"),
    ],
)
def test_bad_settings_name_the_field(tmp_path: Path, kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(PermanentError, match=field):
        NginxBalancer("127.0.0.1", 0, tmp_path, **kwargs)  # type: ignore[arg-type]


def test_a_missing_binary_says_what_to_install(tmp_path: Path) -> None:
    balancer = NginxBalancer("127.0.0.1", 0, tmp_path, binary="no-such-nginx")
    with pytest.raises(PermanentError, match="apt-get install nginx"):
        balancer.start()


def test_a_body_larger_than_nginx_buffers_reaches_the_worker(lb: Harness) -> None:
    # Bigger than client_body_buffer_size: nginx's workers spool it to the temp path inside the work directory.
    a = lb.spawn("a")
    lb.update(a)
    conn = http.client.HTTPConnection(*lb.front, timeout=10)
    try:
        conn.request("POST", "/echo", body=b"x" * 3_000_000)
        response = conn.getresponse()
        assert (response.status, response.read()) == (200, b"a 3000000\n")
    finally:
        conn.close()


def test_a_new_id_or_pid_on_the_same_servers_needs_no_reload(lb: Harness, tmp_path: Path) -> None:
    a = lb.spawn("a")
    lb.update(a)
    assert lb.balancer.pid is not None
    workers_before = {p.pid for p in psutil.Process(lb.balancer.pid).children()}
    renamed = Route("a.2", a.route.host, a.route.port, pid=a.route.pid + 1)
    lb.balancer.update([renamed])
    assert lb.balancer.routes() == [renamed]  # the file says who serves now
    assert {p.pid for p in psutil.Process(lb.balancer.pid).children()} == workers_before  # but nginx was not reloaded
    assert lb.answered_by({"a"}) == {"a"}


def test_a_crashed_worker_replaced_on_its_port_is_routed_to_at_once(lb: Harness) -> None:
    a, b = lb.spawn("a"), lb.spawn("b")
    lb.update(a, b)
    a.proc.kill()
    a.proc.wait()
    assert lb.answered_by({"b"}, at_least=20) == {"b"}  # a's refusals were retried on b
    lb.spawn("a", port=a.port)  # the supervisor's replacement: same port, so the upstream is unchanged
    # With max_fails on (nginx's default of 1), the refusals would have benched a's port for fail_timeout (10 s).
    assert lb.answered_by({"a", "b"}, at_most=20) == {"a", "b"}


def test_the_front_accepts_only_once_a_request_arrived(tmp_path: Path) -> None:
    text = render_config(tmp_path, "127.0.0.1:8080", [], SETTINGS)
    assert "listen 127.0.0.1:8080 deferred;" in text  # a reload never closes a just-accepted, idle connection
