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
    cores = psutil.cpu_count() or 1
    host = HostCollector(HostOptions(per_core=False, network=False, disk=False), host="h1")
    host.collect(time.time())
    time.sleep(0.5)
    idle = {s.metric: s.value for s in host.collect(time.time()).samples}["cpu.util"]
    burner = subprocess.Popen([sys.executable, "-c", BURN])
    try:
        time.sleep(0.3)
        host.collect(time.time())
        time.sleep(1.0)
        busy = {s.metric: s.value for s in host.collect(time.time()).samples}["cpu.util"]
    finally:
        burner.kill()
        burner.wait()
    # One busy process is one core's worth of the machine.
    assert busy - idle == pytest.approx(1 / cores, abs=0.2)


def test_options_reject_unknown_keys() -> None:
    with pytest.raises(ValueError, match="extra"):
        HostOptions.model_validate({"per_cores": True})
