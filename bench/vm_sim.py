"""VM strategies on the PlanetLab days in shared/data, in both simulator models, beside CloudSim 3.0.3's figures.

- consolidation, 800 hosts (CloudSim's set-up): every CloudSim policy, ours, and the balancing strategies, in the
  `cloudsim` model (CloudSim's quirks) and the `honest` one (memory a hard limit, idle VMs stay);
- balancing, 100 hosts of 16 GB (CPU-tight, so hosts do cross the threshold): Watcher's workload_balance and
  workload_stabilization, the DRS-like strategy and ours, honest model;
- scale: 10,000 hosts and 100,000 VMs drawn from both days' traces, ours with a bounded decision (honest model).

BENCH_VM_DAYS (comma-separated), BENCH_VM_SCALE_POINTS (decisions in the scale run, default 288) shorten it.
"""

from __future__ import annotations

import csv
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import ROOT, write_results
from loadpilot.decide.vms.consolidate import Limits
from loadpilot.decide.vms.strategies import make_strategy
from loadpilot.sim.planetlab import Traces, load_planetlab
from loadpilot.sim.vm_cloudsim import CloudSimSetup, run_cloudsim
from loadpilot.sim.vm_metrics import RunResult
from loadpilot.sim.vm_model import HonestSetup, run_honest

DATA = ROOT.parent / "shared" / "data"
DAYS = [d for d in os.environ.get("BENCH_VM_DAYS", "20110303,20110306").split(",") if d]
CONSOLIDATION = [
    "dvfs",
    "thr-mmt-0.8",
    "iqr-mmt-1.5",
    "mad-mmt-2.5",
    "lr-mmt-1.2",
    "lrr-mmt-1.2",
    "lr-mc-1.2",
    "lr-rs-1.2",
    "lr-mu-1.2",
    "ours",
]
BALANCING = ["workload-balance", "workload-stabilization", "drs", "ours-balance"]
SCALE_MIGRATIONS = 500  # per decision, in total: bounds a decision's work at 10,000 hosts
SCALE_ATTEMPTS = 100  # hosts tried for emptying per decision
VALIDATED = ["thr-mmt-0.8", "iqr-mmt-1.5", "mad-mmt-2.5", "lr-mmt-1.2"]
COLUMNS = [
    "day",
    "model",
    "scenario",
    "strategy",
    "source",
    "energy_kwh",
    "slatah",
    "pdm",
    "slav",
    "esv",
    "migrations",
    "host_shutdowns",
    "over_threshold_s",
    "under_allocation",
    "run_time_s",
    "decision_max_s",
]


def _row(day: str, scenario: str, r: RunResult) -> dict[str, Any]:
    s = r.summary()
    return {
        "day": day,
        "model": r.model,
        "scenario": scenario,
        "strategy": r.strategy,
        "source": "loadpilot",
        **{k: s[k] for k in COLUMNS if k in s},
        "decision_max_s": s["decision_time_max_s"],
    }


def _reference(day: str) -> list[dict[str, Any]]:
    rows = []
    with (DATA / "cloudsim_reference.csv").open() as f:
        for ref in csv.DictReader(f):
            if ref["date"] != day:
                continue
            rows.append(
                {
                    "day": day,
                    "model": "cloudsim",
                    "scenario": "800 hosts",
                    "strategy": ref["policy"],
                    "source": "CloudSim 3.0.3",
                    "energy_kwh": float(ref["energy_kwh"]),
                    "slatah": float(ref["slatah"]),
                    "pdm": float(ref["pdm"]),
                    "slav": float(ref["slav"]),
                    "esv": float(ref["esv"]),
                    "migrations": int(ref["migrations"]),
                    "host_shutdowns": int(ref["host_shutdowns"]),
                    "run_time_s": float(ref["wall_clock_s"]),
                }
            )
    return rows


def _scale(points: int) -> dict[str, Any]:
    days = [load_planetlab(DATA / "planetlab" / d) for d in ("20110303", "20110306")]
    pool = np.concatenate([t.utilisation for t in days])
    rng = np.random.default_rng(0)
    vms = 100_000
    traces = Traces([f"vm{i}" for i in range(vms)], pool[rng.integers(0, len(pool), vms)][:, :points], 300.0)
    started = time.perf_counter()
    strategy = make_strategy("ours", Limits(total=SCALE_MIGRATIONS, attempts=SCALE_ATTEMPTS))
    r = run_honest(traces, strategy, HonestSetup(hosts=10_000, host_ram_mb=24576, initial="snake"))
    row = _row("both (drawn)", "10,000 hosts / 100,000 VMs", r)
    row["run_time_s"] = time.perf_counter() - started
    return row


def run() -> Path:
    """Run every strategy on both days and models, then the scale run; write bench/results/vm_sim.{json,md}."""
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    for day in DAYS:
        folder = DATA / "planetlab" / day
        if not folder.is_dir():
            notes.append(f"{day}: traces not found in {folder}; skipped")
            continue
        traces = load_planetlab(folder)
        refs = {r["strategy"]: r for r in _reference(day)}
        for name in CONSOLIDATION + BALANCING:
            r = run_cloudsim(traces, make_strategy(name), CloudSimSetup())
            rows.append(_row(day, "800 hosts", r))
            if name in refs:
                rows.append(refs[name])
                ref = refs[name]
                if name in VALIDATED:
                    notes.append(
                        f"{day} {name}: energy {r.energy_kwh:.2f} vs {ref['energy_kwh']:.2f} kWh "
                        f"({r.energy_kwh / ref['energy_kwh'] - 1:+.1%}), migrations {r.migrations:,} vs "
                        f"{ref['migrations']:,} ({r.migrations / ref['migrations'] - 1:+.1%}), SLAV {r.slav:.3e} vs "
                        f"{ref['slav']:.3e} ({r.slav / ref['slav'] - 1:+.1%})"
                    )
        for name in CONSOLIDATION + BALANCING:
            rows.append(_row(day, "800 hosts", run_honest(traces, make_strategy(name), HonestSetup())))
        balance = HonestSetup(hosts=100, host_ram_mb=16384)
        for name in ["dvfs", *BALANCING]:
            rows.append(_row(day, "100 hosts x 16 GB", run_honest(traces, make_strategy(name), balance)))
    points = int(os.environ.get("BENCH_VM_SCALE_POINTS", "288"))
    if all((DATA / "planetlab" / d).is_dir() for d in ("20110303", "20110306")):
        rows.append(_scale(points))
        notes.append(
            f"scale: 10,000 hosts of 24 GB, 100,000 VMs drawn from both days, {points} decisions, ours with at most "
            f"{SCALE_MIGRATIONS} migrations and {SCALE_ATTEMPTS} hosts tried for emptying per decision, VMs first "
            "dealt out evenly; run_time_s is the whole run (loading, placement, simulation), decision_max_s the "
            "longest decision."
        )
    notes += [
        "",
        "Models: `cloudsim` copies CloudSim 3.0.3 (shared/data/cloudsim_reference.md); `honest` keeps memory a hard "
        "limit, keeps idle VMs, and measures SLA violation as CPU not given (under_allocation).",
        "over_threshold_s: time during which at least one host was asked for more than 80 % of its CPU.",
        "Run times are this machine's, with other work running beside (2 cores shared).",
    ]
    return write_results("vm_sim", "VM strategies on the PlanetLab traces", COLUMNS, rows, notes)
