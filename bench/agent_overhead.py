"""Agent overhead: CPU the loadpilot agent burns sampling the host and 50 processes every second.

What is measured: the CPU time (user + system, children included) of the `loadpilot agent` process over a window
of BENCH_AGENT_SECONDS (default 60 s) after a 5 s warm-up, while it samples the `host` collector and a `process`
collector matching 50 idle processes, at `interval_s = 1`, and ships every reading to a real `loadpilot server`
on loopback. It is reported as CPU seconds per hour and as a share of one core. Target: <= 1 % of one core.

Why: an agent runs on every machine of the fleet, so what it costs is taken from the workloads it watches. The
yardstick is Prometheus' node_exporter (Debian `prometheus-node-exporter`, default collectors), the agent most
machines already run, scraped every second by a thread of this process: it measures node_exporter's own CPU,
not the scraper's (the scraper's cost is reported apart, as the analogue of our server side, for information).

The two are measured one after the other, not at the same time, so that on a small machine neither steals CPU
from the other inside its window. An overhead figure for an agent that ships nothing would be worthless, so the
run fails unless the server holds the 50 processes and about one host `cpu.util` sample per second of the window.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
from rich.console import Console
from rich.progress import Progress

from bench.common import loadpilot, stop, wait_healthy, write_results
from tests.helpers import free_port

SECONDS = float(os.environ.get("BENCH_AGENT_SECONDS", "60"))
WARMUP_S = 5.0
PROCESSES = 50
INTERVAL_S = 1.0
TARGET_PERCENT = 1.0
KEY = "bench-agent-overhead-key"
AGENT_ID = "bench-agent"
GROUP = "sleepers"
NODE_EXPORTER = shutil.which("prometheus-node-exporter") or "/usr/bin/prometheus-node-exporter"

COLUMNS = [
    "process",
    "window s",
    "CPU s in window",
    "CPU s / hour",
    "% of one core",
    "RSS MiB",
    "samples per tick",
    "vs node_exporter",
    "target",
]


@dataclass(frozen=True)
class Window:
    """CPU a process used over a measured stretch of wall time, and its memory at the end."""

    cpu_s: float
    wall_s: float
    rss_mib: float

    @property
    def share(self) -> float:
        """Fraction of one core."""
        return self.cpu_s / self.wall_s

    def row(self, name: str, samples_per_tick: int | str) -> dict[str, Any]:
        """The table row for this window."""
        return {
            "process": name,
            "window s": round(self.wall_s, 1),
            "CPU s in window": self.cpu_s,
            "CPU s / hour": self.share * 3600,
            "% of one core": self.share * 100,
            "RSS MiB": self.rss_mib,
            "samples per tick": samples_per_tick,
        }


def cpu_seconds(proc: psutil.Process) -> float:
    """User + system CPU seconds of a process, its waited-for children included."""
    t = proc.cpu_times()
    return t.user + t.system + t.children_user + t.children_system


def measure(pids: dict[str, int], seconds: float, label: str, scraper: Scraper | None = None) -> dict[str, Window]:
    """CPU of each named process (and of the scraper thread, as "scraper") over `seconds` of wall time."""
    procs = {name: psutil.Process(pid) for name, pid in pids.items()}
    start_cpu = {name: cpu_seconds(p) for name, p in procs.items()}
    start_scraper = scraper.cpu_s if scraper else 0.0
    started = time.monotonic()
    with Progress(transient=True) as progress:
        task = progress.add_task(label, total=seconds)
        while (elapsed := time.monotonic() - started) < seconds:
            progress.update(task, completed=elapsed)
            time.sleep(min(1.0, seconds - elapsed))
    end_cpu = {name: cpu_seconds(p) for name, p in procs.items()}
    wall = time.monotonic() - started
    if scraper:
        end_scraper = scraper.cpu_s
    for name, p in procs.items():
        if not p.is_running() or p.status() == psutil.STATUS_ZOMBIE:
            raise RuntimeError(f"{name} (pid {p.pid}) died during the window")
    out = {
        name: Window(end_cpu[name] - start_cpu[name], wall, p.memory_info().rss / 2**20) for name, p in procs.items()
    }
    if scraper:
        out["scraper"] = Window(end_scraper - start_scraper, wall, psutil.Process().memory_info().rss / 2**20)
    return out


class Scraper(threading.Thread):
    """GETs a /metrics URL every `interval` seconds, as Prometheus would; counts its own thread's CPU."""

    def __init__(self, url: str, interval: float = INTERVAL_S) -> None:
        super().__init__(name="scraper", daemon=True)
        self.url = url
        self.interval = interval
        self.stop_event = threading.Event()
        self.cpu_s = 0.0
        self.scrapes = 0
        self.failures: list[str] = []
        self.series = 0  # metric lines in the last scrape

    def run(self) -> None:
        with httpx.Client(timeout=5) as client:
            next_at = time.monotonic()
            while not self.stop_event.is_set():
                started = time.thread_time()
                try:
                    response = client.get(self.url)
                    response.raise_for_status()
                    self.series = sum(1 for line in response.text.splitlines() if line and not line.startswith("#"))
                    self.scrapes += 1
                except httpx.HTTPError as exc:
                    self.failures.append(f"{type(exc).__name__}: {exc}")
                self.cpu_s += time.thread_time() - started
                next_at += self.interval
                self.stop_event.wait(max(0.0, next_at - time.monotonic()))

    def stop(self) -> None:
        """Stop and wait for the thread."""
        self.stop_event.set()
        self.join(10)


@contextmanager
def child(proc: subprocess.Popen[bytes]) -> Iterator[subprocess.Popen[bytes]]:
    """Stop a child process however the block ends."""
    try:
        yield proc
    finally:
        stop(proc)


@contextmanager
def sleepers(marker: str, n: int = PROCESSES) -> Iterator[list[subprocess.Popen[bytes]]]:
    """`n` idle `sleep` processes whose argv[0] is `marker`, so a cmdline pattern finds exactly them."""
    sleep = shutil.which("sleep") or "/bin/sleep"
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for _ in range(n):
            procs.append(
                subprocess.Popen(
                    [marker, "3600"], executable=sleep, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL
                )
            )
        yield procs
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()


def write_config(tmp: Path, port: int, pattern: str) -> Path:
    """One loadpilot.toml for both the server and the agent, everything under `tmp`."""
    config = tmp / "loadpilot.toml"
    config.write_text(
        f"""log_level = "warning"
state_dir = "{tmp / "state"}"

[server]
host = "127.0.0.1"
port = {port}

[store]
url = "sqlite:///{tmp / "loadpilot.db"}"

[auth]
signing_key = "{KEY}"

[agent]
id = "{AGENT_ID}"
server_url = "http://127.0.0.1:{port}"
interval_s = {INTERVAL_S}

[[agent.collectors]]
type = "host"

[[agent.collectors]]
type = "process"
name = "{GROUP}"
pattern = '{pattern}'
match = "cmdline"
"""
    )
    return config


def count_matching(marker: str) -> int:
    """Processes on this machine whose command line contains `marker`."""
    n = 0
    for p in psutil.process_iter(["cmdline"]):
        if marker in " ".join(p.info["cmdline"] or []):
            n += 1
    return n


def verify_agent(base: str, window_start: float, window_end: float) -> tuple[int, float]:
    """Check the agent really shipped during the window; returns (samples per tick, collector seconds in window).

    Fails unless the server knows exactly PROCESSES processes of the group and holds about one host `cpu.util`
    sample per interval of the window.
    """
    with httpx.Client(base_url=base, timeout=10) as client:
        resources = client.get("/api/v1/resources", params={"kind": "process", "label": f"group={GROUP}"})
        resources.raise_for_status()
        found = len(resources.json())
        if found != PROCESSES:
            raise RuntimeError(f"the server knows {found} processes of group {GROUP}, expected {PROCESSES}")

        series = client.get(
            "/api/v1/series",
            params={"resource": AGENT_ID, "metric": "cpu.util", "start": window_start, "end": window_end},
        )
        series.raise_for_status()
        points = len(series.json()["points"])
        expected = int(window_end // INTERVAL_S) - int(window_start // INTERVAL_S)
        if abs(points - expected) > 1:
            raise RuntimeError(
                f"host cpu.util has {points} samples in the {window_end - window_start:.1f} s window, "
                f"expected {expected} (one per {INTERVAL_S:g} s): the agent did not ship every tick"
            )

        latest = client.get("/api/v1/latest")
        latest.raise_for_status()
        per_tick = Counter(s["timestamp"] for s in latest.json())
        newest = max(per_tick)
        samples_per_tick = per_tick[newest]

        collect = client.get(
            "/api/v1/series",
            params={
                "resource": f"agent/{AGENT_ID}",
                "metric": "collect.seconds_total",
                "start": window_start,
                "end": window_end,
            },
        )
        collect.raise_for_status()
        values = [p["value"] for p in collect.json()["points"]]
        collect_s = values[-1] - values[0] if len(values) > 1 else float("nan")
    return samples_per_tick, collect_s


def run_agent(tmp: Path, console: Console) -> tuple[dict[str, Window], int, float]:
    """Server, 50 sleepers and the agent; measure the agent (and the server) over the window."""
    port = free_port()
    marker = f"lp-bench-sleeper-{uuid.uuid4().hex[:12]}"
    config = write_config(tmp, port, re.escape(marker))
    base = f"http://127.0.0.1:{port}"
    with ExitStack() as stack:
        server = stack.enter_context(child(loadpilot("server", "--config", str(config), log=tmp / "server.log")))
        try:
            wait_healthy(base, server)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}; its log:\n{(tmp / 'server.log').read_text()}") from None
        stack.enter_context(sleepers(marker))
        if (n := count_matching(marker)) != PROCESSES:
            raise RuntimeError(f"{n} processes carry the marker, expected {PROCESSES}")
        agent = stack.enter_context(child(loadpilot("agent", "--config", str(config), log=tmp / "agent.log")))
        console.print(f"server pid {server.pid} on {base}, agent pid {agent.pid}, {PROCESSES} sleepers; warm-up")
        time.sleep(WARMUP_S)
        if agent.poll() is not None:
            raise RuntimeError(f"the agent exited with {agent.returncode}: {(tmp / 'agent.log').read_text()}")
        window_start = time.time()
        windows = measure({"agent": agent.pid, "server": server.pid}, SECONDS, "loadpilot agent")
        window_end = time.time()
        time.sleep(INTERVAL_S * 1.5)  # the last tick of the window reaches the server
        samples_per_tick, collect_s = verify_agent(base, window_start, window_end)
        log = (tmp / "agent.log").read_text()
        if "fell behind" in log:
            console.print(f"[yellow]the agent fell behind during the run:[/]\n{log}")
    return windows, samples_per_tick, collect_s


def run_node_exporter(tmp: Path, console: Console) -> tuple[dict[str, Window], int]:
    """node_exporter with its default collectors, scraped every second; measure it over the window."""
    if not Path(NODE_EXPORTER).exists():
        raise RuntimeError(f"{NODE_EXPORTER} not found: apt-get install prometheus-node-exporter")
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    log = open(tmp / "node_exporter.log", "ab")  # noqa: SIM115 (kept open for the child's life)
    with ExitStack() as stack:
        stack.callback(log.close)
        exporter = stack.enter_context(
            child(
                subprocess.Popen(
                    [NODE_EXPORTER, f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT
                )
            )
        )
        deadline = time.monotonic() + 15
        while True:
            if exporter.poll() is not None:
                raise RuntimeError(f"node_exporter exited with {exporter.returncode}")
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"node_exporter did not answer {url}")
            time.sleep(0.1)
        scraper = Scraper(url)
        scraper.start()
        stack.callback(scraper.stop)
        console.print(f"node_exporter pid {exporter.pid} on {url}, scraped every {INTERVAL_S:g} s; warm-up")
        time.sleep(WARMUP_S)
        scrapes_before = scraper.scrapes
        windows = measure({"node_exporter": exporter.pid}, SECONDS, "node_exporter", scraper)
        scrapes = scraper.scrapes - scrapes_before
        if scraper.failures:
            raise RuntimeError(f"{len(scraper.failures)} scrapes failed, first: {scraper.failures[0]}")
        if scrapes < SECONDS / INTERVAL_S - 1:
            raise RuntimeError(f"only {scrapes} scrapes in the {SECONDS:g} s window")
    return windows, scraper.series


def run() -> Path:
    """Measure the agent, then node_exporter, and write bench/results/agent_overhead.{json,md}."""
    console = Console()
    with tempfile.TemporaryDirectory(prefix="lp-bench-agent-") as tmpdir:
        tmp = Path(tmpdir)
        agent_windows, samples_per_tick, collect_s = run_agent(tmp, console)
        exporter_windows, exporter_series = run_node_exporter(tmp, console)

    agent, server = agent_windows["agent"], agent_windows["server"]
    exporter, scraper = exporter_windows["node_exporter"], exporter_windows["scraper"]
    percent = agent.share * 100
    met = percent <= TARGET_PERCENT
    rows = [
        {
            **agent.row(f"loadpilot agent: host + {PROCESSES} processes, every {INTERVAL_S:g} s", samples_per_tick),
            "vs node_exporter": agent.share / exporter.share,
            "target": f"<= {TARGET_PERCENT:g} %: {'met' if met else 'NOT met'}",
        },
        {
            **exporter.row(
                f"node_exporter {_exporter_version()}: default collectors, scraped every {INTERVAL_S:g} s",
                exporter_series,
            ),
            "vs node_exporter": 1.0,
        },
        {
            **server.row("(info) loadpilot server receiving the agent's batches", samples_per_tick),
            "vs node_exporter": "",
        },
        {
            **scraper.row("(info) scraper thread GETting node_exporter /metrics", exporter_series),
            "RSS MiB": "",
            "vs node_exporter": "",
        },
    ]
    notes = [
        f"Target: the agent uses <= {TARGET_PERCENT:g} % of one core sampling the host and {PROCESSES} processes "
        f"every {INTERVAL_S:g} s. Measured {percent:.2f} %: target {'met' if met else 'NOT met'}.",
        f"CPU = user + system (children included) of each process from psutil over a {SECONDS:g} s window after a "
        f"{WARMUP_S:g} s warm-up; CPU s / hour and % of one core are that rate extrapolated. RSS at the window's end.",
        "Run sequentially, not concurrently: first the loadpilot server, 50 idle `sleep` processes and the agent "
        "(shipping every tick to the server over loopback HTTP, SQLite store), then node_exporter with a scraper "
        "thread in the benchmark process, so neither competes with the other for the machine's cores.",
        f"Samples per tick: for the agent, samples stored by the server for its newest tick ({PROCESSES} x cpu.util "
        "and mem.rss_bytes, the host metrics and the agent's own metrics); for node_exporter, metric lines in one "
        "scrape. The run fails unless the server holds the 50 processes and one host cpu.util per second.",
        f"Of the agent's CPU, its collectors spent {collect_s:.2f} s of wall time in the window (its own "
        "collect.seconds_total metric); the rest is spooling, signing, encoding and shipping.",
        "The (info) rows are the receiving side, the analogue of a Prometheus server scraping: the loadpilot server "
        "storing each batch, and the scraper thread's own CPU (thread_time: HTTP GET plus counting lines, no "
        "storage, so it understates what Prometheus itself would spend).",
        "Run: `.venv/bin/python -m bench agent_overhead` (BENCH_AGENT_SECONDS sets the window).",
    ]
    return write_results("agent_overhead", "Agent overhead: CPU per hour beside node_exporter", COLUMNS, rows, notes)


def _exporter_version() -> str:
    try:
        out = subprocess.run([NODE_EXPORTER, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    match = re.search(r"version (\S+)", out.stdout + out.stderr)
    return match.group(1) if match else ""
