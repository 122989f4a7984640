"""`loadpilot status [--json]` as an operator runs it (a real child process): the leader and its epoch, members
with their last heartbeat, and a clear answer when the backend cannot be reached."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import tomli_w

from loadpilot.coord import CONTROLLERS, CoordSettings, leadership
from loadpilot.coord.backend import connect
from loadpilot.coord.membership import Membership
from loadpilot.coord.records import open_records
from tests.helpers import free_port

ROOT = Path(__file__).parent.parent.parent
LEASE_S = 60.0


def _config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "loadpilot.toml"
    coordination = {"enabled": True, "url": url, "namespace": "st", "member_timeout_s": 3}
    path.write_text(tomli_w.dumps({"state_dir": str(tmp_path / "state"), "coordination": coordination}))
    return path


def _status(config: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "loadpilot", "status", "--config", str(config), *extra]
    wide = {**os.environ, "COLUMNS": "200"}  # rich wraps at 80 columns when not on a terminal
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False, cwd=ROOT, env=wide)


def _json(config: Path) -> dict[str, Any]:
    shown = _status(config, "--json")
    assert shown.returncode == 0, shown.stderr
    data: dict[str, Any] = json.loads(shown.stdout)
    return data


def test_status_shows_the_leader_its_epoch_and_the_controllers(tmp_path: Path) -> None:
    url = f"file://{tmp_path / 'coord'}"
    config = _config(tmp_path, url)
    # A lease long enough to outlast the status commands (each one a Python start-up) without renewing.
    settings = CoordSettings(url=url, namespace="st", member_timeout_s=LEASE_S, tick_s=1)
    coordinator = connect(settings, "ctl-1")
    records = open_records(settings, coordinator)
    members = Membership(coordinator, settings.group(CONTROLLERS), "ctl-1", {"kind": "controller"}, records)
    try:
        members.join()
        members.tick()
        leader = leadership(settings, coordinator, records, "ctl-1")
        assert leader.tick() and leader.epoch == 1

        data = _json(config)
        assert data["leader"]["member"] == "ctl-1" and data["leader"]["epoch"] == 1
        assert 0 < data["leader"]["lease_left_s"] <= LEASE_S
        (ctl,) = (m for m in data["members"] if m["role"] == CONTROLLERS)
        assert ctl["id"] == "ctl-1" and ctl["alive"] and ctl["kind"] == "controller"
        assert 0 <= ctl["last_heartbeat_age_s"] < 30
        shown = _status(config)
        assert shown.returncode == 0, shown.stderr
        assert "leader: ctl-1, epoch 1 (since" in shown.stdout

        leader.resign()  # the term ends; its epoch stays the last one handed out
        data = _json(config)
        assert data["leader"] is None and data["last_epoch"] == 1
        assert "leader: none (last epoch 1)" in _status(config).stdout
        assert leader.tick() and leader.epoch == 2  # a new term, a larger epoch
        assert _json(config)["leader"]["epoch"] == 2
    finally:
        members.leave()
        coordinator.stop()
        records.close()
    assert [m for m in _json(config)["members"] if m["role"] == CONTROLLERS] == []  # it left


def test_status_of_an_unreachable_backend_exits_1_with_the_reason(tmp_path: Path) -> None:
    config = _config(tmp_path, f"redis://127.0.0.1:{free_port()}")
    shown = _status(config, "--json")
    assert shown.returncode == 1
    answer = json.loads(shown.stdout)
    assert answer["ok"] is False and "unreachable" in answer["error"]
    plain = _status(config)
    assert plain.returncode == 1 and "unreachable" in plain.stderr
