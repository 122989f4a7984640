"""What the live autoscaling benches share: `loadpilot up` on free ports, a watch on the pools, per-second latency.

- `running_up(config)`: `loadpilot up --no-view` with a config written to a temporary folder; stopped with SIGINT
  (as Ctrl-C) at the end, and checked to leave no process behind.
- `PoolWatch`: reads each pool's state.json every `every_s` seconds: workers running (for worker-seconds), the
  desired sizes asked for, and when each worker became ready.
- `PerSecond`: a latency histogram that also keeps one histogram per second of the schedule (by intended send
  time), for SLO-violation seconds.
"""

from __future__ import annotations

import asyncio
import itertools
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import tomli_w

from loadpilot.act.pool.state import PoolPaths, read_state
from loadpilot.loadgen.histogram import Histogram
from loadpilot.loadgen.http import HttpLoad, HttpLoadSpec
from loadpilot.loadgen.http_report import HttpReport
from loadpilot.loadgen.schedule import Schedule
from tests.helpers import alive, descendants

LOGSIFT = ["{python}", "-m", "loadpilot.apps.logsift", "--fd", "{fd}", "--port", "{port}"]
BODY = (
    b"081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 for block blk_38865049064139660 "
    b"terminating\n"
)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def logsift_pool(
    name: str, app_args: list[str], low: int, high: int, initial: int, autoscale: dict[str, Any]
) -> dict[str, Any]:
    """One shared-socket logsift pool on free ports, with fast health checks and the given autoscale settings."""
    first = free_port()
    return {
        "name": name,
        "command": [*LOGSIFT, *app_args],
        "min": low,
        "max": high,
        "initial": initial,
        "mode": "shared",
        "port": free_port(),
        "worker_ports": [first, first + 2 * high + 10],
        "drain_s": 1.0,
        "tick_s": 0.25,
        "health": {"interval_s": 0.5, "timeout_s": 1.0},
        "autoscale": {"enabled": True, **autoscale},
    }


def write_config(folder: Path, pools: list[dict[str, Any]], control_tick_s: float) -> Path:
    """A complete config for `up`: everything under `folder`, the server on a free port, only the pool collector."""
    port = free_port()
    data = {
        "state_dir": str(folder / "state"),
        "log_level": "warning",
        "server": {"port": port},
        "store": {"sqlite_synchronous": "normal"},
        "agent": {"server_url": f"http://127.0.0.1:{port}", "collectors": [{"type": "pool"}]},
        "pools": pools,
        "control": {"tick_s": control_tick_s},
        "coordination": {"tick_s": 0.5},
    }
    path = folder / "loadpilot.toml"
    path.write_text(tomli_w.dumps(data))
    return path


def _serving(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def running_up(config: Path, fronts: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`loadpilot up --no-view --config config` until the block ends; every front must answer /healthz first.

    At the end: SIGINT (as Ctrl-C), then RuntimeError if `up` failed to stop or left a process behind.
    """
    out = open(log, "ab")  # noqa: SIM115 (closed below, after the process)
    proc = subprocess.Popen(
        [sys.executable, "-m", "loadpilot", "up", "--no-view", "--config", str(config)],
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    seen: dict[int, float] = {}
    try:
        deadline = time.monotonic() + 90
        while not all(_serving(f"{front}/healthz") for front in fronts):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"loadpilot up did not start; see {log}")
            time.sleep(0.2)
        seen.update(descendants(proc.pid))
        yield proc
        seen.update(descendants(proc.pid))
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        out.close()
    left = [pid for pid, created in seen.items() if alive(pid, created)]
    if left:
        raise RuntimeError(f"loadpilot up left processes behind: {left}")


@dataclass
class PoolSeries:
    """One pool as watched: (time, workers running) readings, the desired sizes in order, ready times by worker."""

    running: list[tuple[float, int]] = field(default_factory=list)
    desired: list[int] = field(default_factory=list)
    ready_at: dict[str, float] = field(default_factory=dict)  # "<id>:<pid>" -> when it became ready

    def worker_seconds(self, start: float, end: float) -> float:
        """Workers running (starting, ready or draining) integrated over [start, end]."""
        total = 0.0
        inside = [(t, n) for t, n in self.running if start <= t <= end]
        for (t0, n), (t1, _) in itertools.pairwise(inside):
            total += n * (t1 - t0)
        return total


class PoolWatch(threading.Thread):
    """Reads the pools' state.json every `every_s` seconds until stopped."""

    def __init__(self, state_dir: Path, pools: list[str], every_s: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.paths = {name: PoolPaths.of(state_dir, name) for name in pools}
        self.series = {name: PoolSeries() for name in pools}
        self.every_s = every_s
        self._halt = threading.Event()
        self.lock = threading.Lock()

    def run(self) -> None:
        while not self._halt.wait(self.every_s):
            self.read_once()

    def read_once(self) -> None:
        """Take one reading of every pool."""
        now = time.time()
        for name, paths in self.paths.items():
            state = read_state(paths)
            if state is None:
                continue
            series = self.series[name]
            with self.lock:
                running = [w for w in state.workers if w.pid and w.state not in ("failed", "backoff")]
                series.running.append((now, len(running)))
                if not series.desired or series.desired[-1] != state.desired:
                    series.desired.append(state.desired)
                for w in running:
                    if w.ready_at is not None:
                        series.ready_at.setdefault(f"{w.id}:{w.pid}", w.ready_at)

    def stop(self) -> None:
        """Stop reading (after one last reading)."""
        self._halt.set()
        self.join(timeout=5)
        self.read_once()


class PerSecond(Histogram):
    """A latency histogram that also files each value under the second of the schedule its request was due in."""

    def __init__(self, origin: Callable[[], float]) -> None:
        super().__init__()
        self.origin = origin  # the schedule's start, on time.perf_counter's clock
        self.by_second: dict[int, Histogram] = defaultdict(Histogram)

    def record(self, seconds: float) -> None:
        """Count one latency, in the whole and in its due second."""
        super().record(seconds)
        due = time.perf_counter() - seconds - self.origin()
        self.by_second[max(0, int(due))].record(seconds)

    def violation_seconds(self, slo_s: float, duration_s: float) -> int:
        """Seconds of the schedule whose requests' p95 latency exceeded `slo_s`."""
        seconds = range(int(duration_s))
        return sum(1 for s in seconds if s in self.by_second and self.by_second[s].percentile(0.95) > slo_s)


@dataclass
class LoadRun:
    """One open-loop load against one URL, with per-second latency."""

    url: str
    schedule: Schedule
    concurrency: int = 512
    timeout_s: float = 30.0
    load: HttpLoad = field(init=False)
    latency: PerSecond = field(init=False)

    def __post_init__(self) -> None:
        spec = HttpLoadSpec(self.url, "POST", (("Content-Type", "text/plain"),), BODY, self.concurrency, self.timeout_s)
        self.load = HttpLoad(spec, self.schedule)
        self.latency = PerSecond(lambda: self.load._start)  # the run's own start time
        self.load._tally.latency = self.latency  # its successes' latencies, per second too


def run_loads(loads: list[LoadRun]) -> list[HttpReport]:
    """Run the loads at the same time in one event loop; their reports."""

    async def main() -> list[HttpReport]:
        return list(await asyncio.gather(*(run.load.run() for run in loads)))

    return asyncio.run(main())
