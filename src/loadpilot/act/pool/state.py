"""A pool's files in the state dir: how the supervisor, the CLI and the agent find each other.

    <state_dir>/pools/<name>/
        supervisor.lock   held (flock) by the running supervisor; holds its pid
        desired.json      what the pool should be: size and restart generation (written by the CLI or controller)
        fence.json        the newest leadership epoch that has changed desired.json (act/fencing.py)
        state.json        what the pool is: one record per worker, rewritten by the supervisor every tick
        events.jsonl      what the supervisor did and why, one JSON object per line
        logs/<worker>.log each worker's stdout and stderr

The supervisor is level-triggered: it re-reads desired.json every tick, so a command from any shell only has to
write that file. Files are replaced atomically (write, fsync, rename): a reader never sees half a file.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from loadpilot.errors import PermanentError


@dataclass(frozen=True)
class PoolPaths:
    """Where one pool's files live."""

    root: Path

    @classmethod
    def of(cls, state_dir: Path, pool: str) -> PoolPaths:
        """The folder of pool `pool` under a state dir."""
        return cls(state_dir / "pools" / pool)

    @property
    def lock(self) -> Path:
        return self.root / "supervisor.lock"

    @property
    def desired(self) -> Path:
        return self.root / "desired.json"

    @property
    def fence(self) -> Path:
        return self.root / "fence.json"

    @property
    def state(self) -> Path:
        return self.root / "state.json"

    @property
    def events(self) -> Path:
        return self.root / "events.jsonl"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def supervisor_log(self) -> Path:
        return self.root / "supervisor.log"

    @property
    def balancer_dir(self) -> Path:
        return self.root / "balancer"


@dataclass
class Desired:
    """What the pool should be. `generation` goes up by one for each `pool restart` (a rolling replacement)."""

    size: int
    generation: int = 0
    epoch: int = 0  # the controller's leadership epoch that set it (0: set by hand)
    updated_at: float = field(default_factory=time.time)


@dataclass
class WorkerRecord:
    """One worker as the supervisor last saw it."""

    id: str
    slot: int
    state: str  # starting | ready | unhealthy | draining | stopping | backoff | failed
    pid: int | None = None
    port: int | None = None
    started_at: float | None = None
    ready_at: float | None = None
    restarts: int = 0
    generation: int = 0
    cpu: float | None = None  # cores, averaged since the previous reading
    rss_bytes: int | None = None
    requests: int | None = None  # served since the worker started (from its metrics)
    in_flight: int | None = None
    latency_mean_s: float | None = None  # over the last metrics interval
    latency_p95_s: float | None = None
    reason: str = ""  # why it is in this state (the last exit, the failed check, ...)


@dataclass
class PoolState:
    """What the pool is, as written by its supervisor."""

    pool: str
    status: str  # starting | running | stopping | stopped
    supervisor_pid: int
    mode: str
    front: str  # host:port clients use
    balancer: str
    desired: int
    generation: int
    started_at: float
    updated_at: float
    workers: list[WorkerRecord] = field(default_factory=list)
    routes: list[str] = field(default_factory=list)  # worker ids the balancer routes to, as it reports them
    cpu_quota: str = ""  # how the CPU quota is applied, or why it is not
    events: list[dict[str, Any]] = field(default_factory=list)  # the most recent ones

    @property
    def ready(self) -> int:
        """How many workers take traffic."""
        return sum(1 for w in self.workers if w.state == "ready")

    @property
    def failed(self) -> int:
        """How many worker slots the circuit breaker has given up on."""
        return sum(1 for w in self.workers if w.state == "failed")


def write_json_atomic(path: Path, data: Any) -> None:
    """Replace `path` with `data` as JSON so that readers see the old file or the new one, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, separators=(",", ":"))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_desired(paths: PoolPaths) -> Desired | None:
    """The pool's desired.json, or None when there is none (or it cannot be read)."""
    try:
        data = json.loads(paths.desired.read_text(encoding="utf-8"))
        return Desired(**data)
    except (OSError, ValueError, TypeError):
        return None


def write_desired(paths: PoolPaths, desired: Desired) -> None:
    """Ask the pool's supervisor for a size and restart generation (it applies it within a tick)."""
    write_json_atomic(paths.desired, asdict(desired))


def read_state(paths: PoolPaths) -> PoolState | None:
    """The pool's state.json, or None when the pool has never run here."""
    try:
        data = json.loads(paths.state.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    workers = [WorkerRecord(**w) for w in data.pop("workers", [])]
    return PoolState(**data, workers=workers)


def write_state(paths: PoolPaths, state: PoolState) -> None:
    """Publish the supervisor's view of the pool."""
    write_json_atomic(paths.state, asdict(state))


class SupervisorLock:
    """An exclusive lock on supervisor.lock: at most one supervisor per pool, released when its process ends.

    A stale pid file cannot block a start: the kernel drops an flock when its holder dies, however it died.
    """

    def __init__(self, paths: PoolPaths) -> None:
        self.paths = paths
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock and write our pid into it; PermanentError naming the holder when it is taken."""
        self.paths.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.paths.lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            holder = supervisor_pid(self.paths)
            raise PermanentError(
                f"pool {self.paths.root.name!r} is already supervised (pid {holder}); "
                f"`loadpilot pool stop {self.paths.root.name}` first"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        os.set_inheritable(fd, False)
        self._fd = fd

    def release(self) -> None:
        """Drop the lock (the file stays; its pid is meaningless once unlocked)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def supervisor_pid(paths: PoolPaths) -> int | None:
    """The pid of the pool's running supervisor, or None when no supervisor holds the lock."""
    try:
        fd = os.open(paths.lock, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.read(fd, 32).decode(errors="replace").strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
