"""The decisions' shortcuts (an attempt to empty a host given up early, the cheapest host tested alone) only save
work: without them every run takes exactly the same decisions and gets exactly the same figures."""

from __future__ import annotations

import pytest

from loadpilot.decide.vms import consolidate
from loadpilot.decide.vms.place import PowerAwareBestFit
from loadpilot.decide.vms.strategies import StrategySettings
from loadpilot.sim.planetlab import Traces
from loadpilot.sim.vm_cloudsim import CloudSimSetup, run_cloudsim
from loadpilot.sim.vm_metrics import RunResult
from loadpilot.sim.vm_model import HonestSetup, run_honest
from tests.sim.test_vm_model import synthetic


def _run(model: str, strategy: str, traces: Traces) -> RunResult:
    if model == "honest":
        return run_honest(traces, StrategySettings(strategy), HonestSetup(hosts=40))
    return run_cloudsim(traces, StrategySettings(strategy), CloudSimSetup(hosts=40))


@pytest.mark.parametrize("model", ["honest", "cloudsim"])
@pytest.mark.parametrize("strategy", ["thr-mmt-0.8", "mad-mmt-2.5", "iqr-mmt-1.5", "lr-mmt-1.2", "ours"])
def test_runs_are_the_same_without_the_shortcuts(model: str, strategy: str, monkeypatch: pytest.MonkeyPatch) -> None:
    traces = synthetic(vms=80, points=36)
    monkeypatch.setattr(consolidate, "FAILURES_BEFORE_EACH_ROOM", 0)  # from the first attempt on
    fast = _run(model, strategy, traces)
    monkeypatch.setattr(consolidate, "FAILURES_BEFORE_EACH_ROOM", 10**9)
    monkeypatch.setattr(consolidate._Room, "refuses", lambda self, vms, excluded: False)
    monkeypatch.setattr(PowerAwareBestFit, "_passes", lambda self, plan, h, v, alloc: False)
    slow = _run(model, strategy, traces)
    assert fast.moves == slow.moves
    assert fast.moves  # the runs do migrate
    same = {k: v for k, v in fast.summary().items() if not k.startswith(("run_time", "decision_time"))}
    assert same == {k: v for k, v in slow.summary().items() if not k.startswith(("run_time", "decision_time"))}
