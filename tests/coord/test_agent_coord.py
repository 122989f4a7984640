"""The agent with coordination: two real agents split HTTP probe targets, one leaves gracefully, and `loadpilot
status` shows who polls what. Real server, real store, real HTTP endpoints, the file:// backend."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from loadpilot.config import Config, parse_config
from loadpilot.sense.agent import Agent
from loadpilot.sense.collectors import build_collectors
from loadpilot.sense.collectors.http_probe import HttpProbeCollector, HttpProbeOptions
from loadpilot.store import open_store
from tests.helpers import KEY, free_port, running_server, wait_for

N_TARGETS = 12


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


def _config(tmp_path: Path, port: int, agent_id: str, targets: list[str]) -> Config:
    return parse_config(
        {
            "state_dir": str(tmp_path / "state"),
            "server": {"port": port},
            "auth": {"signing_key": KEY.decode()},
            "agent": {
                "id": agent_id,
                "server_url": f"http://127.0.0.1:{port}",
                "interval_s": 1.0,
                "collectors": [{"type": "http_probe", "targets": targets, "timeout_s": 0.5}],
            },
            "coordination": {"enabled": True, "member_timeout_s": 3, "drain_timeout_s": 20},
        }
    )


def test_two_agents_split_the_targets_and_a_graceful_leave_loses_no_slot(tmp_path: Path, endpoints: str) -> None:
    targets = [f"{endpoints}/t{i}" for i in range(N_TARGETS)]
    port = free_port()
    first, second = (_config(tmp_path, port, name, targets) for name in ("a1", "a2"))
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    agents = [Agent(c, build_collectors(c)) for c in (first, second)]
    threads = [threading.Thread(target=a.run) for a in agents]
    config_file = _write(tmp_path, first)

    def status() -> dict[str, dict[str, object]]:
        command = [sys.executable, "-m", "loadpilot", "status", "--json", "--config", str(config_file)]
        shown = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        assert shown.returncode == 0, shown.stderr
        return {m["id"]: m for m in json.loads(shown.stdout)["members"] if m["role"] == "agents"}

    def split_exactly() -> bool:
        members = status()
        polled = [r for m in members.values() for r in m["resources"]]  # type: ignore[attr-defined]
        return set(members) == {"a1", "a2"} and sorted(polled) == sorted(targets)

    try:
        with running_server(first, store):
            threads[0].start()
            assert wait_for(lambda: agents[0].stats.shared_owned == N_TARGETS, timeout=20)
            threads[1].start()
            # Settled: both poll a share, and neither still polls what it handed over.
            assert wait_for(split_exactly, timeout=30, interval=0.5)
            members = status()
            assert all(m["alive"] and 0 < m["owned"] < N_TARGETS for m in members.values())  # type: ignore[operator]
            assert all(m["last_heartbeat_age_s"] < 10 for m in members.values())  # type: ignore[operator]
            agents[0].stop()  # graceful: a1 drains, a2 takes everything over before a1 leaves
            threads[0].join(timeout=40)
            assert not threads[0].is_alive()
            assert agents[0].shared is not None and agents[0].shared.handed_over
            assert wait_for(lambda: agents[1].stats.shared_owned == N_TARGETS, timeout=20)
            ticks = agents[1].stats.ticks
            assert wait_for(lambda: agents[1].stats.ticks >= ticks + 2, timeout=20)
            assert set(status()) == {"a2"}
    finally:
        for agent, thread in zip(agents, threads, strict=True):
            agent.stop()
            agent.stop()  # a second stop skips the drain
            if thread.is_alive():
                thread.join(timeout=40)
    rows = store.window_values("http.up", 0, 4e9)
    slots: dict[str, set[int]] = {}
    for rid, ts, _ in rows:
        slots.setdefault(rid, set()).add(round(ts))
    assert set(slots) == set(targets)
    # Every slot that any target was read in (from a2's start to the end), every target was read in.
    start = min(min(s) for s in slots.values()) + 2
    every = set().union(*slots.values())
    window = {s for s in every if s >= start and s <= max(every) - 1}
    missing = {rid: sorted(window - got) for rid, got in slots.items() if window - got}
    assert not missing, missing


def _write(tmp_path: Path, config: Config) -> Path:
    import tomli_w

    data = config.model_dump(mode="json", exclude_none=True)
    data["auth"]["signing_key"] = KEY.decode()
    path = tmp_path / "loadpilot.toml"
    path.write_text(tomli_w.dumps(data))
    return path
