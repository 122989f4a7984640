"""Reading a process from /proc/<pid>/stat agrees with psutil, even for odd names."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import psutil
import pytest

from loadpilot.sense.collectors.procstat import ProcessGone, _read_with_psutil, read_stat
from tests.helpers import wait_for


def test_agrees_with_psutil_on_this_process() -> None:
    sum(i * i for i in range(300_000))  # some CPU time to read
    mine = read_stat(os.getpid())
    proc = psutil.Process()
    with proc.oneshot():
        cpu = proc.cpu_times()
        expected = (cpu.user + cpu.system, proc.memory_info().rss)
    assert mine.cpu_s == pytest.approx(expected[0], abs=0.05)
    assert mine.rss_bytes == pytest.approx(expected[1], rel=0.05)
    assert mine.name == Path("/proc/self/comm").read_text().strip()
    fallback = _read_with_psutil(os.getpid())
    assert fallback.cpu_s == pytest.approx(mine.cpu_s, abs=0.05)


def test_a_name_with_spaces_and_parentheses(tmp_path: Path) -> None:
    odd = tmp_path / "a (b) c"
    shutil.copy(shutil.which("sleep") or "/bin/sleep", odd)
    child = subprocess.Popen([str(odd), "30"])
    try:
        # Until the child has exec'd, it still carries the test runner's name.
        assert wait_for(lambda: read_stat(child.pid).name == "a (b) c", timeout=5)
        stat = read_stat(child.pid)
        assert stat.rss_bytes >= 0 and stat.cpu_s >= 0  # a process just exec'd may not have its RSS counted yet
    finally:
        child.kill()
        child.wait()
    with pytest.raises(ProcessGone):
        read_stat(child.pid)
