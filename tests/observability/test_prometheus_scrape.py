"""A real Prometheus scrapes a real server, agent and pool supervisor, and sees what they export."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import tomli_w

from loadpilot.config import parse_config
from loadpilot.store import open_store
from tests.act.pool.conftest import pool_config
from tests.helpers import KEY, free_port, running_server, terminate_all
from tests.observability.prom import running_prometheus


def write_config(tmp_path: Path, server_port: int, agent_port: int, pool_port: int) -> tuple[Path, dict[str, Any]]:
    """A loadpilot.toml with the agent's and the pool's metrics listeners on the given ports."""
    pool = pool_config(initial=2, metrics_listen=f"127.0.0.1:{pool_port}").model_dump(mode="json", exclude_none=True)
    data: dict[str, Any] = {
        "state_dir": str(tmp_path / "state"),
        "server": {"port": server_port},
        "auth": {"signing_key": KEY.decode()},
        "agent": {
            "id": "agent-prom",
            "server_url": f"http://127.0.0.1:{server_port}",
            "interval_s": 0.5,
            "metrics_listen": f"127.0.0.1:{agent_port}",
        },
        "pools": [pool],
    }
    path = tmp_path / "loadpilot.toml"
    path.write_text(tomli_w.dumps(data))
    return path, data


def test_prometheus_scrapes_the_server_an_agent_and_a_pool_supervisor(tmp_path: Path) -> None:
    server_port, agent_port, pool_port = free_port(), free_port(), free_port()
    path, data = write_config(tmp_path, server_port, agent_port, pool_port)
    config = parse_config(data)
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    procs: list[subprocess.Popen[bytes]] = []
    logs = tmp_path / "logs"
    logs.mkdir()
    targets = {
        "server": [f"127.0.0.1:{server_port}"],
        "agent": [f"127.0.0.1:{agent_port}"],
        "pool": [f"127.0.0.1:{pool_port}"],
    }
    try:
        with running_server(config, store):
            for name, args in (("agent", ["agent"]), ("pool", ["pool", "start", "web", "--foreground"])):
                with open(logs / f"{name}.log", "wb") as log:
                    procs.append(
                        subprocess.Popen(
                            [sys.executable, "-m", "loadpilot", *args, "--config", str(path)],
                            stdout=log,
                            stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL,
                        )
                    )
            with running_prometheus(tmp_path, targets) as prometheus:
                prometheus.wait_value("up", {"server": 1.0, "agent": 1.0, "pool": 1.0})
                prometheus.wait_value("loadpilot_pool_ready_workers", {"pool": 2.0})
                prometheus.wait_value('loadpilot_pool_workers{state="ready"}', {"pool": 2.0})
                prometheus.wait_value("loadpilot_pool_desired_workers", {"pool": 2.0})
                # Batches the agent shipped were stored by the server: both sides count them.
                prometheus.wait_value('loadpilot_ingest_batches_total{result="stored"} > bool 0', {"server": 1.0})
                prometheus.wait_value('loadpilot_agent_shipped_batches_total{result="stored"} > bool 0', {"agent": 1.0})
                prometheus.wait_value('loadpilot_agent_shipped_batches_total{result="rejected"}', {"agent": 0.0})
    finally:
        terminate_all(procs, timeout=30)
        store.close()
    for proc in procs:
        assert proc.returncode == 0, (logs / "agent.log").read_text() + (logs / "pool.log").read_text()
