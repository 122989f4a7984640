"""One worker process: how it is started from the pool's command, watched, measured and stopped.

Workers run in their own session, so a Ctrl-C meant for a foreground supervisor reaches the supervisor only, and
it drains them in order instead of every process dying at once. Their output goes to logs/<worker>.log; the last
lines are quoted when a worker dies, so "failed" always comes with a reason.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from loadpilot.act.pool.probe import WorkerMetrics, latency_between
from loadpilot.act.pool.state import WorkerRecord
from loadpilot.config import COMMAND_PLACEHOLDERS, PoolConfig


def render_command(template: list[str], values: dict[str, str]) -> list[str]:
    """Fill the placeholders of a command template; every argument stays one argument (no shell involved)."""
    out = []
    for arg in template:
        for name in COMMAND_PLACEHOLDERS:
            if name in arg:
                arg = arg.replace(name, values.get(name, ""))
        out.append(arg)
    return out


def tail(path: Path, max_bytes: int = 2048, lines: int = 3) -> str:
    """The last few non-empty lines of a log file, joined with ' | ' for an event's reason."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - max_bytes))
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    kept = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(kept[-lines:])


def describe_exit(returncode: int) -> str:
    """A person's words for a process's exit status."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with code {returncode}"


@dataclass
class Worker:
    """One incarnation of a worker slot: a process that is starting, serving, draining or stopping."""

    pool: str
    slot: int
    incarnation: int
    generation: int
    port: int | None
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    state: str = "starting"
    started_at: float = 0.0
    ready_at: float | None = None
    state_since: float = 0.0
    check_failures: int = 0
    next_check_at: float = 0.0
    check_pending: bool = False
    stop_deadline: float | None = None  # draining: when to send TERM; stopping: when to send KILL
    retire_reason: str = ""
    counts_as_crash: bool = False
    reason: str = ""
    cpu: float | None = None
    rss_bytes: int | None = None
    metrics: WorkerMetrics | None = None
    latency: tuple[float | None, float | None] = (None, None)
    _cpu_reading: tuple[float, float] | None = field(default=None, repr=False)

    @property
    def id(self) -> str:
        """The slot's name, stable across restarts: <pool>-<slot>."""
        return f"{self.pool}-{self.slot}"

    @property
    def key(self) -> str:
        """This incarnation's name (unique while it lives): <pool>-<slot>.<incarnation>."""
        return f"{self.id}.{self.incarnation}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def spawn(self, config: PoolConfig, command: list[str], pass_fds: tuple[int, ...], cwd: Path | None) -> None:
        """Start the process; OSError when the command cannot be run at all (missing program, bad cwd)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            **config.env,
            "LOADPILOT_POOL": self.pool,
            "LOADPILOT_WORKER": self.id,
            "PYTHONUNBUFFERED": "1",
        }
        if self.port is not None:
            env["LOADPILOT_PORT"] = str(self.port)
        with open(self.log_path, "ab") as log:
            log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting {self.key}: {command}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=pass_fds,
                cwd=cwd,
                env=env,
                start_new_session=True,
            )
        now = time.time()
        self.started_at = self.state_since = self.next_check_at = now

    def set_state(self, state: str, reason: str = "") -> None:
        """Move to a state, remembering since when and why."""
        self.state, self.state_since = state, time.time()
        if reason:
            self.reason = reason

    def poll(self) -> int | None:
        """The exit status once the process has ended (reaped), else None."""
        return self.process.poll() if self.process is not None else 0

    def signal(self, sig: signal.Signals) -> None:
        """Send a signal to the worker's process group (the worker and anything it forked)."""
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            pass
        except PermissionError:
            self.process.send_signal(sig)

    def measure(self) -> None:
        """Read CPU (cores, since the last reading) and RSS of the worker's process."""
        if self.process is None or self.process.poll() is not None:
            return
        try:
            proc = psutil.Process(self.process.pid)
            with proc.oneshot():
                times = proc.cpu_times()
                self.rss_bytes = proc.memory_info().rss
        except psutil.Error:
            return
        now, cpu_s = time.monotonic(), times.user + times.system
        if self._cpu_reading is not None and now > self._cpu_reading[0]:
            self.cpu = max(0.0, (cpu_s - self._cpu_reading[1]) / (now - self._cpu_reading[0]))
        self._cpu_reading = (now, cpu_s)

    def took_metrics(self, metrics: WorkerMetrics | None) -> None:
        """Keep the newest scrape; latency is measured over the requests served since the previous one."""
        if metrics is None:
            return
        if self.metrics is not None:
            self.latency = latency_between(self.metrics, metrics)
        self.metrics = metrics

    def record(self, restarts: int) -> WorkerRecord:
        """The worker as written to state.json."""
        return WorkerRecord(
            id=self.id,
            slot=self.slot,
            state=self.state,
            pid=self.pid if self.poll() is None else None,
            port=self.port,
            started_at=self.started_at,
            ready_at=self.ready_at,
            restarts=restarts,
            generation=self.generation,
            cpu=self.cpu,
            rss_bytes=self.rss_bytes,
            requests=int(self.metrics.requests) if self.metrics else None,
            in_flight=int(self.metrics.in_flight) if self.metrics else None,
            latency_mean_s=self.latency[0],
            latency_p95_s=self.latency[1],
            reason=self.reason,
        )
