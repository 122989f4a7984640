"""The shared /metrics listener, the `metrics_listen` and query options, and the promtool check itself."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter
from typer.testing import CliRunner

from loadpilot.cli import app
from loadpilot.config import parse_config, parse_listen
from loadpilot.errors import ConfigError, PermanentError
from loadpilot.metrics_http import MetricsListener, serve_metrics
from tests.observability.prom import promtool_check, scrape, value_of

runner = CliRunner()
POOL = {"name": "web", "command": "app --fd {fd}", "health": {"path": ""}}


def test_a_listener_on_port_0_serves_its_own_registry_then_releases_the_port() -> None:
    registry = CollectorRegistry()
    Counter("loadpilot_test_things", "Things counted by the test", registry=registry).inc(3)
    listener = serve_metrics(registry, "127.0.0.1:0", "test")
    assert listener is not None
    try:
        url = listener.url
        assert listener.port > 0 and url == f"http://127.0.0.1:{listener.port}/metrics"
        text = scrape(url)
        assert value_of(text, "loadpilot_test_things_total") == 3.0
        assert "python_gc_objects_collected_total" not in text  # its own registry, not the global one
    finally:
        listener.stop()
    listener.stop()  # twice is harmless
    with pytest.raises(httpx.ConnectError):
        httpx.get(url, timeout=2)


def test_no_listener_without_an_address_and_a_busy_port_is_named() -> None:
    assert serve_metrics(CollectorRegistry(), "", "test") is None
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(PermanentError, match=f"agent x: cannot serve /metrics on 127.0.0.1:{port}"):
            MetricsListener(CollectorRegistry(), f"127.0.0.1:{port}", "agent x").start()


@pytest.mark.parametrize(
    ("value", "expected"),
    [("127.0.0.1:9102", ("127.0.0.1", 9102)), ("9102", ("127.0.0.1", 9102)), (":0", ("127.0.0.1", 0)),
     ("[::1]:9102", ("::1", 9102)), ("0.0.0.0:80", ("0.0.0.0", 80))],
)  # fmt: skip
def test_listen_addresses_default_to_loopback(value: str, expected: tuple[str, int]) -> None:
    assert parse_listen(value) == expected


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"agent": {"metrics_listen": "localhost:http"}}, "agent.metrics_listen: expected host:port"),
        ({"agent": {"metrics_listen": "127.0.0.1:70000"}}, "agent.metrics_listen: expected host:port"),
        ({"control": {"metrics_listen": "::1:9"}}, "control.metrics_listen: write an IPv6 address in brackets"),
        ({"pools": [{**POOL, "metrics_listen": "x"}]}, "pools[0].metrics_listen: expected host:port"),
        ({"control": {"prometheus_url": "127.0.0.1:9090"}}, "control.prometheus_url: must start with http://"),
        (
            {"pools": [{**POOL, "autoscale": {"metric": "query"}}]},
            'pools[0].autoscale.query: metric = "query" needs a PromQL query',
        ),
        (
            {"pools": [{**POOL, "autoscale": {"query": "up"}}]},
            'pools[0].autoscale.query: only read when metric = "query"',
        ),
        (
            {"pools": [{**POOL, "autoscale": {"checks": [{"metric": "query", "query": "up"}]}}]},
            "control.prometheus_url: pools[0].autoscale.checks[0] reads a Prometheus query",
        ),
        (
            {"pools": [{**POOL, "autoscale": {"policy": "kpa", "metric": "query", "query": "up"}}]},
            "pools[0].autoscale.metric: kpa scales on in_flight",
        ),
    ],
)
def test_metrics_options_are_checked_and_name_their_field(data: dict[str, object], expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    assert any(p.startswith(expected) for p in info.value.problems), info.value.problems


def test_a_query_check_with_prometheus_url_is_valid() -> None:
    pool = {**POOL, "autoscale": {"metric": "query", "query": 'avg(load{pool="{pool}"})'}}
    config = parse_config({"control": {"prometheus_url": "http://127.0.0.1:9090/"}, "pools": [pool]})
    assert config.control.prometheus_url == "http://127.0.0.1:9090"
    assert config.pools[0].autoscale.query == 'avg(load{pool="{pool}"})'


def test_a_bad_listen_address_makes_the_agent_exit_2_naming_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[agent]\nmetrics_listen = "127.0.0.1:port"\n')
    result = runner.invoke(app, ["agent", "--config", str(bad)])
    assert result.exit_code == 2
    assert "agent.metrics_listen: expected host:port" in result.stderr


def test_an_agent_whose_metrics_port_is_taken_exits_saying_so(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        path = tmp_path / "loadpilot.toml"
        path.write_text(
            f'state_dir = "{tmp_path / "state"}"\n[auth]\nsigning_key = "k"\n'
            f'[agent]\nid = "a"\nmetrics_listen = "127.0.0.1:{port}"\n'
        )
        done = subprocess.run(
            [sys.executable, "-m", "loadpilot", "agent", "--config", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 1, done.stderr
    assert f"agent a: cannot serve /metrics on 127.0.0.1:{port}" in done.stderr


def test_promtool_accepts_good_text_and_refuses_bad_text() -> None:
    """The check the other tests rely on can fail: a counter without _total and without HELP is refused."""
    assert (
        promtool_check("# HELP loadpilot_x_total X.\n# TYPE loadpilot_x_total counter\nloadpilot_x_total 1\n")[0] == 0
    )
    code, output = promtool_check("# TYPE loadpilot_x counter\nloadpilot_x 1\n")
    assert code != 0 and "_total" in output
