"""VM strategies by name: "thr-mmt-0.8", "lr-mc-1.2", ... (CloudSim's names: detector, selector, parameter),
"dvfs" (never migrate), and the balancing strategies and ours as they are added.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Protocol

from loadpilot.decide.vms.balance import DrsLike, ForecastBalance, WorkloadBalance, WorkloadStabilization
from loadpilot.decide.vms.cluster import VmCluster
from loadpilot.decide.vms.consolidate import Consolidation, Limits
from loadpilot.decide.vms.detect import Detector, LocalRegression, make_detector
from loadpilot.decide.vms.place import Migration
from loadpilot.decide.vms.select import CheapestRelief, make_selector


class VmStrategy(Protocol):
    """Decides the migrations of one interval from a snapshot of the cluster."""

    @property
    def name(self) -> str:
        """The strategy's name."""
        ...

    def decide(self, cluster: VmCluster, rng: random.Random) -> list[Migration]:
        """The migrations to start now, each with its reason."""
        ...


@dataclass
class NoMigration:
    """Never migrate (CloudSim's "dvfs" baseline: hosts only follow their load)."""

    name: str = "dvfs"
    detector: Detector | None = None

    def decide(self, cluster: VmCluster, rng: random.Random) -> list[Migration]:
        """Nothing to do."""
        return []


CONSOLIDATION_NAMES = (
    "thr-mmt-0.8",
    "iqr-mmt-1.5",
    "mad-mmt-2.5",
    "lr-mmt-1.2",
    "lrr-mmt-1.2",
    "lr-mc-1.2",
    "lr-rs-1.2",
    "lr-mu-1.2",
)


BALANCING_NAMES = ("workload-balance", "workload-stabilization", "drs", "ours-balance")
OURS = "ours"


def ours(limits: Limits | None = None) -> Consolidation:
    """Our consolidation: LR-1.2 overload detection (a forecast one migration ahead), the VM that frees most CPU
    per second of migration, PABFD placement that avoids hosts forecast to overload, under-loaded hosts (below
    70 %) emptied, and no VM moved again within 10 minutes (no ping-pong)."""
    return Consolidation(
        LocalRegression(1.2),
        CheapestRelief(),
        limits=limits or Limits(),
        settle_s=600.0,
        underload_below=0.7,
        name=OURS,
    )


def _balancer(base: str, parameter: float | None) -> VmStrategy:
    if base == "workload-balance":
        return WorkloadBalance(threshold=parameter if parameter is not None else 0.8)
    if base == "workload-stabilization":
        sd = parameter if parameter is not None else 0.1
        return WorkloadStabilization(cpu_threshold=sd, ram_threshold=sd)
    if base == "drs":
        return DrsLike(target=parameter if parameter is not None else 0.1)
    return ForecastBalance(threshold=parameter if parameter is not None else 0.8)


def make_strategy(name: str, limits: Limits | None = None) -> VmStrategy:
    """The strategy called `name`; raises ValueError naming the known ones when there is no such strategy."""
    if name == "dvfs":
        return NoMigration()
    if name == OURS:
        return ours(limits)
    for base in BALANCING_NAMES:
        if name == base or name.startswith(base + "-"):
            rest = name[len(base) + 1 :]
            try:
                parameter = float(rest) if rest else None
            except ValueError:
                break
            strategy = _balancer(base, parameter)
            strategy.name = name  # type: ignore[misc]
            return strategy
    parts = name.split("-")
    if len(parts) == 3:
        detector_name, selector_name, text = parts
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if value == value:
            try:
                detector = make_detector(detector_name, value)
                selector = make_selector(selector_name)
            except ValueError as e:
                raise ValueError(f"unknown strategy {name!r}: {e}") from e
            return Consolidation(detector, selector, limits=limits or Limits(), name=name)
    raise ValueError(
        f"unknown strategy {name!r}; known: dvfs, ours, {', '.join(BALANCING_NAMES)} (each with an optional "
        "-<threshold>), and <detector>-<selector>-<parameter> with detector thr, iqr, mad, lr, lrr, kofn and "
        "selector mmt, mc, rs, mu, vsr, cr (e.g. lr-mmt-1.2)"
    )
