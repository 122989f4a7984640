"""The controller's VM half (control/migrate.py) with real parts: the simulated cluster and libvirt's test driver as
actuators, a real SQLite store for events and samples, controllers electing a leader through tooz file://.

The must-show: the simulator and the live controller driving the simulated cluster take the same decisions on the
same input (the same PlanetLab trace, strategy and limits: identical migrations, interval by interval)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from loadpilot.config import Config, parse_config
from loadpilot.control.status import read_statuses
from loadpilot.control.view import LiveView
from loadpilot.decide.vms.strategies import StrategySettings
from loadpilot.errors import ConfigError, StaleEpochError
from loadpilot.model import Batch, Event, Migrate, Sample
from loadpilot.sim.cluster_actuator import SimCluster
from loadpilot.sim.planetlab import Traces, load_planetlab
from loadpilot.sim.vm_model import HonestSetup, run_honest
from loadpilot.store import Store
from tests.control.conftest import ControllerFactory

PLANETLAB = Path(__file__).resolve().parents[3] / "shared" / "data" / "planetlab" / "20110303"
VM_DATA = Path(__file__).resolve().parents[1] / "act" / "vm" / "data"
STEPS = 24  # two hours of the trace, one decision per 300 s


def cluster_config(tmp_path: Path, **cluster: Any) -> Config:
    return parse_config(
        {
            "state_dir": str(tmp_path / "state"),
            "coordination": {"url": f"file://{tmp_path / 'coord'}", "tick_s": 0.2, "member_timeout_s": 2.0},
            "cluster": {"enabled": True, **cluster},
        }
    )


def small_sim_cluster(tmp_path: Path) -> Config:
    """16 simulated hosts under write_trace's VMs, balanced by THR-MMT-0.6 at the trace's own pace."""
    trace = tmp_path / "trace.csv"
    write_trace(trace)
    return cluster_config(tmp_path, url=f"sim:{trace}", strategy="thr-mmt-0.6", sim={"hosts": 16, "speed": 1.0})


def migrate_events(store: Store) -> list[Event]:
    return sorted(store.events(kind="migrate", limit=100_000), key=lambda e: e.id or 0)


def first(traces: Traces, points: int) -> Traces:
    return Traces(traces.names, traces.utilisation[:, :points], traces.interval_s)


@pytest.mark.skipif(not PLANETLAB.is_dir(), reason="the PlanetLab traces are in ../shared/data")
@pytest.mark.parametrize("strategy", ["lr-mmt-1.2", "ours", "workload-stabilization"])
def test_the_simulator_and_the_live_controller_take_the_same_decisions(
    tmp_path: Path, store: Store, controllers: ControllerFactory, strategy: str
) -> None:
    limits = {"max_migrations": 20, "max_migrations_per_host": 2}
    settings = StrategySettings(strategy, max_migrations=20, max_per_host=2)
    traces = load_planetlab(PLANETLAB)
    simulated = run_honest(first(traces, STEPS + 1), settings, HonestSetup(hosts=800))
    expected = [(t, f"vm-{v}", f"host-{s}", f"host-{d}") for t, v, s, d in simulated.moves]

    config = cluster_config(
        tmp_path, url=f"sim:{PLANETLAB}", strategy=strategy, sim={"hosts": 800, "speed": 1.0}, **limits
    )
    controller = controllers(config, "controller-a")
    t0 = 1_700_000_000.0
    for k in range(STEPS + 1):
        controller.step(t0 + k * 300.0)  # speed 1: one step per interval of the trace
    assert controller.leading
    control = controller.migrations
    assert control is not None and isinstance(control.actuator, SimCluster)
    live = control.actuator.moves

    assert expected, "the trace should make the strategy migrate"
    assert live == expected
    events = migrate_events(store)
    assert [(e.subject, e.details["source"], e.details["target"]) for e in events] == [
        (f"vm/{vm}", source, target) for _, vm, source, target in expected
    ]
    epoch = controller.leader.epoch
    for event in events:
        assert event.result == "started" and event.reason and event.details["epoch"] == epoch
        assert event.details["strategy"] == strategy
    per_interval: dict[float, list[tuple[str, str]]] = {}
    for t, _, source, target in live:
        per_interval.setdefault(t, []).append((source, target))
    for moves in per_interval.values():
        assert len(moves) <= 20
        hosts = [h for pair in moves for h in pair]
        assert max(hosts.count(h) for h in hosts) <= 2


def test_only_the_leader_migrates_and_a_replaced_leader_is_fenced(
    tmp_path: Path, store: Store, controllers: ControllerFactory
) -> None:
    config = small_sim_cluster(tmp_path)
    a, b = controllers(config, "controller-a"), controllers(config, "controller-b")
    t0 = 1_700_000_000.0
    for k in range(6):
        a.step(t0 + k * 300.0)
        b.step(t0 + k * 300.0)
    assert a.leading and not b.leading
    assert a.migrations is not None and b.migrations is not None
    assert a.migrations.started and not b.migrations.started
    first_epoch = a.leader.epoch
    assert {e.details["member"] for e in migrate_events(store)} == {"controller-a"}

    a.close()  # resigns: b leads at its next tick with a newer epoch
    b.step(t0 + 6 * 300.0)
    assert b.leading and b.leader.epoch > first_epoch
    # Both actuators guard the same cluster through one fence: once the new term has acted, the old one is refused.
    b.migrations.actuator.migrate(Migrate("vm-0", *somewhere(b.migrations.actuator, "vm-0"), "new", b.leader.epoch))
    with pytest.raises(StaleEpochError, match=f"epoch {first_epoch}; epoch {b.leader.epoch} has acted"):
        a.migrations.actuator.migrate(Migrate("vm-1", *somewhere(a.migrations.actuator, "vm-1"), "old", first_epoch))


def test_up_s_view_shows_the_cluster_the_leader_balances(
    tmp_path: Path, store: Store, controllers: ControllerFactory
) -> None:
    config = small_sim_cluster(tmp_path)
    controller = controllers(config, "controller-a")
    t0 = float(int(time.time()))  # the view shows a status only while it is fresh
    for k in range(6):
        controller.step(t0 + k * 300.0)
    control = controller.migrations
    assert control is not None and control.started
    [status] = [s.cluster for s in read_statuses(config.state_path) if s.leading]
    assert status is not None and (status.hosts, status.vms, status.started) == (16, 30, len(control.started))
    assert 0 < status.powered <= 16 and status.hottest.startswith("host-")
    assert status.hottest_utilisation is not None and status.mean_utilisation is not None
    assert status.hottest_utilisation >= status.mean_utilisation > 0

    view = LiveView(config, store, "header")
    frame = view.frame()
    line = f"cluster default (thr-mmt-0.6): 16 hosts ({status.powered} on), 30 VMs, CPU mean"
    assert any(line in text and f"{len(control.started)} started" in text for text in view.lines(frame, True))
    console = Console(width=300, record=True)
    console.print(view.render(frame))
    assert line in console.export_text()


def somewhere(sim: Any, vm: str) -> tuple[str, str]:
    """A VM's host in a simulated cluster, and another host."""
    source = f"host-{int(sim.world.host[int(vm[3:])])}"
    return source, next(h.id for h in sim.hosts() if h.id != source)


def write_trace(path: Path, vms: int = 30, points: int = 12) -> None:
    """A CSV of per-VM CPU (percent) every 300 s: all VMs at 10 % (so they are packed tight), then from the third
    interval on a third of them at 95 % (so their hosts overload)."""
    rows = ["time," + ",".join(f"vm{i}" for i in range(vms))]
    for k in range(points):
        rows.append(f"{k * 300}," + ",".join(str(95 if k >= 2 and i % 3 == 0 else 10) for i in range(vms)))
    path.write_text("\n".join(rows) + "\n")


def test_a_libvirt_cluster_is_balanced_from_the_samples_in_the_store(
    tmp_path: Path, store: Store, controllers: ControllerFactory
) -> None:
    hosts = [{"name": n, "uri": f"test://{VM_DATA / f'{n}.xml'}"} for n in ("hv1", "hv2")]
    config = cluster_config(
        tmp_path,
        url="libvirt:",
        strategy="thr-mmt-0.5",
        interval_s=60.0,
        libvirt={"hosts": hosts, "migration": "emulate"},
    )
    now = 1_700_000_000.0
    start = now - now % 60.0
    # web1 and db1 (2 vCPUs each) on hv1 (4 cores) ran at 90 % for the last five minutes: hv1 is overloaded.
    samples = [
        Sample(f"vm/c0000000-0000-4000-8000-00000000000{i}", "cpu.util", 0.9, start - 60.0 * j - 30.0, "ratio")
        for i in (1, 2)
        for j in range(5)
    ]
    store.write_batch(Batch("b1", "agent", 60.0, tuple(samples)))
    controller = controllers(config, "controller-a")
    controller.step(now)
    control = controller.migrations
    assert control is not None
    [moved] = control.started
    assert (moved.source, moved.target) == ("hv1", "hv2")
    assert "hv1 overloaded" in moved.reason
    [event] = migrate_events(store)
    assert event.result == "started" and event.reason == moved.reason and event.subject == f"vm/{moved.vm}"
    wait = control.actuator.wait  # type: ignore[attr-defined]
    assert wait(moved.vm, 10).state == "completed"
    assert moved.vm in {d.id for d in control.actuator.domains("hv2")}
    controller.step(now + 1)  # the same interval: nothing decided again; the completion is recorded
    [done] = store.events(kind="migrated")
    assert done.result == "completed" and done.subject == f"vm/{moved.vm}"
    assert len(migrate_events(store)) == 1


def test_the_cluster_section_is_checked_field_by_field(tmp_path: Path) -> None:
    cases = [
        ({"strategy": "nope"}, "cluster.strategy: unknown strategy 'nope'"),
        ({"colour": "red"}, "cluster.colour: unknown key"),
        ({"url": "vmware:x"}, "cluster.url: must start with libvirt:, openstack:, sim:"),
        ({"enabled": True}, "cluster.url: an enabled cluster needs a url"),
        ({"url": "libvirt:", "enabled": True}, "cluster.libvirt.hosts: a libvirt cluster needs"),
        ({"max_migrations": 1, "max_migrations_per_host": 2}, "cluster.max_migrations_per_host: must be <="),
        ({"sim": {"speed": 0}}, "cluster.sim.speed: Input should be greater than 0"),
    ]
    for cluster, message in cases:
        with pytest.raises(ConfigError) as exc:
            parse_config({"cluster": cluster})
        assert any(p.startswith(message) for p in exc.value.problems), (cluster, exc.value.problems)
    assert not parse_config({}).cluster.enabled  # off by default: `make run` needs nothing installed


def test_a_cluster_that_cannot_be_opened_is_flagged_and_the_controller_runs_on(
    tmp_path: Path, store: Store, controllers: ControllerFactory
) -> None:
    config = cluster_config(tmp_path, url=f"sim:{tmp_path / 'no-such-trace'}")
    controller = controllers(config, "controller-a")
    t0 = 1_700_000_000.0
    for k in range(3):
        controller.step(t0 + k * 300.0)
    assert controller.leading
    control = controller.migrations
    assert control is not None and control.actuator is None
    assert "no-such-trace" in control.flagged
    [hold] = store.events(kind="hold", subject="cluster/default")
    assert hold.reason.startswith("cannot open the cluster: cluster.url:")
    assert "until the controller restarts" in hold.reason
