"""The host collector on this very machine."""

from __future__ import annotations

import subprocess
import sys
import time
from types import SimpleNamespace

import psutil
import pytest

from loadpilot.sense.collectors.host import HostCollector, HostOptions, busy_and_total

BURN = "import time\nend = time.time() + 30\nwhile time.time() < end: pass"


def test_busy_counts_steal_and_irq_but_not_idle_or_iowait() -> None:
    t = SimpleNamespace(user=1, nice=2, system=3, idle=100, iowait=50, irq=4, softirq=5, steal=6, guest=1)
    assert busy_and_total(t) == (21, 171)


def test_first_reading_primes_then_every_metric_is_there() -> None:
    host = HostCollector(HostOptions(), host="h1")
    first = {s.metric for s in host.collect(time.time()).samples}
    assert "cpu.util" not in first and "net.rx_bytes_per_s" not in first
    assert {"mem.used_bytes", "mem.util", "load1"} <= first
    time.sleep(0.3)
    second = host.collect(time.time())
    metrics = {s.metric: s for s in second.samples}
    cores = psutil.cpu_count()
    assert {f"cpu.util.core{i}" for i in range(cores)} <= metrics.keys()
    assert {"cpu.util", "net.rx_bytes_per_s", "disk.write_bytes_per_s"} <= metrics.keys()
    assert all(0.0 <= metrics[m].value <= 1.0 for m in metrics if m.startswith("cpu.util"))
    assert metrics["mem.total_bytes"].value == psutil.virtual_memory().total
    assert second.resources[0].id == "h1" and second.resources[0].kind == "host"


def test_cpu_utilisation_follows_a_real_busy_process() -> None:
    """The machine's utilisation over a window includes at least what a busy child burnt in it (the child's own
    CPU time, from the kernel), however busy the rest of the machine is."""
    cores = psutil.cpu_count() or 1
    host = HostCollector(HostOptions(per_core=False, network=False, disk=False), host="h1")
    burner = subprocess.Popen([sys.executable, "-c", BURN])
    try:
        child = psutil.Process(burner.pid)
        time.sleep(0.3)
        host.collect(time.time())
        began, burnt_before = time.monotonic(), sum(child.cpu_times()[:2])
        time.sleep(1.0)
        util = {s.metric: s.value for s in host.collect(time.time()).samples}["cpu.util"]
        share = (sum(child.cpu_times()[:2]) - burnt_before) / ((time.monotonic() - began) * cores)
    finally:
        burner.kill()
        burner.wait()
    assert share > 0.1 / cores  # the child did burn (a tenth of a core at least, even on a loaded machine)
    assert share - 0.05 <= util <= 1.0


def test_options_reject_unknown_keys() -> None:
    with pytest.raises(ValueError, match="extra"):
        HostOptions.model_validate({"per_cores": True})
