"""Restart latency: SIGKILL a worker, time until its replacement answers, beside supervisord.

Both managers run the same program (logsift on its own port) and are measured the same way: the bench kills the
worker with SIGKILL and polls GET /healthz on the worker's port every 5 ms until it answers 200. For loadpilot
the time until the pool itself counts the replacement ready (state.json) is reported too.
"""

from __future__ import annotations

import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import tomli_w

from bench.common import ROOT, write_results
from loadpilot.act.pool.state import PoolPaths, read_state

ROUNDS = int(os.environ.get("BENCH_RESTART_ROUNDS", "10"))
POLL_S = 0.005


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answering(port: int, deadline_s: float = 30.0) -> float:
    """Poll /healthz until it answers 200; the monotonic time it first did."""
    end = time.monotonic() + deadline_s
    with httpx.Client(timeout=0.5) as client:
        while time.monotonic() < end:
            try:
                if client.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    return time.monotonic()
            except httpx.HTTPError:
                pass
            time.sleep(POLL_S)
    raise RuntimeError(f"nothing answered on port {port} within {deadline_s} s")


def _program(port: int) -> list[str]:
    return [sys.executable, "-m", "loadpilot.apps.logsift", "--port", str(port)]


def _measure(
    kill_target: Callable[[], int], port: int, pool_ready: Callable[[int], float] | None
) -> list[dict[str, float]]:
    """Kill the worker ROUNDS times; each round waits for the replacement, then a settling second."""
    out = []
    for _ in range(ROUNDS):
        _answering(port)
        time.sleep(1.0)
        pid = kill_target()
        killed = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        answering = _answering(port)
        row = {"answering_s": answering - killed}
        if pool_ready is not None:
            row["ready_s"] = pool_ready(pid) - killed
        out.append(row)
    return out


def _loadpilot(tmp: Path) -> list[dict[str, float]]:
    port = _free_port()
    pool = {
        "name": "bench",
        "command": [*_program(0)[:-1], "{port}"],
        "mode": "ports",
        "min": 1,
        "max": 1,
        "worker_ports": [port, port],
        # Each kill is a first crash: restarted at once. (With the default stable_s = 10, kills closer together
        # than 10 s back off 0.5 s, 1 s, 2 s... as they should.)
        "restart": {"stable_s": 1.0, "max_crashes": 1000},
    }
    cfg = tmp / "loadpilot.toml"
    cfg.write_text(tomli_w.dumps({"state_dir": str(tmp / "state"), "pools": [pool]}))
    base = [sys.executable, "-m", "loadpilot", "pool"]
    subprocess.run([*base, "start", "bench", "--config", str(cfg)], check=True, capture_output=True)
    paths = PoolPaths.of(tmp / "state", "bench")

    def pid() -> int:
        state = read_state(paths)
        assert state is not None and state.workers[0].pid
        return state.workers[0].pid

    def ready(old_pid: int) -> float:
        while True:
            state = read_state(paths)
            w = state.workers[0] if state else None
            if w and w.state == "ready" and w.pid != old_pid:
                return time.monotonic() - (time.time() - (w.ready_at or time.time()))
            time.sleep(POLL_S)

    try:
        return _measure(pid, port, ready)
    finally:
        subprocess.run([*base, "stop", "bench", "--config", str(cfg)], check=True, capture_output=True)


def _supervisord(tmp: Path) -> tuple[list[dict[str, float]], str]:
    binary = shutil.which("supervisord") or "/usr/bin/supervisord"
    port = _free_port()
    conf = tmp / "supervisord.conf"
    conf.write_text(
        "\n".join(
            [
                "[supervisord]",
                f"logfile={tmp}/supervisord.log",
                f"pidfile={tmp}/supervisord.pid",
                "nodaemon=true",
                "[unix_http_server]",
                f"file={tmp}/supervisor.sock",
                "[rpcinterface:supervisor]",
                "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
                "[supervisorctl]",
                f"serverurl=unix://{tmp}/supervisor.sock",
                "[program:logsift]",
                f"command={' '.join(_program(port))}",
                "autorestart=true",
                "stopsignal=TERM",
                f"directory={ROOT}",
                "",
            ]
        )
    )
    proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.strip()

    def pid() -> int:
        out = subprocess.run(["supervisorctl", "-c", str(conf), "pid", "logsift"], capture_output=True, text=True)
        return int(out.stdout.strip())

    try:
        return _measure(pid, port, None), version
    finally:
        proc.terminate()
        proc.wait(30)


def _summary(name: str, rounds: list[dict[str, float]], key: str, baseline: float | None) -> dict[str, object]:
    values = [r[key] for r in rounds]
    median = statistics.median(values)
    return {
        "manager": name,
        "measured": "kill -> answering" if key == "answering_s" else "kill -> ready in pool state",
        "rounds": len(values),
        "median ms": 1000 * median,
        "min ms": 1000 * min(values),
        "max ms": 1000 * max(values),
        "vs supervisord": f"{median / baseline:.2f}" if baseline else "1",
    }


def run() -> Path:
    """Run both managers one after the other and write bench/results/pool_restart.{json,md}."""
    with tempfile.TemporaryDirectory(prefix="bench-restart-") as d:
        tmp = Path(d)
        (tmp / "sd").mkdir()
        sup, version = _supervisord(tmp / "sd")
        ours = _loadpilot(tmp)
    base = statistics.median(r["answering_s"] for r in sup)
    rows = [
        _summary("loadpilot pool", ours, "answering_s", base),
        _summary("loadpilot pool", ours, "ready_s", base),
        _summary(f"supervisord {version}", sup, "answering_s", None),
    ]
    notes = [
        f"Each manager runs one logsift worker (`python -m loadpilot.apps.logsift --port P`). {ROUNDS} rounds: wait "
        "until it answers, 1 s more, SIGKILL, then poll GET /healthz every 5 ms until 200.",
        "Most of the time is the program's own start (Python + FastAPI imports); what differs is how fast each "
        "manager notices the death and starts again: loadpilot is woken by SIGCHLD and starts the replacement at "
        "once; supervisord reaps and restarts from its main loop, which wakes about once a second.",
        "loadpilot config: restart.stable_s = 1 so each kill is a first crash (restarted at once); supervisord: "
        "autorestart=true, its defaults otherwise.",
        "Run: `.venv/bin/python -m bench pool_restart` (BENCH_RESTART_ROUNDS sets the rounds).",
    ]
    return write_results(
        "pool_restart", "Restart latency: SIGKILL -> replacement answering", list(rows[0]), rows, notes
    )
