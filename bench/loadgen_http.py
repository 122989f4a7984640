"""HTTP load generator: `loadpilot loadgen http` at fixed rates beside wrk, both against nginx serving a static file.

nginx (one worker process) serves a 612-byte file. wrk is closed-loop: each of its connections sends the next
request when the previous answer comes, as fast as it can; its latencies are those of requests sent only when the
server was ready for them (coordinated omission), at the highest rate the pair reaches. Ours is open-loop: requests
leave at fixed rates (1,000, 2,000, 3,000 req/s, then higher until it no longer keeps up), and latency counts from
each request's intended send time. Reported for each: achieved rate, latency p50/p95/p99/max, failures, and the
generator's own CPU (share of one core; ours measures itself during the run, wrk is measured by its rusage).

BENCH_QUICK=1 runs 3-second points and a shorter search (to check the bench end to end; not for the record).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import write_results
from tests.loadgen.http_servers import running_nginx

QUICK = os.environ.get("BENCH_QUICK") == "1"
SECONDS = 3 if QUICK else int(os.environ.get("BENCH_LOADGEN_HTTP_SECONDS", "10"))
FIXED_RATES = [1000, 2000, 3000]
SEARCH_RATES = [4000, 6000] if QUICK else [4000, 5000, 6000, 8000, 10000, 12000, 15000]
CONNECTIONS = 32  # wrk's connections, and ours' cap on requests in flight
WRK_CONNECTIONS = [4, CONNECTIONS]
KEPT_UP = 0.97  # a rate is sustained when >= 97 % of it is answered, none fails, and the sender kept its schedule

WRK_REPORT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "LOADPILOT {\\"requests\\": %d, \\"duration_us\\": %d, \\"failed\\": %d, \\"p50\\": %d, \\"p95\\": %d, "
    .. "\\"p99\\": %d, \\"max\\": %d}\\n",
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout + e.status,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
"""


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _wrk(url: str, connections: int, script: Path) -> dict[str, Any]:
    """wrk -t1 -cN for SECONDS against `url`: its rate, percentiles (ms) and CPU."""
    cpu0 = _children_cpu()
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{SECONDS}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    cpu = _children_cpu() - cpu0
    data = json.loads(out.split("LOADPILOT ", 1)[1].splitlines()[0])
    seconds = data["duration_us"] / 1e6
    return {
        "tool": "wrk",
        "mode": f"closed loop, -t1 -c{connections}",
        "target req/s": "as fast as it can",
        "achieved req/s": (data["requests"] - data["failed"]) / seconds,
        **{f"{p} ms": data[p] / 1000 for p in ("p50", "p95", "p99", "max")},
        "failed": data["failed"],
        "generator CPU": f"{cpu / seconds:.0%}",
    }


def _ours(url: str, rate: int) -> dict[str, Any]:
    """`loadpilot loadgen http` at `rate` for SECONDS: its achieved rate, percentiles (ms), lag and CPU."""
    command = [sys.executable, "-m", "loadpilot", "loadgen", "http", url, "--rate", str(rate), "-d", str(SECONDS)]
    command += ["--concurrency", str(CONNECTIONS), "--timeout", "5", "--no-progress", "--json"]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    report = json.loads(out)
    latency = report["latency"]
    sustained = (
        report["achieved_rate"] >= KEPT_UP * rate and report["failed_total"] == 0 and report["sender_lag_max_s"] < 0.1
    )
    return {
        "tool": "loadpilot",
        "mode": f"open loop, --concurrency {CONNECTIONS}",
        "target req/s": rate,
        "achieved req/s": report["achieved_rate"],
        **{f"{p} ms": latency[p] * 1000 for p in ("p50", "p95", "p99", "max")},
        "failed": report["failed_total"],
        "late starts": report["late_starts"],
        "generator CPU": f"{report['cpu_s'] / report['elapsed_s']:.0%}",
        "kept up": "yes" if sustained else "no",
    }


def run() -> Path:
    """Measure wrk and ours against the same nginx; write bench/results/loadgen_http.*."""
    if not shutil.which("wrk"):
        raise RuntimeError("wrk is needed: scripts/system-deps.sh bench installs it")
    rows: list[dict[str, Any]] = []
    with (
        tempfile.TemporaryDirectory(prefix="bench-loadgen-http-") as d,
        running_nginx(Path(d), keepalive_requests=1_000_000) as url,
    ):
        script = Path(d) / "report.lua"
        script.write_text(WRK_REPORT)
        _ours(url, 500)  # warm up nginx and the page cache; not reported
        rows += [_wrk(url, connections, script) for connections in WRK_CONNECTIONS]
        for rate in FIXED_RATES:
            rows.append(_ours(url, rate))
            time.sleep(1)
        best = max((r for r in rows if r.get("kept up") == "yes"), key=lambda r: r["target req/s"], default=None)
        for rate in SEARCH_RATES:
            row = _ours(url, rate)
            rows.append(row)
            if row["kept up"] != "yes":
                break
            best = row
            time.sleep(1)
    highest = best["target req/s"] if best else 0
    notes = [
        f"nginx 1 worker process, a 612-byte static file, keep-alive; {SECONDS} s per point"
        f"{' (BENCH_QUICK: short points, not for the record)' if QUICK else ''}. The machine has 2 cores, "
        "shared by nginx and the generator.",
        "wrk is closed-loop (a connection sends its next request when the last answer came): it measures the "
        "highest rate, and its latencies omit the time requests would have waited had they been sent on a "
        "schedule. Ours sends at fixed rates whatever the answers and counts latency from the intended send "
        "time, so queueing anywhere (server, network, generator) shows.",
        f"Kept up: >= {KEPT_UP:.0%} of the rate answered with no failure and the sender never more than 100 ms "
        f"behind its schedule. Highest rate ours kept up with here: {highest:,} req/s. Late starts: requests "
        "that left more than 10 ms after their intended time.",
        "Generator CPU: share of one core; ours measures its own process during the run (uvloop when installed), "
        "wrk is measured through its rusage.",
        "Run: `.venv/bin/python -m bench loadgen_http` (BENCH_LOADGEN_HTTP_SECONDS, BENCH_QUICK=1).",
    ]
    columns = ["tool", "mode", "target req/s", "achieved req/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "failed",
               "late starts", "generator CPU", "kept up"]  # fmt: skip
    return write_results("loadgen_http", "HTTP load generator beside wrk (nginx, static file)", columns, rows, notes)
