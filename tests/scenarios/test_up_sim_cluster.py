"""`loadpilot up --cluster sim:<trace> --speed 600`: the server, an agent and a controller as real processes, the
controller migrating VMs of the simulated cluster in accelerated time, every move an event in the store; Ctrl-C
(SIGINT) stops everything."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import tomli_w

from loadpilot.model import Event
from loadpilot.store import open_store
from tests.control.test_migrate import write_trace
from tests.helpers import Launcher, free_port, wait_for

pytestmark = pytest.mark.scenario


def test_up_drives_the_simulated_cluster_in_accelerated_time(tmp_path: Path, launch: Launcher) -> None:
    trace = tmp_path / "trace.csv"
    write_trace(trace, vms=30, points=40)
    port = free_port()
    config = tmp_path / "loadpilot.toml"
    config.write_text(
        tomli_w.dumps(
            {
                "state_dir": str(tmp_path / "state"),
                "server": {"port": port},
                "agent": {"server_url": f"http://127.0.0.1:{port}", "interval_s": 5.0},
                "coordination": {"url": f"file://{tmp_path / 'coord'}"},
                "cluster": {"strategy": "thr-mmt-0.6", "sim": {"hosts": 16}},
            }
        )
    )
    up = launch(
        "up", "--config", str(config), "--no-view", "--cluster", f"sim:{trace}", "--speed", "600", log_name="up"
    )
    store_path = tmp_path / "state" / "loadpilot.db"
    assert wait_for(store_path.exists, timeout=30), "the server did not start"
    store = open_store(f"sqlite:///{store_path}")
    try:
        assert wait_for(lambda: bool(store.events(kind="migrate")), timeout=60), (tmp_path / "up.log").read_text()
        assert wait_for(lambda: bool(store.events(kind="migrated")), timeout=30)
        moves = sorted(store.events(kind="migrate", limit=1000), key=lambda e: e.id or 0)
        assert all(e.result == "started" and e.reason for e in moves)
        assert {e.details["strategy"] for e in moves} == {"thr-mmt-0.6"}
        [lead] = store.events(kind="leadership")

        # the load jumps at the third interval (600 s of simulated time): at 600x, a second or so after the start
        def late() -> list[Event]:
            return [e for e in store.events(kind="migrate", limit=1000) if e.details["view_at"] >= 600.0]

        assert wait_for(lambda: bool(late()), timeout=30)
        first = min(late(), key=lambda e: e.id or 0)
        assert first.time - lead.time < 30.0, (first.time - lead.time, first.details)
    finally:
        store.close()
    up.send_signal(signal.SIGINT)
    assert up.wait(timeout=60) == 0, (tmp_path / "up.log").read_text()
    copy = tmp_path / "state" / "up-cluster.toml"
    assert f'url = "sim:{trace}"' in copy.read_text()
