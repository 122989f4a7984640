"""Pool scaling: requests/s through nginx with 1, 2, 4 and 8 logsift workers, beside one worker reached directly.

Every worker waits 20 ms per request on a simulated backend (`--io-ms 20`) and serves 2 requests at once (the
rest queue), so one worker's capacity is bounded the way a real service's is (a database, an upstream API), and
capacity should grow with workers until the machine's two cores run out. wrk (closed loop, fixed connections)
POSTs the same 20 log lines each time.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import tomli_w

from bench.common import ROOT, write_results

SIZES = [1, 2, 4, 8]
SECONDS = int(os.environ.get("BENCH_SCALING_SECONDS", "10"))
CONNECTIONS = int(os.environ.get("BENCH_SCALING_CONNECTIONS", "64"))
IO_MS = 20
CONCURRENCY = 2  # requests a worker serves at once; the rest of its share waits in its queue
APP_ARGS = ["--io-ms", str(IO_MS), "--concurrency", str(CONCURRENCY), "--queue", "256"]
LOGS = ROOT.parent / "shared" / "data" / "loghub2k"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _body() -> str:
    files = sorted(LOGS.rglob("*_2k.log"))
    lines = files[0].read_text(errors="replace").splitlines()[:20] if files else []
    return "\n".join(lines or [f"request {i} from 10.0.0.{i} took {i * 3} ms" for i in range(20)]) + "\n"


def _wrk(url: str, tmp: Path) -> dict[str, float]:
    script = tmp / "post.lua"
    script.write_text(
        f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "text/plain"\nwrk.body = {json.dumps(_body())}\n'
    )
    out = subprocess.run(
        ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{SECONDS}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    failed = (int(bad.group(1)) if bad else 0) + (sum(int(g) for g in errors.groups()) if errors else 0)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}
    return {
        "rps": rps * (total - failed) / total if total else 0.0,
        "failed": failed,
        "p99_ms": float(p99.group(1)) * scale[p99.group(2)] if p99 else float("nan"),
    }


def _direct(tmp: Path) -> dict[str, float]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "loadpilot.apps.logsift", "--port", str(port), *APP_ARGS],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        import httpx

        for _ in range(200):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        return _wrk(f"http://127.0.0.1:{port}/api/analyze", tmp)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def _through_nginx(tmp: Path, size: int) -> dict[str, float]:
    front, first = _free_port(), _free_port()
    pool = {
        "name": "scale",
        "command": ["{python}", "-m", "loadpilot.apps.logsift", "--port", "{port}", *APP_ARGS],
        "mode": "ports",
        "min": 1,
        "max": max(SIZES),
        "initial": size,
        "port": front,
        "worker_ports": [first, first + 40],
        "balancer": {"type": "nginx"},
    }
    cfg = tmp / f"scale-{size}.toml"
    cfg.write_text(tomli_w.dumps({"state_dir": str(tmp / f"state-{size}"), "pools": [pool]}))
    base = [sys.executable, "-m", "loadpilot", "pool"]
    subprocess.run([*base, "start", "scale", "--config", str(cfg)], check=True, capture_output=True)
    try:
        return _wrk(f"http://127.0.0.1:{front}/api/analyze", tmp)
    finally:
        subprocess.run([*base, "stop", "scale", "--config", str(cfg)], check=True, capture_output=True)


def run() -> Path:
    """Measure one worker direct, then 1, 2, 4, 8 workers behind nginx; write bench/results/pool_scaling.*."""
    if not shutil.which("wrk"):
        raise RuntimeError("wrk is needed: scripts/system-deps.sh bench installs it")
    with tempfile.TemporaryDirectory(prefix="bench-scaling-") as d:
        tmp = Path(d)
        direct = _direct(tmp)
        rows = [{"setup": "1 worker, direct", "workers": 1, **_row(direct, direct["rps"], 1)}]
        for size in SIZES:
            result = _through_nginx(tmp, size)
            rows.append({"setup": f"{size} workers via nginx", "workers": size, **_row(result, direct["rps"], size)})
    notes = [
        f"logsift workers with `{' '.join(APP_ARGS)}`: each serves {CONCURRENCY} requests at once, each waiting "
        f"{IO_MS} ms on a simulated backend, so one worker tops out near {CONCURRENCY} / {IO_MS} ms = "
        f"{1000 * CONCURRENCY // IO_MS} requests/s whatever the CPU; wrk -t2 -c{CONNECTIONS} -d{SECONDS}s POSTing "
        "20 log lines to /api/analyze (the 20 lines cost ~1 ms of CPU). Requests/s counts 2xx answers only.",
        "Scaling efficiency = requests/s / (workers x requests/s of one worker reached directly). On this 2-core "
        "machine the workers, nginx and wrk share two cores, so efficiency falls once the cores are busy.",
        "Run: `.venv/bin/python -m bench pool_scaling` (BENCH_SCALING_SECONDS, BENCH_SCALING_CONNECTIONS).",
    ]
    columns = ["setup", "workers", "requests/s", "failed", "p99 ms", "speed-up vs direct", "scaling efficiency"]
    return write_results("pool_scaling", "Pool scaling through nginx (logsift, --io-ms 20)", columns, rows, notes)


def _row(result: dict[str, float], direct_rps: float, workers: int) -> dict[str, object]:
    speedup = result["rps"] / direct_rps if direct_rps else float("nan")
    return {
        "requests/s": result["rps"],
        "failed": int(result["failed"]),
        "p99 ms": result["p99_ms"],
        "speed-up vs direct": f"{speedup:.2f}x",
        "scaling efficiency": f"{speedup / workers:.0%}",
    }
