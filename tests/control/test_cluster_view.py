"""The ClusterView of a real cluster: libvirt's test driver for the inventory, a real SQLite store for the VMs'
CPU samples (as the libvirt collector writes them)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest

from loadpilot.act.fencing import EpochFence
from loadpilot.act.vm.base import MigrationSlots
from loadpilot.act.vm.libvirt import LibvirtCluster, LibvirtHost
from loadpilot.control.cluster_view import InventoryView
from loadpilot.model import Batch, Sample
from loadpilot.store import Store

DATA = Path(__file__).resolve().parents[1] / "act" / "vm" / "data"
WEB1 = "c0000000-0000-4000-8000-000000000001"
DB1 = "c0000000-0000-4000-8000-000000000002"
GIB = 1024**3


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LibvirtCluster]:
    hosts = [LibvirtHost(n, f"test://{DATA / f'{n}.xml'}") for n in ("hv1", "hv2")]
    c = LibvirtCluster("test", hosts, EpochFence(tmp_path / "epoch.json", "t"), MigrationSlots(), "emulate")
    yield c
    c.close()


def test_the_view_has_the_inventory_and_one_mean_per_interval_newest_first(
    cluster: LibvirtCluster, store: Store
) -> None:
    at = 6000.0
    samples = [
        Sample(f"vm/{WEB1}", "cpu.util", value, t, "ratio")
        for t, value in ((at - 30, 0.8), (at - 50, 0.6), (at - 90, 0.2), (at - 150, 0.5), (at + 10, 0.99))
    ]
    store.write_batch(Batch("b", "agent", 10.0, tuple(samples)))
    view = InventoryView(cluster, store, 60.0, "hp-ml110-g5", bandwidth_mib_s=1024)(at + 20)
    assert view.observed_at == at  # the interval's start: a sample after it waits for the next view
    assert {h.id: (h.cpu, h.memory) for h in view.hosts} == {"hv1": (4.0, 16 * GIB), "hv2": (8.0, 32 * GIB)}
    vms = {v.id: v for v in view.vms}
    assert set(vms) == {WEB1, DB1, "c0000000-0000-4000-8000-000000000011"}  # old1 is shut off: no load, no memory
    web1 = vms[WEB1]
    assert web1.history == pytest.approx((0.7, 0.2, 0.5))
    assert web1.cpu_request == pytest.approx(2 * 0.7) and web1.cpu_size == 2.0
    assert web1.migration_s == pytest.approx(2.0)  # 2 GiB at 1 GiB/s
    assert vms[DB1].history == () and vms[DB1].cpu_request == 0.0  # no sample yet: asks for nothing
    hv1 = next(h for h in view.hosts if h.id == "hv1")
    assert hv1.utilisation == pytest.approx(1.4 / 4)


def test_a_vm_caught_mid_migration_counts_once_on_its_source(cluster: LibvirtCluster, store: Store) -> None:
    cache1 = "c0000000-0000-4000-8000-000000000011"  # on hv2, migrating to hv1 (listed first)
    source = cluster._conn("hv2").lookupByUUIDString(cache1)
    incoming = cluster._conn("hv1").defineXML(source.XMLDesc(libvirt.VIR_DOMAIN_XML_MIGRATABLE))
    incoming.create()
    incoming.suspend()  # what a live migration's target holds until the switch-over
    assert {d.host for d in cluster.domains("hv1") + cluster.domains("hv2") if d.id == cache1} == {"hv1", "hv2"}
    view = InventoryView(cluster, store, 60.0, "hp-ml110-g5")(6000.0)
    assert [v.host for v in view.vms if v.id == cache1] == ["hv2"]
