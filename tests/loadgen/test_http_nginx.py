"""Against a real nginx serving a static file: the generator keeps 2,000 requests/s, and reconnects cleanly."""

from __future__ import annotations

from pathlib import Path

from loadpilot.cli_loadgen_http import fast_loop_factory
from loadpilot.loadgen.http import HttpLoadSpec, run_load
from loadpilot.loadgen.schedule import constant
from tests.loadgen.http_servers import running_nginx


def test_two_thousand_requests_a_second_against_nginx(tmp_path: Path) -> None:
    with running_nginx(tmp_path) as url:
        report = run_load(
            HttpLoadSpec(url, concurrency=32, timeout=5), constant(2000, 2), loop_factory=fast_loop_factory()
        )
        busy = run_load(HttpLoadSpec(url.replace("index.html", "503"), concurrency=8), constant(200, 0.5))
    assert report.scheduled == report.sent == report.succeeded == 4000, report.failed
    assert report.achieved_rate > 1900
    assert report.latency.p50 < 0.05
    assert busy.failed == {"503": 100}


def test_connections_nginx_closes_after_n_requests_are_replaced_without_failures(tmp_path: Path) -> None:
    with running_nginx(tmp_path, keepalive_requests=20) as url:
        report = run_load(HttpLoadSpec(url, concurrency=4), constant(400, 1))
    assert report.succeeded == 400 and not report.failed
    assert report.connections >= 400 // 20
