"""The libvirt actuator against libvirt's real test driver: two hosts, one test:///<xml> connection each.

The test driver has no migration, so these tests select the emulated one explicitly (migration = "emulate": the
migratable XML defined and started on the target, the source destroyed and undefined); with the default "live",
libvirt's own migrateToURI3 is called and the test driver's refusal is reported with what to do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import libvirt
import pytest

from loadpilot.act.fencing import EpochFence
from loadpilot.act.vm.base import MigrationLimitError, MigrationSlots, VmNotFoundError
from loadpilot.act.vm.libvirt import LibvirtCluster, LibvirtHost, MigrationMode
from loadpilot.errors import PermanentError, StaleEpochError, TemporaryError
from loadpilot.model import Migrate, Resize

DATA = Path(__file__).parent / "data"
GIB = 1024**3
WEB1 = "c0000000-0000-4000-8000-000000000001"
DB1 = "c0000000-0000-4000-8000-000000000002"
OLD1 = "c0000000-0000-4000-8000-000000000003"


def hosts() -> list[LibvirtHost]:
    return [LibvirtHost(name, f"test://{(DATA / f'{name}.xml').resolve()}") for name in ("hv1", "hv2")]


Factory = Callable[..., LibvirtCluster]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Factory]:
    made: list[LibvirtCluster] = []

    def make(
        migration: MigrationMode = "emulate", total: int | None = None, per_host: int | None = None
    ) -> LibvirtCluster:
        fence = EpochFence(tmp_path / "epoch.json", "cluster test")
        c = LibvirtCluster("test", hosts(), fence, MigrationSlots(total, per_host), migration, bandwidth_mib_s=64)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def names(c: LibvirtCluster, host: str) -> set[str]:
    return {d.name for d in c.domains(host)}


def test_hosts_and_their_domains_are_listed_from_libvirt(cluster: Factory) -> None:
    c = cluster()
    assert {(h.id, h.cpus, h.memory) for h in c.hosts()} == {("hv1", 4, 16 * GIB), ("hv2", 8, 32 * GIB)}
    web1 = {d.name: d for d in c.domains("hv1")}
    assert set(web1) == {"web1", "db1", "old1"}
    assert (web1["web1"].id, web1["web1"].vcpus, web1["web1"].memory, web1["web1"].running) == (WEB1, 2, 2 * GIB, True)
    assert not web1["old1"].running
    assert names(c, "hv2") == {"cache1"}
    with pytest.raises(VmNotFoundError, match="no host 'hv9'"):
        c.domains("hv9")


def test_an_emulated_migration_moves_the_domain_and_reports_its_progress(cluster: Factory) -> None:
    c = cluster()
    started = c.migrate(Migrate(WEB1, "hv1", "hv2", "hv1 overloaded", epoch=3))
    assert (started.vm, started.state) == (WEB1, "running")
    done = c.wait(WEB1, timeout=10)
    assert done is not None and done.state == "completed", done
    assert done.data_processed == done.data_total == 2 * GIB and done.fraction == 1.0
    assert names(c, "hv1") == {"db1", "old1"}
    moved = {d.name: d for d in c.domains("hv2")}["web1"]
    assert (moved.id, moved.vcpus, moved.memory, moved.running) == (WEB1, 2, 2 * GIB, True)
    [report] = c.migrations()
    assert report.state == "completed" and report.vm == WEB1
    assert c.migrations() == []  # a finished migration is reported once
    assert c.book.slots.in_flight() == {}


def test_a_shut_off_domain_moves_as_a_definition(cluster: Factory) -> None:
    c = cluster()
    c.migrate(Migrate("old1", "hv1", "hv2", "evacuate"))
    assert c.wait("old1", timeout=10).state == "completed"  # type: ignore[union-attr]
    old1 = {d.name: d for d in c.domains("hv2")}["old1"]
    assert old1.id == OLD1 and not old1.running
    assert "old1" not in names(c, "hv1")


def test_the_live_migration_is_libvirts_and_the_test_driver_refusal_says_what_to_do(cluster: Factory) -> None:
    c = cluster(migration="live")
    c.migrate(Migrate(WEB1, "hv1", "hv2", "r"))
    failed = c.wait(WEB1, timeout=10)
    assert failed is not None and failed.state == "failed"
    assert "migration = 'emulate'" in failed.error
    assert "web1" in names(c, "hv1") and "web1" not in names(c, "hv2")  # nothing moved
    assert c.book.slots.in_flight() == {}  # the slot is free again


def test_an_action_of_an_older_epoch_is_refused_and_moves_nothing(cluster: Factory) -> None:
    c = cluster()
    c.migrate(Migrate(DB1, "hv1", "hv2", "r", epoch=5))
    c.wait(DB1, timeout=10)
    with pytest.raises(StaleEpochError, match="epoch 4; epoch 5 has acted"):
        c.migrate(Migrate(WEB1, "hv1", "hv2", "stale", epoch=4))
    with pytest.raises(StaleEpochError):
        c.resize(Resize(WEB1, "stale", vcpus=1, epoch=4))
    assert "web1" in names(c, "hv1")
    assert {d.name: d.vcpus for d in c.domains("hv1")}["web1"] == 2
    assert c.book.slots.in_flight() == {}


def test_the_limits_on_concurrent_migrations_hold_in_the_actuator(cluster: Factory) -> None:
    c = cluster(total=2, per_host=1)
    c.book.slots.reserve("elsewhere", "hv2", "hv3")  # another migration in flight, leaving hv2
    with pytest.raises(MigrationLimitError, match="on hv2, its limit"):
        c.migrate(Migrate(WEB1, "hv1", "hv2", "r"))
    c.book.slots.reserve("other", "hv4", "hv5")
    with pytest.raises(MigrationLimitError, match="2 migrations in flight, the cluster's limit"):
        c.migrate(Migrate(DB1, "hv1", "hv2", "r"))
    assert names(c, "hv1") == {"web1", "db1", "old1"}
    c.book.slots.release("elsewhere")
    c.book.slots.release("other")
    c.migrate(Migrate(WEB1, "hv1", "hv2", "r"))
    assert c.wait(WEB1, timeout=10).state == "completed"  # type: ignore[union-attr]


def test_a_migration_that_names_the_wrong_host_or_vm_is_permanent(cluster: Factory) -> None:
    c = cluster()
    with pytest.raises(VmNotFoundError, match="no VM 'cache1' on host hv1"):
        c.migrate(Migrate("cache1", "hv1", "hv2", "r"))
    with pytest.raises(VmNotFoundError, match="no host 'hv7'"):
        c.migrate(Migrate(WEB1, "hv1", "hv7", "r"))
    with pytest.raises(PermanentError, match="the target is its source"):
        c.migrate(Migrate(WEB1, "hv1", "hv1", "r"))


def test_resize_sets_vcpus_and_memory_live_and_in_the_definition(cluster: Factory) -> None:
    c = cluster()
    c.resize(Resize(WEB1, "busy", vcpus=4, memory=3 * GIB, epoch=1))
    web1 = {d.name: d for d in c.domains("hv1")}["web1"]
    assert (web1.vcpus, web1.memory) == (4, 3 * GIB)
    conn = c._conn("hv1")
    inactive = conn.lookupByUUIDString(WEB1).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    assert "<currentMemory unit='KiB'>3145728</currentMemory>" in inactive
    assert "current='4'" in inactive or ">4</vcpu>" in inactive
    with pytest.raises(PermanentError, match="within the domain's maximum"):
        c.resize(Resize(WEB1, "too big", vcpus=8))
    with pytest.raises(PermanentError, match="give vcpus, memory or both"):
        c.resize(Resize(WEB1, "nothing"))
    with pytest.raises(VmNotFoundError):
        c.resize(Resize("nope", "r", vcpus=1))


def test_a_host_that_cannot_be_reached_is_a_temporary_error(tmp_path: Path) -> None:
    fence = EpochFence(tmp_path / "epoch.json", "cluster test")
    missing = LibvirtHost("hv9", f"test://{tmp_path / 'missing.xml'}")
    with pytest.raises(TemporaryError, match="cannot connect to host hv9"):
        LibvirtCluster("test", [missing], fence, MigrationSlots())
