"""The simulated cluster as a VM actuator: accelerated time, migrations that land, fencing and limits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from loadpilot.act.fencing import EpochFence
from loadpilot.act.vm.base import MigrationLimitError, MigrationSlots, VmNotFoundError
from loadpilot.decide.vms.strategies import StrategySettings
from loadpilot.errors import PermanentError, StaleEpochError
from loadpilot.model import Migrate, Resize
from loadpilot.sim.cluster_actuator import SimCluster
from loadpilot.sim.planetlab import Traces
from loadpilot.sim.vm_model import HonestSetup

MB = 2**20


def traces(vms: int = 12, points: int = 10) -> Traces:
    rng = np.random.default_rng(4)
    return Traces([f"vm{i}" for i in range(vms)], np.round(rng.uniform(0.05, 0.9, (vms, points)), 2), 300.0)


def make(tmp_path: Path, speed: float = 600.0, total: int | None = None, per_host: int | None = None) -> SimCluster:
    fence = EpochFence(tmp_path / "epoch.json", "cluster sim")
    return SimCluster(
        traces(), HonestSetup(hosts=6), StrategySettings("thr-mmt-0.8"), fence, MigrationSlots(total, per_host), speed
    )


def test_time_runs_speed_times_faster_and_the_first_interval_only_fills_the_history(tmp_path: Path) -> None:
    sim = make(tmp_path, speed=600.0)
    assert sim.view(1000.0) is None  # the clock starts here: interval 0
    assert sim.advance(1000.4) == 0  # 240 simulated seconds
    view = sim.view(1000.5)  # 300 s: interval 1
    assert view is not None and view.observed_at == 300.0
    assert len(view.hosts) == 6 and len(view.vms) == 12
    assert all(len(v.history) == 1 for v in view.vms)  # interval 0, measured
    assert sim.advance(1002.0) == 4
    assert sim.advance(1_000_000.0) == 9  # the trace has 10 intervals: the world stops at the last
    assert sim.view(1_000_000.0) is None


def busiest(sim: SimCluster) -> str:
    return max((h.id for h in sim.hosts()), key=lambda h: len(sim.domains(h)))


def test_a_migration_lands_at_the_end_of_its_interval(tmp_path: Path) -> None:
    sim = make(tmp_path, speed=1.0)
    sim.advance(0.0)
    sim.advance(300.0)
    source = busiest(sim)
    vm = sim.domains(source)[0]
    target = next(h.id for h in sim.hosts() if h.id != source)
    job = sim.migrate(Migrate(vm.id, source, target, "test", epoch=1))
    assert job.state == "running" and job.data_total == vm.memory
    assert vm.id in {d.id for d in sim.domains(source)}  # still on its source during the interval
    assert [m.state for m in sim.migrations()] == ["running"]
    sim.advance(600.0)
    assert vm.id in {d.id for d in sim.domains(target)} and vm.id not in {d.id for d in sim.domains(source)}
    [done] = sim.migrations()
    assert done.state == "completed" and done.data_processed == vm.memory
    assert sim.moves == [(300.0, vm.id, source, target)]


def test_the_fence_and_the_limits_hold(tmp_path: Path) -> None:
    sim = make(tmp_path, speed=1.0, total=1)
    sim.advance(0.0)
    source = busiest(sim)
    vms = sim.domains(source)
    assert len(vms) >= 2
    target, elsewhere = [h.id for h in sim.hosts() if h.id != source][:2]
    sim.migrate(Migrate(vms[0].id, source, target, "r", epoch=2))
    with pytest.raises(MigrationLimitError, match="cluster's limit"):
        sim.migrate(Migrate(vms[1].id, source, target, "r", epoch=2))
    with pytest.raises(StaleEpochError):
        sim.migrate(Migrate(vms[1].id, source, target, "r", epoch=1))
    with pytest.raises(VmNotFoundError, match=f"not {elsewhere}"):
        sim.migrate(Migrate(vms[1].id, elsewhere, target, "r", epoch=2))
    with pytest.raises(VmNotFoundError, match="no host 'host-6'"):
        sim.migrate(Migrate(vms[1].id, source, "host-6", "r", epoch=2))
    assert int(sim.world.dst[int(vms[1].id[3:])]) == -1


def test_resize_changes_a_simulated_vms_memory_only(tmp_path: Path) -> None:
    sim = make(tmp_path)
    sim.resize(Resize("vm-3", "smaller", memory=512 * MB))
    assert sim.world.ram[3] == 512.0
    with pytest.raises(PermanentError, match="one vCPU"):
        sim.resize(Resize("vm-3", "bigger", vcpus=2))
