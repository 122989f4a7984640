"""`loadpilot top`: the frame built from API answers (pure), and `top --once` against a real server fed with signed
batches through its ingest API."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console
from typer.testing import CliRunner

from loadpilot.cli import app
from loadpilot.cli_top import TopData, build_top, hosts_that_fit, render_top
from loadpilot.model import Batch, Resource, Sample
from loadpilot.transport.signing import signed_headers
from loadpilot.transport.wire import encode_batch
from tests.helpers import KEY, free_port
from tests.test_cli_events import Served, serving, write_client_config

runner = CliRunner()


@pytest.fixture(autouse=True)
def _plain_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No token from the environment; a wide console so table cells are not cut."""
    monkeypatch.delenv("LOADPILOT_READ_TOKEN", raising=False)
    monkeypatch.setenv("COLUMNS", "200")


def post_batch(url: str, batch: Batch) -> None:
    """Send a batch signed under the server's key, as an agent would."""
    body = encode_batch(batch)
    response = httpx.post(
        f"{url}/api/v1/samples", content=body, headers=signed_headers(KEY, batch.batch_id, body, time.time())
    )
    assert response.status_code == 200, response.text


def cluster_batch(now: float) -> Batch:
    """Two hosts, and a pool `logsift` of two workers: the numbers the tests look for."""
    resources = (
        Resource("web-1", "host", {"host": "web-1", "cores": "8"}),
        Resource("db-1", "host", {"host": "db-1", "cores": "4"}),
        Resource("pool/logsift", "pool", {"pool": "logsift", "host": "web-1", "mode": "shared"}),
        Resource("pool/logsift/w1", "pool_worker", {"pool": "logsift", "host": "web-1", "worker": "w1"}),
        Resource("pool/logsift/w2", "pool_worker", {"pool": "logsift", "host": "web-1", "worker": "w2"}),
    )
    values = [
        ("web-1", "cpu.util", 0.42),
        ("web-1", "mem.util", 0.63),
        ("db-1", "cpu.util", 0.87),
        ("db-1", "mem.util", 0.25),
        ("pool/logsift", "pool.desired", 3),
        ("pool/logsift", "pool.size", 2),
        ("pool/logsift", "pool.ready", 2),
        ("pool/logsift/w1", "cpu.util", 0.25),
        ("pool/logsift/w2", "cpu.util", 0.5),
        ("pool/logsift/w1", "http.requests_rate", 10.0),
        ("pool/logsift/w2", "http.requests_rate", 12.5),
        ("pool/logsift/w1", "http.latency_p95", 0.08),
        ("pool/logsift/w2", "http.latency_p95", 0.123),
    ]
    samples = tuple(Sample(rid, metric, float(v), now, "", "test") for rid, metric, v in values)
    return Batch("top-1", "agent-test", 5.0, samples, resources)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Served]:
    """A real server holding the cluster batch and one event."""
    with serving(tmp_path) as served:
        post_batch(served.url, cluster_batch(time.time()))
        served.add("scale", "pool/logsift", "rps 22.5 above 20 per worker: <b>[red]scale[/red]</b>", from_=2, to=3)
        yield served


def test_once_shows_hosts_pools_and_events_with_the_numbers_written(cluster: Served) -> None:
    result = runner.invoke(app, ["top", "--once", "--config", str(cluster.config_file)])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "web-1" in out and " 42%" in out and " 63%" in out
    assert out.index("db-1") < out.index("web-1")  # busiest host first
    row = next(line for line in out.splitlines() if line.startswith("logsift"))
    assert row.split() == ["logsift", "3", "2", "2", "0.75", "22.5", "123", "ms"]
    assert "rps 22.5 above 20 per worker: <b>[red]scale[/red]</b>" in out


def test_once_json_is_the_same_data(cluster: Served) -> None:
    result = runner.invoke(app, ["top", "--once", "--json", "--config", str(cluster.config_file)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [h["id"] for h in data["hosts"]] == ["db-1", "web-1"]
    assert data["hosts"][1] == {"id": "web-1", "cpu": 0.42, "mem": 0.63, "cores": "8"}
    [pool] = data["pools"]
    assert pool["name"] == "logsift" and (pool["desired"], pool["size"], pool["ready"], pool["workers"]) == (3, 2, 2, 2)
    assert pool["cpu"] == pytest.approx(0.75) and pool["rps"] == pytest.approx(22.5)
    assert pool["p95_s"] == pytest.approx(0.123)
    assert [e["kind"] for e in data["events"]] == ["scale"]
    assert data["server"] == cluster.url


def test_json_needs_once_and_an_unreachable_server_exits_1(tmp_path: Path) -> None:
    config = write_client_config(tmp_path / "loadpilot.toml", tmp_path / "state", f"http://127.0.0.1:{free_port()}")
    assert runner.invoke(app, ["top", "--json", "--config", str(config)]).exit_code == 2
    result = runner.invoke(app, ["top", "--once", "--config", str(config)])
    assert result.exit_code == 1 and "cannot reach the loadpilot server" in result.stderr


def test_top_sends_the_read_token(tmp_path: Path) -> None:
    with serving(tmp_path, read_auth="token", read_token="s3cret") as served:
        post_batch(served.url, cluster_batch(time.time()))
        ok = runner.invoke(app, ["top", "--once", "--json", "--config", str(served.config_file)])
        assert ok.exit_code == 0, ok.output
        assert len(json.loads(ok.stdout)["hosts"]) == 2
        tokenless = write_client_config(tmp_path / "tokenless.toml", tmp_path / "state", served.url)
        refused = runner.invoke(app, ["top", "--once", "--config", str(tokenless)])
        assert refused.exit_code == 1 and "refused the read (401)" in refused.stderr


def _latest(rid: str, metric: str, value: float, at: float) -> dict[str, Any]:
    return {"resource_id": rid, "metric": metric, "value": value, "timestamp": at, "unit": "", "source": "t"}


def test_build_top_sorts_by_cpu_and_leaves_out_what_went_quiet() -> None:
    now = 1_700_000_000.0
    resources = [
        {"id": "h-idle", "kind": "host", "labels": {}},
        {"id": "h-busy", "kind": "host", "labels": {}},
        {"id": "h-gone", "kind": "host", "labels": {}},
        {"id": "h-new", "kind": "host", "labels": {}},
        {"id": "pool/old", "kind": "pool", "labels": {"pool": "old"}},
        {"id": "pool/web", "kind": "pool", "labels": {"pool": "web"}},
        {"id": "pool/web/w1", "kind": "pool_worker", "labels": {"pool": "web"}},
    ]
    latest = [
        _latest("h-idle", "cpu.util", 0.05, now - 1),
        _latest("h-busy", "cpu.util", 0.95, now - 1),
        _latest("h-gone", "cpu.util", 0.99, now - 3600),
        _latest("h-new", "mem.util", 0.5, now),
        _latest("pool/old", "pool.size", 4, now - 3600),
        _latest("pool/web", "pool.size", 1, now),
        _latest("pool/web/w1", "cpu.util", 0.3, now),
    ]
    events = [{"id": i, "time": now, "kind": "k", "subject": "s", "reason": str(i), "result": "ok"} for i in (3, 1, 2)]
    data = build_top(resources, latest, events, now, 120.0, shown_events=2)
    assert [h.id for h in data.hosts] == ["h-busy", "h-idle", "h-new"]
    assert [(p.name, p.size, p.desired, p.cpu, p.rps, p.p95_s) for p in data.pools] == [
        ("web", 1, None, 0.3, None, None)
    ]
    assert [e["id"] for e in data.events] == [2, 3]


def test_render_top_keeps_to_the_hosts_that_fit() -> None:
    ids = [f"h{i:03d}" for i in range(200)]
    hosts: list[dict[str, Any]] = [{"id": h, "kind": "host", "labels": {}} for h in ids]
    latest = [_latest(h, "cpu.util", i / 200, 100.0) for i, h in enumerate(ids)]
    data = build_top(hosts, latest, [], 100.0, 120.0)
    assert isinstance(data, TopData) and len(data.hosts) == 200
    fit = hosts_that_fit(data, 40)
    console = Console(width=120, record=True, file=io.StringIO())
    console.print(render_top(data, fit))
    text = console.export_text()
    assert "h199" in text and "h000" not in text
    assert f"… and {200 - fit} more hosts" in text
    assert len(text.splitlines()) <= 40
