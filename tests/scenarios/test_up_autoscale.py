"""`loadpilot up` end to end: open-loop load rising from 20 to 400 requests/s and back down, against logsift
(--io-ms 50) in a shared-socket pool scaled by the controller. The pool grows and shrinks within min..max, no
request fails, every change of size is a scale event with its reason and epoch, and stopping `up` leaves no
process behind.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import tomllib
from pathlib import Path

import httpx
import psutil
import pytest
import tomli_w

from loadpilot.act.pool.state import PoolPaths, read_state
from loadpilot.store import open_store
from tests.helpers import Launcher, alive, descendants, free_port, wait_for

pytestmark = pytest.mark.scenario

LOW, HIGH = 1, 6
BODY = "081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 for block blk_3886504906 terminating\n"


def _schedule() -> list[int]:
    """Requests per second: 20 -> 400 over 20 s, 400 for 8 s, down to 20 over 8 s, then 20 for 22 s."""
    up = [round(20 + (400 - 20) * i / 19) for i in range(20)]
    down = [round(400 - (400 - 20) * i / 7) for i in range(8)]
    return up + [400] * 8 + down + [20] * 22


def _config(tmp_path: Path) -> Path:
    port, front, first = free_port(), free_port(), free_port()
    data = {
        "state_dir": str(tmp_path / "state"),
        "server": {"port": port},
        "store": {"sqlite_synchronous": "normal"},
        "agent": {"server_url": f"http://127.0.0.1:{port}", "collectors": [{"type": "pool"}]},
        "pools": [
            {
                "name": "logsift",
                "command": [
                    "{python}",
                    "-m",
                    "loadpilot.apps.logsift",
                    "--fd",
                    "{fd}",
                    "--port",
                    "{port}",
                    "--io-ms",
                    "50",
                    "--queue",
                    "256",
                ],
                "min": LOW,
                "max": HIGH,
                "initial": 1,
                "mode": "shared",
                "port": front,
                "worker_ports": [first, first + 20],
                "drain_s": 1.0,
                "tick_s": 0.25,
                "health": {"interval_s": 0.5, "timeout_s": 1.0},
                "autoscale": {
                    "enabled": True,
                    "policy": "predictive",
                    "metric": "in_flight",
                    "target": 4.0,
                    "interval_s": 2.0,
                    "horizon_s": 4.0,
                    "stabilisation_down_s": 10.0,
                },
            }
        ],
        "control": {"tick_s": 1.0},
        "coordination": {"tick_s": 0.5},
    }
    path = tmp_path / "loadpilot.toml"
    path.write_text(tomli_w.dumps(data))
    return path


class Sizes(threading.Thread):
    """Reads the pool's state.json every 0.2 s: every desired size, and the most workers running at once."""

    def __init__(self, paths: PoolPaths) -> None:
        super().__init__(daemon=True)
        self.paths = paths
        self.desired: list[int] = []
        self.most_running = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.2):
            state = read_state(self.paths)
            if state is None:
                continue
            if not self.desired or self.desired[-1] != state.desired:
                self.desired.append(state.desired)
            running = [w for w in state.workers if w.pid and w.state != "failed"]
            self.most_running = max(self.most_running, len(running))


def test_up_scales_logsift_out_and_in_under_rising_load_without_failing_a_request(
    tmp_path: Path, launch: Launcher
) -> None:
    config = _config(tmp_path)
    raw = tomllib.loads(config.read_text())
    front = f"http://127.0.0.1:{raw['pools'][0]['port']}"
    up = launch("up", "--config", str(config), "--no-view", log_name="up")
    log = tmp_path / "up.log"
    assert wait_for(lambda: "loadpilot is up" in log.read_text(), timeout=60), log.read_text()

    def serving() -> bool:
        try:
            return httpx.get(f"{front}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    assert wait_for(serving, timeout=30), log.read_text()
    trace = tmp_path / "load.csv"
    trace.write_text("period,count\n" + "".join(f"1,{n}\n" for n in _schedule()))
    body = tmp_path / "body.log"
    body.write_text(BODY)
    sizes = Sizes(PoolPaths.of(tmp_path / "state", "logsift"))
    sizes.start()
    children: dict[int, float] = {}
    loadgen = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "loadpilot",
            "loadgen",
            "http",
            f"{front}/api/analyze",
            "--trace",
            str(trace),
            "--body",
            str(body),
            "--header",
            "Content-Type: text/plain",
            "--concurrency",
            "256",
            "--json",
            "--no-progress",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        while loadgen.poll() is None:
            children.update(descendants(up.pid))
            time.sleep(0.5)
        out, err = loadgen.communicate()
    finally:
        if loadgen.poll() is None:
            loadgen.kill()
            loadgen.wait()
        sizes.stop.set()
        sizes.join()
    report = json.loads(out)
    assert report["ok"], err

    up.send_signal(signal.SIGINT)
    assert up.wait(timeout=60) == 0, log.read_text()[-3000:]
    left = [pid for pid, created in children.items() if alive(pid, created)]
    assert not left, f"processes left behind: {left}"
    assert not serving()

    # No request failed while the pool grew and shrank under it.
    assert report["scheduled"] == sum(_schedule())
    assert report["failed_total"] == 0, report["failed"]
    assert report["completed"] == report["scheduled"]

    # The pool grew with the load and shrank after it, within min..max.
    assert all(LOW <= n <= HIGH for n in sizes.desired), sizes.desired
    peak = max(sizes.desired)
    assert peak >= 3, sizes.desired
    assert sizes.desired[-1] < peak, sizes.desired
    assert sizes.most_running <= HIGH

    # Every change of size is the controller's, with an event that says why, under the leader's epoch.
    store = open_store(f"sqlite:///{tmp_path / 'state' / 'loadpilot.db'}")
    try:
        scaled = sorted(store.events(kind="scale", subject="pool/logsift", limit=1000), key=lambda e: e.id or 0)
    finally:
        store.close()
    assert scaled, "no scale event"
    print(  # shown with -s: what the run looked like
        f"desired sizes {sizes.desired}; most running {sizes.most_running}; latency p95 "
        f"{report['latency']['p95'] * 1000:.0f} ms; scale events: "
        + "; ".join(f"{e.details['from']}->{e.details['to']} ({e.reason})" for e in scaled)
    )
    for event in scaled:
        assert event.result == "ok", event
        assert event.reason and event.details["epoch"] >= 1, event
        assert "in_flight" in event.details and "from" in event.details, event
    assert set(sizes.desired[1:]) <= {e.details["to"] for e in scaled}, (sizes.desired, scaled)
    assert max(e.details["to"] for e in scaled) == peak
    assert any(e.details["to"] < e.details["from"] for e in scaled)
    assert f"scale pool/logsift 1 -> {scaled[0].details['to']} ok" in log.read_text()


def test_up_with_lb_nginx_serves_through_nginx_and_leaves_nothing_behind(tmp_path: Path, launch: Launcher) -> None:
    config = _config(tmp_path)
    raw = tomllib.loads(config.read_text())
    front = f"http://127.0.0.1:{raw['pools'][0]['port']}"
    # Started as a shell's background job (SIGINT ignored): Ctrl-C's SIGINT must still stop it.
    up = launch("up", "--config", str(config), "--no-view", "--lb", "nginx", log_name="up", sigint_ignored=True)
    log = tmp_path / "up.log"
    assert wait_for(lambda: "loadpilot is up" in log.read_text(), timeout=60), log.read_text()
    children: dict[int, float] = {}

    def served() -> bool:
        children.update(descendants(up.pid))
        try:
            return httpx.post(f"{front}/api/analyze", content=BODY, timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    assert wait_for(served, timeout=30), log.read_text()
    names = {psutil.Process(pid).name() for pid in children if alive(pid, children[pid])}
    assert "nginx" in names, names
    assert "(ports" in log.read_text() and "nginx" in log.read_text()  # the header says how the pool is fronted
    up.send_signal(signal.SIGINT)
    assert up.wait(timeout=60) == 0, log.read_text()[-3000:]
    left = [pid for pid, created in children.items() if alive(pid, created)]
    assert not left, f"processes left behind: {left}"
    assert not wait_for(served, timeout=1)
