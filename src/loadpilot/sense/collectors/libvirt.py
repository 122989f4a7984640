"""The libvirt collector: CPU, memory, network and disk of every VM on one hypervisor, from libvirt.

libvirt-python is an optional dependency (`pip install 'loadpilot[libvirt]'`), imported when the collector is
built. The connection is read-only: collectors observe, they never act.
"""

from __future__ import annotations

import contextlib
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import Field

from loadpilot.errors import MissingDependencyError, TemporaryError
from loadpilot.model import Resource
from loadpilot.sense.collectors.base import Collection, CollectorOptions, Rates

SOURCE = "libvirt"
KIB = 1024


class LibvirtOptions(CollectorOptions):
    """`type = "libvirt"`: which hypervisor to watch, and the host name to label its VMs with."""

    uri: str = Field(default="qemu:///system", min_length=1)
    host_label: str | None = Field(default=None, min_length=1)  # None: what libvirt says the host is called


@dataclass(frozen=True)
class Devices:
    """The target device names of one running domain's disks and network interfaces."""

    domain_id: int
    disks: tuple[str, ...]
    nics: tuple[str, ...]


def parse_devices(xml: str, domain_id: int) -> Devices:
    """The `<target dev=...>` names of the `<disk>` and `<interface>` elements of a domain's XML."""
    devices = ET.fromstring(xml).find("devices")  # noqa: S314 - XML from the local libvirt daemon

    def targets(tag: str) -> tuple[str, ...]:
        if devices is None:
            return ()
        found = (el.find("target") for el in devices.findall(tag))
        return tuple(t.get("dev", "") for t in found if t is not None and t.get("dev"))

    return Devices(domain_id, targets("disk"), targets("interface"))


class LibvirtCollector:
    """Samples every domain (VM) of one libvirt connection; domains may come and go between readings."""

    Options: ClassVar[type[CollectorOptions]] = LibvirtOptions

    def __init__(self, options: CollectorOptions, host: str) -> None:
        assert isinstance(options, LibvirtOptions)
        try:
            import libvirt
        except ImportError:
            raise MissingDependencyError("the libvirt collector", "libvirt") from None
        self.options = options
        self._lv: Any = libvirt
        # libvirt prints every error to stderr by default; we turn them into exceptions and log those instead.
        libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
        self._conn: Any = self._connect()
        self.host = options.host_label or self._hostname(host)
        self._rates = Rates()
        self._devices: dict[str, Devices] = {}  # uuid -> device names, parsed once per domain start

    def _connect(self) -> Any:
        try:
            return self._lv.openReadOnly(self.options.uri)
        except self._lv.libvirtError as exc:
            raise TemporaryError(
                f"cannot connect to libvirt at {self.options.uri!r}: {exc.get_error_message()}; "
                "check the uri and that libvirtd is running and readable by this user"
            ) from None

    def _hostname(self, fallback: str) -> str:
        try:
            return str(self._conn.getHostname())
        except self._lv.libvirtError:
            return fallback

    def _alive(self) -> bool:
        try:
            return bool(self._conn.isAlive())
        except self._lv.libvirtError:
            return False

    def _list_domains(self) -> list[Any]:
        """All domains, reconnecting once if the connection broke since the last reading."""
        if self._alive():
            try:
                return list(self._conn.listAllDomains())
            except self._lv.libvirtError:
                pass
        self.close()
        self._conn = self._connect()
        try:
            return list(self._conn.listAllDomains())
        except self._lv.libvirtError as exc:
            raise TemporaryError(f"cannot list domains at {self.options.uri!r}: {exc}") from None

    def collect(self, now: float) -> Collection:
        """One reading of every domain: a state for each, and usage for the running ones."""
        out = Collection()
        seen: set[str] = set()
        live: set[str] = set()
        for dom in self._list_domains():
            try:
                self._domain(dom, now, out, seen, live)
            except self._lv.libvirtError as exc:
                if not self._alive():
                    msg = f"lost the libvirt connection to {self.options.uri!r}: {exc}"
                    raise TemporaryError(msg) from None
                # Any other error is about this domain alone (it was undefined mid-reading, say): skip it.
        self._rates.forget_except(seen)
        self._devices = {uuid: devs for uuid, devs in self._devices.items() if uuid in live}
        return out

    def _domain(self, dom: Any, now: float, out: Collection, seen: set[str], live: set[str]) -> None:
        uuid, name = str(dom.UUIDString()), str(dom.name())
        state, max_kib, _cur_kib, vcpus, cpu_ns = dom.info()
        # Keyed by UUID, not by host and name: the UUID stays the same when the VM migrates to another host,
        # so its history follows it; the host it runs on now is a label.
        rid = f"vm/{uuid}"
        resource = Resource(rid, "vm", {"host": self.host, "name": name, "uuid": uuid})
        add = out.add
        if not dom.isActive():
            out.resources.append(resource)
            add(rid, "state", state, now, "", SOURCE)
            return
        devices = self._devices.get(uuid)
        domain_id = int(dom.ID())
        if devices is None or devices.domain_id != domain_id:  # new, or restarted: device names may differ
            devices = self._devices[uuid] = parse_devices(dom.XMLDesc(0), domain_id)
        try:
            mem: dict[str, int] = dom.memoryStats()  # empty without a balloon device; drivers may lack it
        except self._lv.libvirtError:
            mem = {}
        out.resources.append(resource)
        live.add(uuid)
        add(rid, "state", state, now, "", SOURCE)
        add(rid, "vcpus", vcpus, now, "", SOURCE)
        key = f"{rid}/cpu"
        seen.add(key)
        rate = self._rates.rate(key, float(cpu_ns), now)
        if rate is not None and vcpus > 0:
            add(rid, "cpu.util", min(1.0, max(0.0, rate / (vcpus * 1e9))), now, "ratio", SOURCE)
        add(rid, "mem.max_bytes", max_kib * KIB, now, "bytes", SOURCE)
        actual, rss = mem.get("actual"), mem.get("rss")
        if actual is not None:
            add(rid, "mem.actual_bytes", actual * KIB, now, "bytes", SOURCE)
        if rss is not None:
            add(rid, "mem.rss_bytes", rss * KIB, now, "bytes", SOURCE)
        if actual and rss is not None:
            add(rid, "mem.util", rss / actual, now, "ratio", SOURCE)
        # interfaceStats: (rx_bytes, rx_packets, rx_errs, rx_drop, tx_bytes, ...);
        # blockStats: (rd_req, rd_bytes, wr_req, wr_bytes, errs).
        io = (
            (dom.interfaceStats, devices.nics, (("net.rx_bytes_per_s", 0), ("net.tx_bytes_per_s", 4))),
            (dom.blockStats, devices.disks, (("disk.read_bytes_per_s", 1), ("disk.write_bytes_per_s", 3))),
        )
        for read, devs, fields in io:
            totals: dict[str, float] = {}
            for dev in devs:
                try:
                    stats = read(dev)
                except self._lv.libvirtError:
                    continue  # one device failing to report is not worth losing the others
                for metric, index in fields:
                    # One rate per device, then summed: a device missing for a tick cannot fake a spike.
                    key = f"{rid}/{metric}/{dev}"
                    seen.add(key)
                    dev_rate = self._rates.rate(key, float(stats[index]), now)
                    if dev_rate is not None:
                        totals[metric] = totals.get(metric, 0.0) + dev_rate
            for metric, total in totals.items():
                add(rid, metric, total, now, "bytes/s", SOURCE)

    def close(self) -> None:
        """Close the libvirt connection."""
        with contextlib.suppress(self._lv.libvirtError):
            self._conn.close()
