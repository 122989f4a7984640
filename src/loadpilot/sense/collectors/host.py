"""The host collector: CPU (total and per core), memory, load, network and disk rates, from psutil."""

from __future__ import annotations

import os
from typing import Any, ClassVar

import psutil

from loadpilot.model import Resource
from loadpilot.sense.collectors.base import Collection, CollectorOptions, Rates

SOURCE = "host"


class HostOptions(CollectorOptions):
    """`type = "host"`: which parts of the host to sample."""

    per_core: bool = True
    network: bool = True
    disk: bool = True


def busy_and_total(times: Any) -> tuple[float, float]:
    """Busy and total jiffies of a /proc/stat line, as seconds.

    Busy is user+nice+system+irq+softirq+steal; idle and iowait are not busy. Guest time is already inside
    user and nice on Linux, so it is not added again.
    """
    busy = (
        times.user
        + times.nice
        + times.system
        + getattr(times, "irq", 0.0)
        + getattr(times, "softirq", 0.0)
        + getattr(times, "steal", 0.0)
    )
    return busy, busy + times.idle + getattr(times, "iowait", 0.0)


class CpuMeter:
    """Utilisation from successive /proc/stat readings; the first reading primes."""

    def __init__(self) -> None:
        self._last: list[tuple[float, float]] | None = None

    def read(self) -> tuple[float | None, list[float]]:
        """Total utilisation (0..1) and per-core utilisations since the last call."""
        now = [busy_and_total(t) for t in [psutil.cpu_times(), *psutil.cpu_times(percpu=True)]]
        last, self._last = self._last, now
        if last is None or len(last) != len(now):
            return None, []
        utils = []
        for (b1, t1), (b0, t0) in zip(now, last, strict=True):
            dt = t1 - t0
            utils.append(min(1.0, max(0.0, (b1 - b0) / dt)) if dt > 0 else 0.0)
        return utils[0], utils[1:]


class HostCollector:
    """Samples the machine the agent runs on."""

    Options: ClassVar[type[CollectorOptions]] = HostOptions

    def __init__(self, options: CollectorOptions, host: str) -> None:
        assert isinstance(options, HostOptions)
        self.options = options
        self.host = host
        self.resource = Resource(
            host, "host", {"host": host, "cores": str(psutil.cpu_count() or 1), "os": os.uname().sysname}
        )
        self._cpu = CpuMeter()
        self._rates = Rates()

    def collect(self, now: float) -> Collection:
        """One reading of the host."""
        out = Collection(resources=[self.resource])
        rid, add = self.host, out.add
        total, cores = self._cpu.read()
        if total is not None:
            add(rid, "cpu.util", total, now, "ratio", SOURCE)
            if self.options.per_core:
                for i, util in enumerate(cores):
                    add(rid, f"cpu.util.core{i}", util, now, "ratio", SOURCE)
        mem = psutil.virtual_memory()
        add(rid, "mem.total_bytes", mem.total, now, "bytes", SOURCE)
        add(rid, "mem.used_bytes", mem.total - mem.available, now, "bytes", SOURCE)
        add(rid, "mem.available_bytes", mem.available, now, "bytes", SOURCE)
        add(
            rid,
            "mem.util",
            (mem.total - mem.available) / mem.total if mem.total else 0.0,
            now,
            "ratio",
            SOURCE,
        )
        for name, value in zip(("load1", "load5", "load15"), os.getloadavg(), strict=True):
            add(rid, name, value, now, "", SOURCE)
        counters: list[tuple[str, float]] = []
        if self.options.network:
            net = psutil.net_io_counters()
            counters += [("net.rx_bytes_per_s", net.bytes_recv), ("net.tx_bytes_per_s", net.bytes_sent)]
        if self.options.disk:
            disk = psutil.disk_io_counters()
            if disk is not None:
                counters += [
                    ("disk.read_bytes_per_s", disk.read_bytes),
                    ("disk.write_bytes_per_s", disk.write_bytes),
                ]
        for metric, counter in counters:
            rate = self._rates.rate(metric, float(counter), now)
            if rate is not None:
                add(rid, metric, rate, now, "bytes/s", SOURCE)
        return out

    def close(self) -> None:
        """Nothing to release."""
