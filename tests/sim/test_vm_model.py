"""The honest model's invariants on small synthetic traces: memory is never exceeded, idle VMs stay."""

from __future__ import annotations

import numpy as np
import pytest

from loadpilot.decide.vms.strategies import StrategySettings
from loadpilot.sim.planetlab import Traces
from loadpilot.sim.vm_model import HonestSetup, run_honest


def synthetic(vms: int = 60, points: int = 48, seed: int = 3) -> Traces:
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.0, 0.6, (vms, 1))
    wave = 0.3 * np.sin(np.linspace(0, 4 * np.pi, points))[None, :] * rng.uniform(0, 1, (vms, 1))
    data = np.clip(base + wave + rng.normal(0, 0.05, (vms, points)), 0, 0.99)
    data[:5] = 0.0  # idle VMs
    return Traces([f"vm{i}" for i in range(vms)], np.round(data, 2), 300.0)


@pytest.mark.parametrize("strategy", ["thr-mmt-0.8", "lr-mmt-1.2", "mad-mmt-2.5", "dvfs"])
def test_memory_is_never_exceeded_and_idle_vms_stay(strategy: str) -> None:
    traces = synthetic()
    result = run_honest(traces, StrategySettings(strategy), HonestSetup(hosts=40))
    assert max(result.series["ram_fill_max"]) <= 1.0 + 1e-9
    assert set(result.series["vms_placed"]) == {float(traces.vms)}
    assert result.energy_kwh > 0
    assert 0 <= result.under_allocation < 1


def test_consolidation_saves_energy_over_never_migrating() -> None:
    traces = synthetic()
    setup = HonestSetup(hosts=40)
    assert (
        run_honest(traces, StrategySettings("thr-mmt-0.8"), setup).energy_kwh
        <= run_honest(traces, StrategySettings("dvfs"), setup).energy_kwh
    )
