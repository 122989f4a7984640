"""The Nova actuator through the real openstacksdk, against a local stand-in for the Keystone and Nova endpoints it
calls (tests/act/vm/nova_standin.py, on 127.0.0.1 on a free port, stopped by each test)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("openstack")

from loadpilot.act.fencing import EpochFence
from loadpilot.act.vm.base import MigrationLimitError, MigrationSlots, VmNotFoundError
from loadpilot.act.vm.openstack import NovaCluster
from loadpilot.config import OpenStackClusterConfig
from loadpilot.errors import PermanentError, StaleEpochError, TemporaryError
from loadpilot.model import Migrate, Resize
from tests.act.vm.nova_standin import NovaStandIn, flavor

MIB = 1024 * 1024


@pytest.fixture
def nova() -> Iterator[NovaStandIn]:
    stand_in = NovaStandIn(
        hosts={"cmp1": (16, 65536), "cmp2": (32, 131072)},
        flavors=[flavor("f1", 1, 2048), flavor("f2", 2, 4096), flavor("f4", 4, 8192)],
    ).start()
    yield stand_in
    stand_in.stop()


def connect(
    nova: NovaStandIn,
    tmp_path: Path,
    total: int | None = None,
    per_host: int | None = None,
    password: str = "secret",  # noqa: S107
) -> NovaCluster:
    settings = OpenStackClusterConfig(
        auth_url=f"{nova.url}/identity/v3", username="admin", password=password, project_name="admin"
    )
    fence = EpochFence(tmp_path / "epoch.json", "cluster nova")
    return NovaCluster.from_config("nova", settings, fence, MigrationSlots(total, per_host))


def test_hosts_and_servers_come_from_nova(nova: NovaStandIn, tmp_path: Path) -> None:
    web = nova.add_server("web1", "cmp1", 2, 4096)
    nova.add_server("db1", "cmp2", 4, 8192)
    c = connect(nova, tmp_path)
    assert {(h.id, h.cpus, h.memory) for h in c.hosts()} == {("cmp1", 16, 65536 * MIB), ("cmp2", 32, 131072 * MIB)}
    [d] = c.domains("cmp1")
    assert (d.id, d.name, d.host, d.vcpus, d.memory, d.running) == (web.id, "web1", "cmp1", 2, 4096 * MIB, True)
    assert [x.name for x in c.domains("cmp2")] == ["db1"]
    listing = [r for r in nova.requests if r.path.endswith("/servers/detail")]
    assert listing and listing[0].query.get("host") == ["cmp1"]
    assert {"all_tenants", "host"} <= set(listing[0].query)
    assert any(r.path == "/identity/v3/auth/tokens" and r.method == "POST" for r in nova.requests)


def test_a_live_migration_goes_to_the_named_host_and_reports_nova_progress(nova: NovaStandIn, tmp_path: Path) -> None:
    web = nova.add_server("web1", "cmp1", 2, 4096)
    c = connect(nova, tmp_path)
    job = c.migrate(Migrate(web.id, "cmp1", "cmp2", "cmp1 overloaded", epoch=2))
    assert job.state == "running"
    [(server_id, body)] = nova.actions()
    assert server_id == web.id
    assert body == {"os-migrateLive": {"host": "cmp2", "block_migration": "auto"}}  # checked by the scheduler
    [ask] = [r for r in nova.requests if r.path.endswith("/action")]
    assert ask.headers["OpenStack-API-Version"] == "compute 2.30"  # a named host, not forced
    fractions = []
    for _ in range(10):
        [progress] = c.migrations()
        if progress.state != "running":
            break
        fractions.append(progress.fraction)
    assert progress.state == "completed" and progress.target == "cmp2"
    assert fractions == [0.25, 0.5, 0.75]  # the stand-in's three steps, from Nova's memory counters
    assert [d.id for d in c.domains("cmp2")] == [web.id] and c.domains("cmp1") == []
    assert c.migrations() == []


def test_a_migration_nova_rolled_back_is_reported_failed(nova: NovaStandIn, tmp_path: Path) -> None:
    web = nova.add_server("web1", "cmp1", 2, 4096)
    nova.roll_back = True
    c = connect(nova, tmp_path)
    c.migrate(Migrate(web.id, "cmp1", "cmp2", "r"))
    states = [m.state for _ in range(6) for m in c.migrations()]
    assert states[-1] == "failed" and "running" in states
    assert c.book.slots.in_flight() == {}


def test_refusals_are_sorted_and_free_the_slot(nova: NovaStandIn, tmp_path: Path) -> None:
    web = nova.add_server("web1", "cmp1", 2, 4096)
    c = connect(nova, tmp_path)
    with pytest.raises(PermanentError, match=r"HTTP 400.*cmp9 could not be found"):
        c.migrate(Migrate(web.id, "cmp1", "cmp9", "r"))
    nova.refuse = 409  # e.g. the server is busy with another task: try again later
    with pytest.raises(TemporaryError, match="Nova refused to migrate"):
        c.migrate(Migrate(web.id, "cmp1", "cmp2", "r"))
    nova.refuse = 503
    with pytest.raises(TemporaryError):
        c.migrate(Migrate(web.id, "cmp1", "cmp2", "r"))
    assert c.book.slots.in_flight() == {}
    with pytest.raises(VmNotFoundError, match="is on cmp1, not cmp2"):
        c.migrate(Migrate(web.id, "cmp2", "cmp1", "r"))
    with pytest.raises(VmNotFoundError, match="no server"):
        c.migrate(Migrate("no-such-server", "cmp1", "cmp2", "r"))


def test_the_fence_and_the_limits_hold_before_nova_is_asked(nova: NovaStandIn, tmp_path: Path) -> None:
    web = nova.add_server("web1", "cmp1", 2, 4096)
    db = nova.add_server("db1", "cmp1", 2, 4096)
    c = connect(nova, tmp_path, total=4, per_host=1)
    c.migrate(Migrate(web.id, "cmp1", "cmp2", "r", epoch=3))
    with pytest.raises(MigrationLimitError, match="on cmp1, its limit"):
        c.migrate(Migrate(db.id, "cmp1", "cmp2", "r", epoch=3))
    with pytest.raises(StaleEpochError):
        c.migrate(Migrate(db.id, "cmp1", "cmp2", "r", epoch=2))
    assert len(nova.actions()) == 1


def test_resize_picks_the_flavor_and_confirms(nova: NovaStandIn, tmp_path: Path) -> None:
    web = nova.add_server("web1", "cmp1", 2, 4096)
    c = connect(nova, tmp_path)
    c.poll_s = 0.01
    c.resize(Resize(web.id, "busy", vcpus=4, memory=8192 * MIB, epoch=1))
    assert [body for _, body in nova.actions()] == [{"resize": {"flavorRef": "f4"}}, {"confirmResize": None}]
    [d] = c.domains("cmp1")
    assert (d.vcpus, d.memory) == (4, 8192 * MIB)
    with pytest.raises(PermanentError, match="no flavor with 3 vCPUs and 8192 MiB"):
        c.resize(Resize(web.id, "odd", vcpus=3))


def test_bad_credentials_are_permanent_and_an_unreachable_cloud_temporary(nova: NovaStandIn, tmp_path: Path) -> None:
    with pytest.raises(PermanentError, match=r"HTTP 401.*check the credentials"):
        connect(nova, tmp_path, password="wrong").hosts()
    c = connect(nova, tmp_path)
    nova.stop()
    with pytest.raises(TemporaryError, match="cannot list the hypervisors"):
        c.hosts()
