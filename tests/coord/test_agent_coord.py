"""The agent with coordination: real `loadpilot agent` processes split HTTP probe targets, a third joins, one
leaves on SIGTERM (drains, then exits), and `loadpilot status --json` shows who polls what all along. Real server,
real store, real HTTP endpoints, the file:// backend. Then every target must have been read in every slot."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from loadpilot.config import load_config
from loadpilot.sense.collectors.http_probe import HttpProbeCollector, HttpProbeOptions
from loadpilot.store import open_store
from tests.helpers import KEY, free_port, running_server, terminate_all, wait_for

N_TARGETS = 24
ROOT = Path(__file__).parent.parent.parent
SETTLE_S = 45.0  # a join or leave on a busy 2-core machine, member timeout 3 s


class _Endpoint(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(500 if self.path.startswith("/broken") else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def endpoints() -> Iterator[str]:
    """A real HTTP server answering 200 everywhere, and 500 under /broken."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Endpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_the_probe_reports_up_status_and_latency_of_its_assigned_targets(endpoints: str) -> None:
    refused = f"http://127.0.0.1:{free_port()}/"
    options = HttpProbeOptions.model_validate(
        {"targets": [f"{endpoints}/a", {"url": f"{endpoints}/broken", "id": "b"}, refused], "timeout_s": 1}
    )
    probe = HttpProbeCollector(options, host="h")
    try:
        assert probe.shared_resources() == sorted([f"{endpoints}/a", "b", refused])
        values = {(s.resource_id, s.metric): s.value for s in probe.collect(100.0).samples}
        assert values[(f"{endpoints}/a", "http.up")] == 1.0 and values[(f"{endpoints}/a", "http.status")] == 200
        assert values[("b", "http.up")] == 0.0 and values[("b", "http.status")] == 500
        assert values[(refused, "http.up")] == 0.0 and (refused, "http.status") not in values
        assert 0 < values[(f"{endpoints}/a", "http.latency_s")] < 1
        probe.assign(frozenset({"b"}))
        assert {s.resource_id for s in probe.collect(101.0).samples} == {"b"}
    finally:
        probe.close()


@dataclass
class Agents:
    """`loadpilot agent` processes sharing one state dir (so one file:// backend) and one list of targets."""

    folder: Path
    port: int
    targets: list[str]
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def config(self, agent_id: str) -> Path:
        """Write agent `agent_id`'s loadpilot.toml, as an operator would."""
        data = {
            "state_dir": str(self.folder / "state"),
            "server": {"port": self.port},
            "auth": {"signing_key": KEY.decode()},
            "agent": {
                "id": agent_id,
                "server_url": f"http://127.0.0.1:{self.port}",
                "interval_s": 1.0,
                "collectors": [{"type": "http_probe", "targets": self.targets, "timeout_s": 0.5}],
            },
            "coordination": {"enabled": True, "member_timeout_s": 3, "drain_timeout_s": 30},
        }
        path = self.folder / f"{agent_id}.toml"
        path.write_text(tomli_w.dumps(data))
        return path

    def start(self, agent_id: str) -> None:
        log = open(self.folder / f"{agent_id}.log", "ab")  # noqa: SIM115 (the child keeps it)
        self.procs[agent_id] = subprocess.Popen(
            [sys.executable, "-m", "loadpilot", "agent", "--config", str(self.config(agent_id))],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )

    def log(self, agent_id: str) -> str:
        return (self.folder / f"{agent_id}.log").read_text(errors="replace")

    def status(self) -> dict[str, dict[str, Any]]:
        """The agents `loadpilot status --json` lists, by id."""
        command = [sys.executable, "-m", "loadpilot", "status", "--json", "--config", str(self.folder / "a1.toml")]
        shown = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False, cwd=ROOT)
        assert shown.returncode == 0, shown.stderr
        return {m["id"]: m for m in json.loads(shown.stdout)["members"] if m["role"] == "agents"}

    def split_exactly(self, members: set[str]) -> bool:
        """Exactly `members` are in the group, each owns a share, and together they poll every target once."""
        assert all(self.procs[m].poll() is None for m in members), {m: self.log(m)[-2000:] for m in members}
        shown = self.status()
        polled = sorted(r for m in shown.values() for r in m["resources"])
        return set(shown) == members and polled == sorted(self.targets) and all(m["owned"] for m in shown.values())


@pytest.mark.scenario
def test_agent_processes_split_the_targets_and_a_join_and_a_sigterm_lose_no_slot(
    tmp_path: Path, endpoints: str
) -> None:
    targets = [f"{endpoints}/t{i}" for i in range(N_TARGETS)]
    agents = Agents(tmp_path, free_port(), targets)
    server_config = load_config(agents.config("a1"))
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        with running_server(server_config, store):
            agents.start("a1")
            agents.start("a2")
            assert wait_for(lambda: agents.split_exactly({"a1", "a2"}), timeout=SETTLE_S, interval=0.5)
            shown = agents.status()
            assert all(m["alive"] and m["last_heartbeat_age_s"] < 10 for m in shown.values())
            assert all(0 < m["owned"] < N_TARGETS for m in shown.values())

            agents.start("a3")  # a join: the others hand a third over, make before break
            assert wait_for(lambda: agents.split_exactly({"a1", "a2", "a3"}), timeout=SETTLE_S, interval=0.5)

            agents.procs["a1"].send_signal(signal.SIGTERM)  # graceful: drains, then leaves
            assert agents.procs["a1"].wait(timeout=SETTLE_S) == 0, agents.log("a1")[-2000:]
            assert "draining" in agents.log("a1")
            assert "before everything was handed over" not in agents.log("a1")
            assert wait_for(lambda: agents.split_exactly({"a2", "a3"}), timeout=SETTLE_S, interval=0.5)
            time.sleep(2.5)  # two more slots after the leave
            stop_slot = int(time.time())  # from here on the last agents drain with nobody left to take over
            terminate_all(agents.procs.values(), timeout=60)
            assert [p.returncode for p in agents.procs.values()] == [0, 0, 0]
    finally:
        terminate_all(agents.procs.values(), timeout=60)
    slots: dict[str, set[int]] = {}
    for rid, ts, _ in store.window_values("http.up", 0, 4e9):
        slots.setdefault(rid, set()).add(int(ts // 1.0))
    store.close()
    assert set(slots) == set(targets)
    # From the first slot every target was read in to the stop: every target in every slot, through a join and a
    # graceful leave.
    start = max(min(s) for s in slots.values())
    window = set(range(start, stop_slot))
    assert len(window) >= 10
    missing = {rid: sorted(window - got) for rid, got in slots.items() if window - got}
    assert not missing, missing
