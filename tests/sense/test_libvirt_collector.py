"""The libvirt collector against libvirt's real test driver (no mocks).

What the test driver (libvirt 9.0) reports, which these tests rely on:
- `info()` cpuTime is the wall clock in ns, whatever the domain, so cpu.util is 1/vcpus (clamped to 1);
- `memoryStats()` needs a <memballoon>: actual = <currentMemory>, rss = actual / 2; without one it is empty;
- `interfaceStats()` counters grow with wall time: rx 100 000 B/s, tx 50 000 B/s per interface;
- `blockStats()` likewise: read 50 000 B/s, write 25 000 B/s per disk;
- interface targets are renamed testnet0, testnet1, ... when a domain starts;
- `getHostname()` is the real machine's host name, the same for every test:/// URI.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import libvirt
import pytest
from pydantic import ValidationError

from loadpilot.config import Config
from loadpilot.errors import MissingDependencyError, TemporaryError
from loadpilot.sense.collectors import build_collectors, check_collectors
from loadpilot.sense.collectors.base import Collection
from loadpilot.sense.collectors.libvirt import Devices, LibvirtCollector, LibvirtOptions

DATA = Path(__file__).parent / "data"
HOSTS = {"hv-a": DATA / "host-a.xml", "hv-b": DATA / "host-b.xml"}
DEFAULT_UUID = "6695eb01-f6a4-8304-79aa-97f2502e193f"  # the one domain of test:///default, "test"
TEST_NS = "{http://libvirt.org/schemas/domain/test/1.0}"
SHUTOFF = 5
PAUSE = 0.25
# Rates of the test driver's counters per device (they are wall-clock time in µs divided by a constant).
RX_PER_NIC, TX_PER_NIC, READ_PER_DISK, WRITE_PER_DISK = 100_000, 50_000, 50_000, 25_000
RATE_METRICS = ("net.rx_bytes_per_s", "net.tx_bytes_per_s", "disk.read_bytes_per_s", "disk.write_bytes_per_s")
REL = 0.3  # rates are over real time between two readings: allow for scheduling jitter


def uri_of(path: Path) -> str:
    """A test-driver URI for an XML file: test:///absolute/path.xml."""
    return f"test://{path.resolve()}"


@dataclass(frozen=True)
class Vm:
    """What a test-driver XML file says about one domain."""

    name: str
    uuid: str
    vcpus: int
    max_kib: int
    cur_kib: int
    state: int
    balloon: bool
    disks: int
    nics: int


def _count(devices: ET.Element | None, tag: str) -> int:
    return 0 if devices is None else len(devices.findall(tag))


def vms_in(path: Path) -> dict[str, Vm]:
    """The domains a test-driver XML file defines, by resource id."""
    out = {}
    for dom in ET.parse(path).getroot().findall("domain"):  # noqa: S314 - our own test data
        devices = dom.find("devices")
        vm = Vm(
            name=dom.findtext("name", ""),
            uuid=dom.findtext("uuid", ""),
            vcpus=int(dom.findtext("vcpu", "0")),
            max_kib=int(dom.findtext("memory", "0")),
            cur_kib=int(dom.findtext("currentMemory", "0")),
            state=int(dom.findtext(f"{TEST_NS}runstate", "1")),
            balloon=_count(devices, "memballoon") > 0,
            disks=_count(devices, "disk"),
            nics=_count(devices, "interface"),
        )
        out[f"vm/{vm.uuid}"] = vm
    return out


def metrics(found: Collection, rid: str) -> dict[str, float]:
    """The metrics of one resource in a collection; each metric must appear once."""
    names = [s.metric for s in found.samples if s.resource_id == rid]
    assert len(names) == len(set(names)), f"duplicate metrics for {rid}: {names}"
    return {s.metric: s.value for s in found.samples if s.resource_id == rid}


def two_readings(collector: LibvirtCollector) -> tuple[Collection, Collection]:
    """A priming reading and one PAUSE seconds later, both stamped with the real time."""
    first = collector.collect(time.time())
    time.sleep(PAUSE)
    return first, collector.collect(time.time())


@pytest.fixture
def make() -> Iterator[Callable[..., LibvirtCollector]]:
    """Builds collectors from option keys and closes them after the test."""
    made: list[LibvirtCollector] = []

    def build(host: str = "agent-1", **options: object) -> LibvirtCollector:
        collector = LibvirtCollector(LibvirtOptions.model_validate(options), host)
        made.append(collector)
        return collector

    yield build
    for collector in made:
        collector.close()


def test_default_driver_primes_then_reports_cpu(make: Callable[..., LibvirtCollector]) -> None:
    collector = make(uri="test:///default")
    first, second = two_readings(collector)
    rid = f"vm/{DEFAULT_UUID}"
    assert rid in {r.id for r in first.resources}
    assert not [s for s in first.samples if s.metric == "cpu.util"], "the first reading only primes"
    got = metrics(second, rid)
    assert 0.0 <= got["cpu.util"] <= 1.0
    assert got["cpu.util"] == pytest.approx(1 / 2, rel=REL)  # two vCPUs, cpu time = wall time
    assert got["state"] == libvirt.VIR_DOMAIN_RUNNING
    assert got["vcpus"] == 2
    assert got["mem.max_bytes"] == 8388608 * 1024
    assert got["mem.actual_bytes"] == 2097152 * 1024
    assert got["mem.rss_bytes"] == 1048576 * 1024
    assert got["mem.util"] == pytest.approx(0.5)
    units = {s.metric: s.unit for s in second.samples if s.resource_id == rid}
    assert units["cpu.util"] == "ratio" and units["mem.max_bytes"] == "bytes"
    assert units["net.rx_bytes_per_s"] == "bytes/s"


@pytest.mark.parametrize("label", sorted(HOSTS))
def test_each_host_reports_its_vms(make: Callable[..., LibvirtCollector], label: str) -> None:
    expected = vms_in(HOSTS[label])
    assert any(vm.state == SHUTOFF for vm in expected.values()), "each host file has a shut-off VM"
    collector = make(uri=uri_of(HOSTS[label]), host_label=label)
    first, second = two_readings(collector)

    for found in (first, second):
        assert {r.id for r in found.resources} == set(expected)
        for r in found.resources:
            vm = expected[r.id]
            assert r.kind == "vm"
            assert r.labels == {"host": label, "name": vm.name, "uuid": vm.uuid}
    assert not [s for s in first.samples if s.metric == "cpu.util" or s.metric in RATE_METRICS]

    for rid, vm in expected.items():
        got = metrics(second, rid)
        assert got["state"] == vm.state
        if vm.state == SHUTOFF:
            assert got == {"state": SHUTOFF}, f"{vm.name} is shut off: a state and nothing else"
            continue
        assert got["vcpus"] == vm.vcpus
        assert 0.0 <= got["cpu.util"] <= 1.0
        assert got["cpu.util"] == pytest.approx(min(1.0, 1 / vm.vcpus), rel=REL)
        assert got["mem.max_bytes"] == vm.max_kib * 1024
        if vm.balloon:
            assert got["mem.actual_bytes"] == vm.cur_kib * 1024
            assert got["mem.rss_bytes"] == vm.cur_kib // 2 * 1024
            assert got["mem.util"] == pytest.approx(0.5)
        else:  # no balloon: the test driver's memoryStats() is empty, so there is nothing to report
            assert not {"mem.actual_bytes", "mem.rss_bytes", "mem.util"} & got.keys()
        per_device = {
            "net.rx_bytes_per_s": RX_PER_NIC * vm.nics,
            "net.tx_bytes_per_s": TX_PER_NIC * vm.nics,
            "disk.read_bytes_per_s": READ_PER_DISK * vm.disks,
            "disk.write_bytes_per_s": WRITE_PER_DISK * vm.disks,
        }
        for metric, rate in per_device.items():
            if rate:
                assert got[metric] == pytest.approx(rate, rel=REL), f"{vm.name} {metric}"
            else:
                assert metric not in got, f"{vm.name} has no device for {metric}"


def test_hosts_are_independent_and_vm_ids_do_not_name_the_host(make: Callable[..., LibvirtCollector]) -> None:
    a = make(uri=uri_of(HOSTS["hv-a"]), host_label="hv-a").collect(time.time())
    b = make(uri=uri_of(HOSTS["hv-b"]), host_label="hv-b").collect(time.time())
    assert {r.id for r in a.resources} == set(vms_in(HOSTS["hv-a"]))
    assert {r.id for r in b.resources} == set(vms_in(HOSTS["hv-b"]))
    assert all(r.id.startswith("vm/") and "hv-" not in r.id for r in a.resources + b.resources)


def test_host_label_defaults_to_the_libvirt_host_name(make: Callable[..., LibvirtCollector]) -> None:
    uri = uri_of(HOSTS["hv-a"])
    conn = libvirt.openReadOnly(uri)
    try:
        hostname = conn.getHostname()
    finally:
        conn.close()
    found = make("agent-1", uri=uri).collect(time.time())
    assert found.resources
    assert {r.labels["host"] for r in found.resources} == {hostname}


def test_a_failing_device_is_skipped_and_libvirt_stays_quiet(
    make: Callable[..., LibvirtCollector], capfd: pytest.CaptureFixture[str]
) -> None:
    collector = make(uri=uri_of(HOSTS["hv-a"]))
    web1 = next(vm for vm in vms_in(HOSTS["hv-a"]).values() if vm.name == "web1")
    collector.collect(time.time())
    cached = collector._devices[web1.uuid]
    assert cached.disks == ("vda", "vdb") and cached.nics == ("testnet0", "testnet1")
    # Swap in names the driver does not know: it raises for them, the collector must carry on with the rest.
    bogus = Devices(cached.domain_id, ("vda", "nosuchdisk"), ("nosuchnic", "testnet0"))
    collector._devices[web1.uuid] = bogus
    dom = collector._conn.lookupByUUIDString(web1.uuid)
    for read, dev in ((dom.blockStats, "nosuchdisk"), (dom.interfaceStats, "nosuchnic")):
        with pytest.raises(libvirt.libvirtError):
            read(dev)
    capfd.readouterr()
    time.sleep(PAUSE)
    got = metrics(collector.collect(time.time()), f"vm/{web1.uuid}")
    assert got["net.rx_bytes_per_s"] == pytest.approx(RX_PER_NIC, rel=REL)  # testnet0 only
    assert got["disk.read_bytes_per_s"] == pytest.approx(READ_PER_DISK, rel=REL)  # vda only
    assert "libvirt" not in capfd.readouterr().err, "libvirt's default error printing must be off"


def test_device_lists_are_parsed_once_per_domain(make: Callable[..., LibvirtCollector]) -> None:
    collector = make(uri=uri_of(HOSTS["hv-b"]))
    collector.collect(time.time())
    before = dict(collector._devices)
    assert len(before) == 3  # the running and paused domains; the shut-off one has no devices to read
    collector.collect(time.time())
    assert all(collector._devices[uuid] is devices for uuid, devices in before.items())


TRANSIENT_XML = """<domain type='test'>
  <name>transient1</name><uuid>c0000000-0000-4000-8000-000000000001</uuid>
  <memory unit='KiB'>524288</memory><vcpu>1</vcpu><os><type>hvm</type></os>
  <devices><disk type='file' device='disk'><source file='/t.img'/><target dev='vda'/></disk></devices>
</domain>"""


def test_a_vm_that_left_is_forgotten(make: Callable[..., LibvirtCollector]) -> None:
    rid = "vm/c0000000-0000-4000-8000-000000000001"
    rw = libvirt.open("test:///default")  # the default driver's state is shared by its connections
    try:
        collector = make(uri="test:///default")
        dom = rw.createXML(TRANSIENT_XML)
        _, second = two_readings(collector)
        assert "cpu.util" in metrics(second, rid)
        dom.destroy()  # a transient domain is gone once destroyed
        gone = collector.collect(time.time())
        assert rid not in {r.id for r in gone.resources}
        assert not metrics(gone, rid)
        dom = rw.createXML(TRANSIENT_XML)
        time.sleep(PAUSE)
        back = metrics(collector.collect(time.time()), rid)
        # Had its counters been kept, this reading would have produced rates; forgotten, it primes again.
        assert back["state"] == libvirt.VIR_DOMAIN_RUNNING
        assert "cpu.util" not in back and "disk.read_bytes_per_s" not in back
    finally:
        with contextlib.suppress(libvirt.libvirtError):  # already gone when the test passed
            rw.lookupByName("transient1").destroy()
        rw.close()


def test_reconnects_once_then_raises_temporary_error(make: Callable[..., LibvirtCollector], tmp_path: Path) -> None:
    path = tmp_path / "host.xml"
    shutil.copy(HOSTS["hv-a"], path)
    collector = make(uri=uri_of(path))
    assert len(collector.collect(time.time()).resources) == 3
    collector._conn.close()  # the connection breaks (libvirtd restarted, say)
    assert len(collector.collect(time.time()).resources) == 3
    collector._conn.close()
    path.unlink()  # and this time reconnecting fails too
    with pytest.raises(TemporaryError, match=str(path)):
        collector.collect(time.time())


@pytest.mark.parametrize("uri", ["test:///nonexistent/dir/host.xml", "nosuchdriver:///nowhere"])
def test_a_bad_uri_raises_temporary_error_naming_it(uri: str) -> None:
    with pytest.raises(TemporaryError) as info:
        LibvirtCollector(LibvirtOptions(uri=uri), "agent-1")
    assert uri in str(info.value)


def test_unknown_option_keys_fail_validation() -> None:
    with pytest.raises(ValidationError, match="host_lable"):
        LibvirtOptions.model_validate({"uri": "test:///default", "host_lable": "x"})
    config = Config.model_validate(
        {"agent": {"collectors": [{"type": "libvirt", "uri": "test:///default", "urls": "x"}]}}
    )
    assert [p.split(":")[0] for p in check_collectors(config)] == ["agent.collectors[0].urls"]


def test_built_from_config_through_the_entry_point() -> None:
    config = Config.model_validate(
        {"agent": {"collectors": [{"type": "libvirt", "uri": uri_of(HOSTS["hv-b"]), "host_label": "hv-b"}]}}
    )
    [collector] = build_collectors(config)
    try:
        assert isinstance(collector, LibvirtCollector)
        assert {r.labels["host"] for r in collector.collect(time.time()).resources} == {"hv-b"}
    finally:
        collector.close()


def test_missing_libvirt_raises_missing_dependency(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "libvirt", None)  # what `import libvirt` sees when it is not installed
    with pytest.raises(MissingDependencyError, match=r"loadpilot\[libvirt\]"):
        LibvirtCollector(LibvirtOptions(uri="test:///default"), "agent-1")
