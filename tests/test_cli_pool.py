"""`loadpilot pool ...` from a shell: a real background supervisor, found again through the state dir."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
import tomli_w

from tests.act.pool.conftest import pool_config


def _loadpilot(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loadpilot", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    pool = pool_config(initial=2).model_dump(mode="json", exclude_none=True)
    path = tmp_path / "loadpilot.toml"
    path.write_text(tomli_w.dumps({"state_dir": str(tmp_path / "state"), "pools": [pool]}))
    return path


def test_start_status_scale_stop(config_file: Path, tmp_path: Path) -> None:
    cfg = ("--config", str(config_file))
    assert _loadpilot("pool", "status", "web", *cfg, cwd=tmp_path).returncode == 3  # never started
    started = _loadpilot("pool", "start", "web", *cfg, "--json", cwd=tmp_path)
    try:
        assert started.returncode == 0, started.stderr
        assert json.loads(started.stdout)["state"]["desired"] == 2

        again = _loadpilot("pool", "start", "web", *cfg, cwd=tmp_path)
        assert again.returncode == 1 and "already running" in again.stderr

        status = _loadpilot("pool", "status", "web", *cfg, "--json", cwd=tmp_path)
        assert status.returncode == 0
        doc = json.loads(status.stdout)
        assert doc["running"] is True
        workers = doc["state"]["workers"]
        assert [w["state"] for w in workers] == ["ready", "ready"]
        assert all(w["pid"] and w["port"] and w["rss_bytes"] for w in workers)

        table = _loadpilot("pool", "status", "web", *cfg, cwd=tmp_path)
        assert table.returncode == 0 and "web-1" in table.stdout and "ready" in table.stdout

        too_big = _loadpilot("pool", "scale", "web", "9", *cfg, cwd=tmp_path)
        assert too_big.returncode == 2 and "outside" in too_big.stderr and "1..4" in too_big.stderr

        scaled = _loadpilot("pool", "scale", "web", "3", "--wait", *cfg, cwd=tmp_path)
        assert scaled.returncode == 0, scaled.stderr
        restarted = _loadpilot("pool", "restart", "web", *cfg, "--json", cwd=tmp_path)
        assert restarted.returncode == 0 and json.loads(restarted.stdout)["generation"] == 1
        after = json.loads(_loadpilot("pool", "status", "web", *cfg, "--json", cwd=tmp_path).stdout)
        pids = [w["pid"] for w in after["state"]["workers"]]
        assert len(pids) == 3 and not set(pids) & {w["pid"] for w in workers}
        supervisor = after["state"]["supervisor_pid"]
    finally:
        stopped = _loadpilot("pool", "stop", "web", *cfg, cwd=tmp_path)
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    assert _loadpilot("pool", "status", "web", *cfg, cwd=tmp_path).returncode == 3
    for pid in [*pids, supervisor]:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"


def test_unknown_pool_names_the_known_ones(config_file: Path, tmp_path: Path) -> None:
    result = _loadpilot("pool", "status", "nope", "--config", str(config_file), cwd=tmp_path)
    assert result.returncode == 2 and "no pool named 'nope' (known: web)" in result.stderr


def test_a_pool_that_cannot_start_reports_failure(tmp_path: Path) -> None:
    pool = pool_config(initial=1, extra_args=("--exit-at-once",), restart={"max_crashes": 2})
    path = tmp_path / "loadpilot.toml"
    path.write_text(
        tomli_w.dumps(
            {"state_dir": str(tmp_path / "state"), "pools": [pool.model_dump(mode="json", exclude_none=True)]}
        )
    )
    try:
        result = _loadpilot("pool", "start", "web", "--config", str(path), cwd=tmp_path)
        assert result.returncode == 1 and "1 worker(s) failed" in result.stderr
        status = _loadpilot("pool", "status", "web", "--config", str(path), cwd=tmp_path)
        assert status.returncode == 0  # the supervisor runs; the slot is failed, and says why
        why = next(line for line in status.stdout.splitlines() if line.startswith("web-0 failed: "))
        assert "2 crashes" in why and "exited with code 3" in why and "exiting at once as asked" in why
    finally:
        _loadpilot("pool", "stop", "web", "--config", str(path), cwd=tmp_path)
