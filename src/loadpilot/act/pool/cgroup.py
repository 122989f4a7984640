"""A per-worker CPU quota through Linux control groups (v1's cpu controller, or v2's cpu.max).

Each worker gets its own group `<root>/loadpilot/<pool>/<worker>` with quota = cores x period. Where neither
hierarchy is writable (no cgroup fs, no permission, the cpu controller not delegated), `CpuQuota.reason` says why
and the pool runs without quotas rather than refusing to start.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

PERIOD_US = 100_000
CGROUP_ROOT = Path("/sys/fs/cgroup")


class CpuQuota:
    """Creates, fills and removes the worker groups of one pool."""

    def __init__(self, pool: str, cores: float, root: Path = CGROUP_ROOT) -> None:
        self.cores = cores
        self.base: Path | None = None
        self.version = 0
        self.reason = ""
        if cores <= 0:
            self.reason = "no CPU quota asked (cpu_quota = 0)"
            return
        v1 = root / "cpu"
        if (v1 / "cpu.cfs_quota_us").exists():
            self._try(v1 / "loadpilot" / pool, 1)
        elif (root / "cgroup.controllers").exists():
            if "cpu" in (root / "cgroup.controllers").read_text().split():
                self._try(root / "loadpilot" / pool, 2)
            else:
                self.reason = "cgroup v2 without the cpu controller: CPU quotas unsupported here"
        else:
            self.reason = f"no cgroup cpu controller under {root}: CPU quotas unsupported here"

    def _try(self, base: Path, version: int) -> None:
        try:
            base.mkdir(parents=True, exist_ok=True)
            if version == 2:  # let the children of loadpilot/ and loadpilot/<pool>/ use the cpu controller
                for level in (base.parent.parent, base.parent):
                    (level / "cgroup.subtree_control").write_text("+cpu")
        except OSError as exc:
            self.reason = f"cannot create {base} ({exc.strerror}): CPU quotas unsupported here"
            return
        self.base, self.version = base, version
        self.reason = f"cgroup v{version}: {self.cores:g} cores per worker ({base})"

    @property
    def active(self) -> bool:
        """True when workers are really limited."""
        return self.base is not None

    def group(self, worker_id: str) -> Path | None:
        """The worker's group folder (None when quotas are not active)."""
        return self.base / worker_id if self.base is not None else None

    def apply(self, worker_id: str, pid: int) -> str:
        """Put a process in its worker's group with the quota; returns '' or why it could not."""
        group = self.group(worker_id)
        if group is None:
            return self.reason
        quota = max(1000, int(self.cores * PERIOD_US))
        try:
            group.mkdir(exist_ok=True)
            if self.version == 1:
                (group / "cpu.cfs_period_us").write_text(str(PERIOD_US))
                (group / "cpu.cfs_quota_us").write_text(str(quota))
            else:
                (group / "cpu.max").write_text(f"{quota} {PERIOD_US}")
            (group / "cgroup.procs").write_text(str(pid))
        except OSError as exc:
            return f"CPU quota not applied to {worker_id}: {exc.strerror} ({group})"
        return ""

    def quota_of(self, worker_id: str) -> float | None:
        """The quota in cores that the kernel holds for a worker, read back from its group."""
        group = self.group(worker_id)
        if group is None:
            return None
        try:
            if self.version == 1:
                quota = int((group / "cpu.cfs_quota_us").read_text())
                period = int((group / "cpu.cfs_period_us").read_text())
            else:
                q, p = (group / "cpu.max").read_text().split()
                if q == "max":
                    return None
                quota, period = int(q), int(p)
        except (OSError, ValueError):
            return None
        return None if quota < 0 else quota / period

    def release(self, worker_id: str) -> None:
        """Remove a worker's group once its processes have exited (the kernel refuses while any remain)."""
        group = self.group(worker_id)
        if group is not None:
            with contextlib.suppress(OSError):
                group.rmdir()
