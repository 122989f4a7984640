"""A WC98 day through real pools, compressed into 10 minutes: our predictive policy and Kubernetes' HPA rules side by
side, in the same run.

`loadpilot up` runs two identical shared-socket logsift pools (`--io-ms 50 --concurrency 4`: one worker completes at
most 80 requests/s, every request waits 50 ms on a simulated backend), each scaled by the one controller: `ours`
with the predictive policy, `hpa` with the framework set to HPA's published defaults (15 s sync, tolerance 0.1,
300 s scale-down stabilisation, scale-up limit max(2x, +4)). Both track the same metric and target: requests in
flight, 3 per worker (75 % of a worker's 4 places). Two open-loop loads, one per pool, replay the same schedule
at the same time (one event loop), so both pools meet the same machine: the per-second WC98 trace of day 1
(1998-06-25 22:00 UTC + 24 h), compressed 144x into 600 s (each second the mean of 144 s of the trace), scaled so
its busiest second asks for PEAK_RPS requests/s.

Per pool: the p95 latency of all requests (client side, from their intended send time), SLO-violation seconds
(seconds of the schedule whose requests' p95 exceeded 250 ms), worker-seconds (every worker starting, ready or
draining, read from the pool's state every 0.25 s), scaling actions, failed requests. BENCH_AUTOSCALE_LIVE_S
shortens the run (the day is compressed further).
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, write_results
from bench.live import LoadRun, PoolWatch, logsift_pool, run_loads, running_up, write_config
from loadpilot.decide.scaling import presets
from loadpilot.loadgen.http_report import HttpReport
from loadpilot.loadgen.schedule import Schedule, Segment
from loadpilot.sim.traces import load_trace
from loadpilot.store import open_store

TRACE = ROOT.parent / "shared" / "data" / "traces" / "wc98_per_second_day1.csv"
DURATION_S = int(os.environ.get("BENCH_AUTOSCALE_LIVE_S", "600"))
PEAK_RPS = float(os.environ.get("BENCH_AUTOSCALE_LIVE_PEAK", "200"))
SLO_S = 0.25
APP_ARGS = ["--io-ms", "50", "--concurrency", "4", "--queue", "512"]
TARGET = 3.0  # requests in flight per worker
PER_WORKER_AT_TARGET = TARGET / 0.05  # requests/s at the target: 3 in flight x 20 completions/s each
LOW, HIGH = 1, 10
CONTROL_TICK_S = 1.0
# Ours: evaluated every 2 s; a worker is serving about 1.5 s after it is asked for, so the forecast looks one
# start-up plus one evaluation ahead, and a scale-in waits twice that (a dip shorter than the time to bring a
# worker back never costs capacity), as the simulator's settings are derived (loadpilot.sim.autoscale_setup).
OURS = {
    "policy": "predictive",
    "metric": "in_flight",
    "target": TARGET,
    "interval_s": 2.0,
    "horizon_s": 4.0,
    "stabilisation_down_s": 8.0,
    "max_step_up": 0,
    "max_step_up_pct": 0.0,
    "hold_while_scaling": "in",
}
COLUMNS = [
    "policy",
    "requests",
    "failed",
    "p95 ms",
    "p99 ms",
    "SLO-violation s",
    "worker-s",
    "mean workers",
    "peak workers",
    "actions",
]


def _hpa() -> dict[str, Any]:
    settings = presets.hpa("in_flight", TARGET).model_dump(mode="json", exclude_none=True)
    settings.pop("enabled", None)
    return settings


def _schedule() -> tuple[Schedule, list[float]]:
    """The compressed day as one-second segments, scaled to PEAK_RPS at its busiest second."""
    trace = load_trace(TRACE)
    rates = trace.replay(speedup=trace.duration_s / DURATION_S)
    scaled = [float(r) * PEAK_RPS / float(rates.max()) for r in rates]
    segments = tuple(Segment(float(i), 1.0, r, r) for i, r in enumerate(scaled))
    return Schedule(f"WC98 day 1 compressed {trace.duration_s / DURATION_S:g}x", segments), scaled


def _row(name: str, report: HttpReport, load: LoadRun, worker_s: float, peak: int, actions: int) -> dict[str, Any]:
    duration = load.schedule.duration
    return {
        "policy": name,
        "requests": report.scheduled,
        "failed": report.failed_total,
        "p95 ms": round(1000 * report.latency.p95, 1),
        "p99 ms": round(1000 * report.latency.p99, 1),
        "SLO-violation s": load.latency.violation_seconds(SLO_S, duration),
        "worker-s": round(worker_s),
        "mean workers": round(worker_s / duration, 2),
        "peak workers": peak,
        "actions": actions,
    }


def run() -> Path:
    """Replay the compressed day through both pools at once; write bench/results/autoscale_live.*."""
    schedule, rates = _schedule()
    initial = max(LOW, math.ceil(rates[0] / PER_WORKER_AT_TARGET))
    names = {"ours (predictive)": "ours", "hpa": "hpa"}
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-live-") as d:
        folder = Path(d)
        pools = [
            logsift_pool("ours", APP_ARGS, LOW, HIGH, initial, OURS),
            logsift_pool("hpa", APP_ARGS, LOW, HIGH, initial, _hpa()),
        ]
        config = write_config(folder, pools, CONTROL_TICK_S)
        urls = {p["name"]: f"http://127.0.0.1:{p['port']}" for p in pools}
        watch = PoolWatch(folder / "state", list(urls))
        with running_up(config, list(urls.values()), folder / "up.log"):
            loads = {name: LoadRun(f"{url}/api/analyze", schedule) for name, url in urls.items()}
            watch.start()
            start = time.time()
            reports = dict(zip(loads, run_loads(list(loads.values())), strict=True))
            end = time.time()
            watch.stop()
        store = open_store(f"sqlite:///{folder / 'state' / 'loadpilot.db'}")
        try:
            actions = {
                name: len(
                    [e for e in store.events(kind="scale", subject=f"pool/{name}", limit=10_000) if e.time >= start]
                )
                for name in urls
            }
        finally:
            store.close()
    rows = []
    for label, name in names.items():
        series = watch.series[name]
        worker_s = series.worker_seconds(start, end) * schedule.duration / max(1e-9, end - start)
        peak = max((n for t, n in series.running if start <= t <= end), default=0)
        rows.append(_row(label, reports[name], loads[name], worker_s, peak, actions[name]))
    ours, hpa = rows
    ratio_time = (
        f"{ours['SLO-violation s'] / hpa['SLO-violation s']:.2f}x"
        if hpa["SLO-violation s"]
        else ("no violation for either" if not ours["SLO-violation s"] else "violations where HPA had none")
    )
    notes = [
        f"Ours against HPA: SLO-violation time {ratio_time}, worker-seconds {ours['worker-s'] / hpa['worker-s']:.2f}x, "
        f"p95 {ours['p95 ms']:g} ms vs {hpa['p95 ms']:g} ms, failed requests {ours['failed']} vs {hpa['failed']}.",
        f"Load: {schedule.label} into {schedule.duration:g} s, busiest second {PEAK_RPS:g} requests/s, mean "
        f"{sum(rates) / len(rates):.0f}; the same open-loop schedule (POST /api/analyze, one log line) into each "
        f"pool at the same time. Pools: logsift `{' '.join(APP_ARGS)}`, min {LOW}, max {HIGH}, shared socket, "
        f"started at {initial} worker(s).",
        f"Ours: {', '.join(f'{k} {v}' for k, v in OURS.items())}. HPA: presets.hpa (15 s sync, tolerance 0.1, 300 s "
        "scale-down stabilisation, scale-up at most max(100 %, 4 pods) per sync) on the same metric and target. "
        f"One controller, tick {CONTROL_TICK_S:g} s, scales both.",
        f"SLO: p95 <= {SLO_S * 1000:g} ms per second of the schedule. The compression leaves HPA's timings in real "
        f"seconds (as a real HPA would run), while the load changes {86_400 / DURATION_S:g}x faster than on the "
        f"day: its 300 s stabilisation spans {300 * 86_400 / DURATION_S / 3600:g} hours of the trace.",
        "The generator, both pools and loadpilot share the machine's 2 cores; nothing else is assumed to run. "
        f"Run: `.venv/bin/python -m bench autoscale_live` (BENCH_AUTOSCALE_LIVE_S, BENCH_AUTOSCALE_LIVE_PEAK; "
        f"{time.monotonic() - began:.0f} s here).",
    ]
    title = "Autoscaling live: a WC98 day through real pools, ours vs HPA"
    return write_results("autoscale_live", title, COLUMNS, rows, notes)
