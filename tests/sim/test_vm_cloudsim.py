"""The CloudSim model reproduces CloudSim 3.0.3's figures on the PlanetLab traces (shared/data)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from loadpilot.decide.vms.strategies import make_strategy
from loadpilot.sim.planetlab import load_planetlab
from loadpilot.sim.vm_cloudsim import run_cloudsim

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
DAY = "20110303"


def reference(day: str, policy: str) -> dict[str, float]:
    with (DATA / "cloudsim_reference.csv").open() as f:
        for row in csv.DictReader(f):
            if row["date"] == day and row["policy"] == policy:
                return {k: float(v) for k, v in row.items() if k not in ("date", "policy")}
    raise LookupError(policy)


@pytest.fixture(scope="module")
def traces():  # type: ignore[no-untyped-def]
    folder = DATA / "planetlab" / DAY
    if not folder.is_dir():
        pytest.skip(f"the PlanetLab traces are not here ({folder}); see shared/data/README.md")
    return load_planetlab(folder)


@pytest.mark.parametrize("policy", ["thr-mmt-0.8", "iqr-mmt-1.5", "mad-mmt-2.5", "lr-mmt-1.2"])
def test_agrees_with_cloudsim_within_the_issues_bounds(traces, policy: str) -> None:  # type: ignore[no-untyped-def]
    ref = reference(DAY, policy)
    got = run_cloudsim(traces, make_strategy(policy))
    assert got.energy_kwh == pytest.approx(ref["energy_kwh"], rel=0.05)
    assert got.migrations == pytest.approx(ref["migrations"], rel=0.15)
    assert got.slav == pytest.approx(ref["slav"], rel=0.25)
    assert got.slatah == pytest.approx(ref["slatah"], rel=0.25)
    assert got.host_shutdowns == pytest.approx(ref["host_shutdowns"], rel=0.1)


def test_dvfs_energy_is_exact(traces) -> None:  # type: ignore[no-untyped-def]
    got = run_cloudsim(traces, make_strategy("dvfs"))
    assert got.energy_kwh == pytest.approx(reference(DAY, "dvfs")["energy_kwh"], rel=1e-6)
    assert got.host_shutdowns == reference(DAY, "dvfs")["host_shutdowns"]
