"""Reading /proc/stat as the host collector does, and holding resident memory."""

from __future__ import annotations

import time
from pathlib import Path

import psutil
import pytest

from loadpilot.errors import PermanentError
from loadpilot.loadgen.cpustat import TICKS_PER_S, CpuTimes, parse_cpu_line, read_cpu_times, utilisation
from loadpilot.loadgen.memory import ResidentMemory


def test_busy_counts_user_nice_system_irq_softirq_steal_not_idle_iowait_or_guest() -> None:
    #                    user nice system idle iowait irq softirq steal guest guest_nice
    times = parse_cpu_line("cpu  100 20 30 1000 50 5 6 7 40 2")
    assert times.busy == pytest.approx((100 + 20 + 30 + 5 + 6 + 7) / TICKS_PER_S)
    assert times.total == pytest.approx((100 + 20 + 30 + 5 + 6 + 7 + 1000 + 50) / TICKS_PER_S)


def test_an_old_kernel_without_steal_or_irq_fields() -> None:
    times = parse_cpu_line("cpu 10 0 10 80")
    assert times.busy == pytest.approx(20 / TICKS_PER_S) and times.total == pytest.approx(100 / TICKS_PER_S)


def test_not_the_aggregate_line_or_no_file(tmp_path: Path) -> None:
    with pytest.raises(PermanentError, match="cpu"):
        parse_cpu_line("cpu0 1 2 3 4")
    with pytest.raises(PermanentError, match="Linux"):
        read_cpu_times(tmp_path / "missing")


def test_utilisation_between_two_readings() -> None:
    assert utilisation(CpuTimes(10, 100), CpuTimes(13, 104)) == pytest.approx(0.75)
    assert utilisation(CpuTimes(10, 100), CpuTimes(10, 100)) == 0.0


def test_agrees_with_psutil_on_this_machine() -> None:
    before, ps_before = read_cpu_times(), psutil.cpu_times()
    time.sleep(0.3)
    after, ps_after = read_cpu_times(), psutil.cpu_times()
    assert after.busy >= before.busy and after.total > before.total
    ours = utilisation(before, after)
    ps_busy = sum(
        getattr(ps_after, f) - getattr(ps_before, f) for f in ("user", "nice", "system", "irq", "softirq", "steal")
    )
    ps_total = ps_busy + (ps_after.idle - ps_before.idle) + (ps_after.iowait - ps_before.iowait)
    assert ours == pytest.approx(ps_busy / ps_total, abs=0.05)  # the two reads are a moment apart


def test_resident_memory_counts_in_rss_and_is_given_back() -> None:
    me = psutil.Process()
    before = me.memory_info().rss
    held = ResidentMemory(64 * 2**20)
    held.touch()
    grown = me.memory_info().rss - before
    held.close()
    assert 60 * 2**20 <= grown <= 72 * 2**20
    assert me.memory_info().rss - before < 8 * 2**20
