"""Ours against the baselines on the real PlanetLab days, in the honest model: consolidation (lower ESV and
fewer migrations than LR-MMT-1.2) and balancing (less time over the threshold than Watcher's
workload_balance, with fewer migrations)."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadpilot.decide.vms.strategies import StrategySettings
from loadpilot.sim.planetlab import Traces, load_planetlab
from loadpilot.sim.vm_model import HonestSetup, run_honest

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


def _day(day: str) -> Traces:
    folder = DATA / "planetlab" / day
    if not folder.is_dir():
        pytest.skip(f"the PlanetLab traces are not here ({folder}); see shared/data/README.md")
    return load_planetlab(folder)


@pytest.mark.parametrize("day", ["20110303", "20110306"])
def test_ours_consolidates_with_lower_esv_and_fewer_migrations(day: str) -> None:
    traces = _day(day)
    ours = run_honest(traces, StrategySettings("ours"))
    lr = run_honest(traces, StrategySettings("lr-mmt-1.2"))
    assert ours.esv < lr.esv
    assert ours.migrations < lr.migrations
    assert max(ours.series["ram_fill_max"]) <= 1.0


@pytest.mark.parametrize("day", ["20110303", "20110306"])
def test_ours_balances_with_less_time_over_and_fewer_migrations(day: str) -> None:
    traces = _day(day)
    setup = HonestSetup(hosts=100, host_ram_mb=16384)
    ours = run_honest(traces, StrategySettings("ours-balance"), setup)
    watcher = run_honest(traces, StrategySettings("workload-balance"), setup)
    assert ours.over_threshold_s < watcher.over_threshold_s
    assert ours.migrations < watcher.migrations
