"""A real agent keeps sampling every second while the real server is down for 20 s: nothing is lost."""

from __future__ import annotations

import re
import signal
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers import Launcher, free_port, wait_for

pytestmark = pytest.mark.scenario


def healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/api/v1/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_every_sampled_slot_is_stored_exactly_once(tmp_path: Path, launch: Launcher) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    db = tmp_path / "store.db"
    config = tmp_path / "loadpilot.toml"
    config.write_text(
        f'state_dir = "{tmp_path / "state"}"\n'
        f"[server]\nport = {port}\n"
        f'[store]\nurl = "sqlite:///{db}"\n'
        '[auth]\nsigning_key = "outage-test-key"\n'
        f'[agent]\nid = "outage"\nserver_url = "{url}"\ninterval_s = 1\n'
        "backoff_initial_s = 0.2\nbackoff_max_s = 2\n"
        '[[agent.collectors]]\ntype = "host"\n'
    )
    server = launch("server", "--config", str(config), log_name="server")
    assert wait_for(lambda: healthy(url), timeout=20)
    agent = launch("agent", "--config", str(config), log_name="agent")
    time.sleep(5)

    server.send_signal(signal.SIGKILL)  # a crash, not a polite stop: acknowledged batches must survive it
    server.wait()
    time.sleep(20)
    launch("server", "--config", str(config), log_name="server")
    assert wait_for(lambda: healthy(url), timeout=20)
    time.sleep(5)  # the agent drains its spool with backoff, then keeps up

    agent.send_signal(signal.SIGTERM)
    assert agent.wait(timeout=30) == 0
    log = (tmp_path / "agent.log").read_text()
    summary = re.search(r"agent stopped: ticks=(\d+) .* left_in_spool=(\d+) dropped_batches=(\d+)", log)
    assert summary, log
    ticks, left, dropped = map(int, summary.groups())
    assert (left, dropped) == (0, 0), log
    assert ticks >= 29  # 5 + 20 + 5 seconds at one reading per second
    assert "skipped" not in log

    # Straight from the file, not through the store's own queries: one row per (resource, metric, slot). At a 1 s
    # interval a sample's slot start (t0) is its slot.
    with sqlite3.connect(db) as conn:
        conn.execute(
            "CREATE TEMP VIEW named AS SELECT x.resource_id AS resource_id, m.name AS metric, "
            "CAST(s.t0 AS INTEGER) AS slot "
            "FROM samples s JOIN series x ON x.id = s.series JOIN metrics m ON m.id = s.metric_id"
        )
        slots = [
            s
            for (s,) in conn.execute(
                "SELECT slot FROM named WHERE resource_id = 'outage' AND metric = 'mem.used_bytes' ORDER BY slot"
            )
        ]
        per_identity = conn.execute(
            "SELECT MAX(n) FROM (SELECT COUNT(*) AS n FROM named GROUP BY resource_id, metric, slot)"
        ).fetchone()[0]
        self_slots = conn.execute(
            "SELECT COUNT(DISTINCT slot) FROM named WHERE resource_id = 'agent/outage'"
        ).fetchone()[0]
    assert len(slots) == ticks, "every reading the agent took is stored"
    assert slots == list(range(slots[0], slots[0] + ticks)), "no slot is missing in the outage"
    assert per_identity == 1
    assert self_slots == ticks
