"""CPU quotas through the machine's real cgroup hierarchy, and a clear word where there is none."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from loadpilot.act.pool.cgroup import CGROUP_ROOT, CpuQuota


def test_without_a_cgroup_fs_the_quota_says_why(tmp_path) -> None:
    quota = CpuQuota("web", 0.5, root=tmp_path)
    assert not quota.active
    assert "unsupported here" in quota.reason
    assert quota.apply("web-0.1", 1) == quota.reason


def test_no_quota_asked_is_not_an_error() -> None:
    assert CpuQuota("web", 0.0).reason == "no CPU quota asked (cpu_quota = 0)"


def test_a_worker_is_held_to_its_cfs_quota(tmp_path: Path) -> None:
    """This machine has cgroup v1's cpu controller (as the issue states): the quota must really apply."""
    quota = CpuQuota(f"test-{tmp_path.name}", 0.25, root=CGROUP_ROOT)
    assert quota.active, quota.reason
    spin = "import time\nend = time.time() + 30\nwhile time.time() < end: pass"
    child = subprocess.Popen([sys.executable, "-c", spin])
    try:
        assert quota.apply("w-0.1", child.pid) == ""
        assert quota.quota_of("w-0.1") == pytest.approx(0.25)
        group = quota.group("w-0.1")
        assert group is not None and str(child.pid) in (group / "cgroup.procs").read_text().split()
        proc = psutil.Process(child.pid)
        before, start = sum(proc.cpu_times()[:2]), time.monotonic()
        time.sleep(1.0)
        used = (sum(proc.cpu_times()[:2]) - before) / (time.monotonic() - start)
        assert used < 0.4, f"a busy loop limited to 0.25 cores used {used:.2f}"
    finally:
        child.kill()
        child.wait()
        quota.release("w-0.1")
        assert quota.group("w-0.1") is not None and not quota.group("w-0.1").exists()  # type: ignore[union-attr]
        quota.base.rmdir()  # type: ignore[union-attr]
