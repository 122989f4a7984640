"""The CloudSim model reproduces CloudSim 3.0.3's figures on the PlanetLab traces (shared/data), and ours beats
LR-MMT-1.2 there. The other validated policies and the other day are checked by `bench/vm_sim.py`."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from loadpilot.decide.vms.strategies import StrategySettings
from loadpilot.sim.planetlab import Traces, load_planetlab
from loadpilot.sim.vm_cloudsim import run_cloudsim
from loadpilot.sim.vm_metrics import RunResult

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
DAY = "20110303"


def reference(day: str, policy: str) -> dict[str, float]:
    with (DATA / "cloudsim_reference.csv").open() as f:
        for row in csv.DictReader(f):
            if row["date"] == day and row["policy"] == policy:
                return {k: float(v) for k, v in row.items() if k not in ("date", "policy")}
    raise LookupError(policy)


@pytest.fixture(scope="module")
def traces() -> Traces:
    folder = DATA / "planetlab" / DAY
    if not folder.is_dir():
        pytest.skip(f"the PlanetLab traces are not here ({folder}); see shared/data/README.md")
    return load_planetlab(folder)


@pytest.fixture(scope="module")
def runs(traces: Traces) -> dict[str, RunResult]:
    return {name: run_cloudsim(traces, StrategySettings(name)) for name in ("lr-mmt-1.2", "ours")}


def test_lr_mmt_agrees_with_cloudsim_within_the_issues_bounds(runs: dict[str, RunResult]) -> None:
    ref = reference(DAY, "lr-mmt-1.2")
    got = runs["lr-mmt-1.2"]
    assert got.energy_kwh == pytest.approx(ref["energy_kwh"], rel=0.05)
    assert got.migrations == pytest.approx(ref["migrations"], rel=0.15)
    assert got.slav == pytest.approx(ref["slav"], rel=0.25)
    assert got.slatah == pytest.approx(ref["slatah"], rel=0.25)
    assert got.host_shutdowns == pytest.approx(ref["host_shutdowns"], rel=0.1)


def test_dvfs_energy_is_exact(traces: Traces) -> None:
    got = run_cloudsim(traces, StrategySettings("dvfs"))
    assert got.energy_kwh == pytest.approx(reference(DAY, "dvfs")["energy_kwh"], rel=1e-6)
    assert got.host_shutdowns == reference(DAY, "dvfs")["host_shutdowns"]


def test_ours_has_lower_esv_than_lr_mmt_with_no_more_migrations(runs: dict[str, RunResult]) -> None:
    ours, lr = runs["ours"], runs["lr-mmt-1.2"]
    assert ours.esv < lr.esv
    assert ours.migrations <= lr.migrations
