"""VM strategies by name, and `plan`, the one entry point the live controller and the simulator both call.

Names: "thr-mmt-0.8", "lr-mc-1.2", ... (CloudSim's: detector, selector, parameter), "dvfs" (never migrate),
"ours" (consolidation), and the balancers "workload-balance", "workload-stabilization", "drs", "ours-balance",
each with an optional "-<threshold>".
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from types import MappingProxyType
from typing import TYPE_CHECKING, Protocol

import numpy as np

from loadpilot.decide.vms.balance import ForecastBalance, WorkloadBalance
from loadpilot.decide.vms.cluster import VmCluster
from loadpilot.decide.vms.consolidate import Consolidation, Limits
from loadpilot.decide.vms.detect import Detector, LocalRegression, make_detector
from loadpilot.decide.vms.deviation import DrsLike, WorkloadStabilization
from loadpilot.decide.vms.place import Migration
from loadpilot.decide.vms.select import CheapestSufficient, make_selector
from loadpilot.decide.vms.view import cluster_from_view
from loadpilot.errors import PermanentError
from loadpilot.model import ClusterView, Migrate

if TYPE_CHECKING:
    from loadpilot.config import ClusterConfig


class StrategyError(PermanentError, ValueError):
    """No strategy (or detector, or selector) of that name, or settings it cannot run with."""


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


# Every consolidation strategy the benchmark compares: CloudSim's (the first four are validated against its
# figures), Sandpiper's k-of-n detector with volume-to-size selection, and ours.
CONSOLIDATION_NAMES = (
    "dvfs",
    "thr-mmt-0.8",
    "iqr-mmt-1.5",
    "mad-mmt-2.5",
    "lr-mmt-1.2",
    "lrr-mmt-1.2",
    "lr-mc-1.2",
    "lr-rs-1.2",
    "lr-mu-1.2",
    "kofn-vsr-0.8",
    "ours",
)


BALANCING_NAMES = ("workload-balance", "workload-stabilization", "drs", "ours-balance")
OURS = "ours"


def ours(limits: Limits | None = None) -> Consolidation:
    """Our consolidation. Overload: LR-1.2 (a forecast one migration ahead). Which VM leaves an overloaded host:
    among those whose leaving ends the overload, the one whose migration loses least CPU (request x migration
    time, what PDM counts); the shortest migration when one is not enough. A VM that asked for more than one core
    of its host twice in a row leaves it for a larger core (it is short however idle its host is: on the PlanetLab
    set-up most of the SLA violation), and a VM goes only where one core can give it its full size. Where it goes:
    PABFD, to a host not forecast to overload, with room for the recent peaks (2.5 h) of all its VMs at once. Which
    hosts are emptied: those under 70 %, the cheapest to empty first (the CPU their VMs would lose while
    migrating, then the total migration time), not the least utilised. No VM moves again within 10 minutes, and
    no host with such a VM is emptied (no ping-pong)."""
    detector = LocalRegression(1.2)
    return Consolidation(
        detector,
        CheapestSufficient(detector),
        limits=limits or Limits(),
        settle_s=600.0,
        underload_below=0.7,
        peak_window=30,
        cheapest_first=True,
        whole_core=True,
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
    """The strategy called `name`; raises StrategyError naming the known ones when there is no such strategy."""
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
                raise StrategyError(f"unknown strategy {name!r}: {e}") from e
            return Consolidation(detector, selector, limits=limits or Limits(), name=name)
    raise StrategyError(
        f"unknown strategy {name!r}; known: dvfs, ours, {', '.join(BALANCING_NAMES)} (each with an optional "
        "-<threshold>), and <detector>-<selector>-<parameter> with detector thr, iqr, mad, lr, lrr, kofn and "
        "selector mmt, mc, rs, mu, vsr, cr (e.g. lr-mmt-1.2)"
    )


# --- the entry point --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StrategySettings:
    """Which strategy runs, and the limits every strategy keeps.

    `strategy` is a name `make_strategy` knows. At most `max_migrations` migrations at once in total and
    `max_per_host` on any one host (leaving or arriving), those still in progress included; `attempts` bounds the
    hosts tried for emptying in one decision (very large clusters); `seed` feeds the strategies that draw at
    random; a VM's last migration is remembered for `remember_s` (at least the strategy's settling time);
    `merge_moves` off keeps CloudSim 3.0.3's double migration of a VM planned twice in one decision.
    """

    strategy: str = OURS
    max_migrations: int | None = None
    max_per_host: int | None = None
    attempts: int | None = None
    seed: int = 0
    remember_s: float = 7200.0
    merge_moves: bool = True

    @classmethod
    def of(cls, cluster: ClusterConfig) -> StrategySettings:
        """The settings a [cluster] section asks for (its strategy name unchecked: strategy_for checks it)."""
        return cls(
            strategy=cluster.strategy,
            max_migrations=cluster.max_migrations,
            max_per_host=cluster.max_migrations_per_host,
            seed=cluster.seed,
        )


@dataclass(frozen=True)
class PlanState:
    """What the strategies remember between decisions: when each VM (by id) last started migrating, and how many
    decisions were taken (decision n draws its random numbers from a generator seeded with (seed, n))."""

    moved_at: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    decisions: int = 0


@lru_cache(maxsize=64)
def strategy_for(settings: StrategySettings) -> VmStrategy:
    """The strategy the settings name, with their limits (built once per settings); raises StrategyError."""
    for label, value in (("max_migrations", settings.max_migrations), ("max_per_host", settings.max_per_host)):
        if value is not None and value <= 0:
            raise StrategyError(f"{label} must be > 0 (or unset for no limit), got {value}")
    limits = Limits(total=settings.max_migrations, per_host=settings.max_per_host, attempts=settings.attempts)
    return make_strategy(settings.strategy, limits)


def plan_cluster(
    cluster: VmCluster, settings: StrategySettings, state: PlanState, now: float
) -> tuple[list[Migration], PlanState]:
    """One decision on an array snapshot: the migrations to start at `now` (VM and host indices, each with its
    reason) and the state to pass to the next decision. `plan` is the same on a ClusterView; the simulator calls
    this one directly, so both take the same decisions by construction.

    Whatever the strategy, the result keeps the limits on concurrent migrations, never moves a VM whose migration
    is in progress, and moves no VM twice (see `merge_moves`); the VMs' last moves are taken from the state (and
    from the snapshot's `vm_moved_ago_s`, whichever is more recent).
    """
    strategy = strategy_for(settings)
    cluster = replace(cluster, vm_moved_ago_s=_moved_ago(cluster, state, now))
    rng = random.Random(settings.seed * 1_000_003 + state.decisions)
    chosen = _within_limits(strategy.decide(cluster, rng), cluster, settings)
    keep = max(settings.remember_s, float(getattr(strategy, "settle_s", 0.0)))
    moved = {name: t for name, t in state.moved_at.items() if now - t < keep}
    moved.update((cluster.vm_name(m.vm), now) for m in chosen)
    return chosen, PlanState(MappingProxyType(moved), state.decisions + 1)


def plan(
    view: ClusterView,
    settings: StrategySettings,
    state: PlanState,
    now: float,
    in_flight: Sequence[Migrate] = (),
    epoch: int = 0,
) -> tuple[list[Migrate], PlanState]:
    """The live controller's entry point: `(view, settings, state, now) -> (migrations, new state)`, pure.

    `view` is the cluster as observed (VMs listed in the order they arrived on their hosts), `in_flight` the
    migrations still in progress (their VMs stay on their source host in the view; they count against the
    limits and are not moved again), `epoch` the leadership epoch stamped on each action. Start with
    `PlanState()` and pass the returned state to the next call. Raises StrategyError for an unknown strategy and
    ValueError for a view naming an unknown host or power model.
    """
    cluster = cluster_from_view(view)
    if in_flight:
        cluster = _with_in_flight(cluster, in_flight)
    chosen, new_state = plan_cluster(cluster, settings, state, now)
    assert cluster.vm_ids is not None and cluster.host_ids is not None
    actions = [
        Migrate(cluster.vm_ids[m.vm], cluster.host_ids[m.source], cluster.host_ids[m.target], m.reason, epoch)
        for m in chosen
    ]
    return actions, new_state


def _with_in_flight(cluster: VmCluster, in_flight: Sequence[Migrate]) -> VmCluster:
    """The snapshot with the migrations in progress marked: their VMs, and a count per host."""
    vms = cluster.vm_index()
    hosts = {name: h for h, name in enumerate(cluster.host_ids or [])}
    migrating = np.zeros(len(cluster.vm_host), dtype=bool)
    per_host = np.zeros(cluster.hosts, dtype=np.intp)
    for m in in_flight:
        if m.vm in vms:
            migrating[vms[m.vm]] = True
        for name in (m.source, m.target):
            if name in hosts:
                per_host[hosts[name]] += 1
    return replace(cluster, vm_migrating=migrating, host_in_flight=per_host)


def _moved_ago(cluster: VmCluster, state: PlanState, now: float) -> np.ndarray:
    """How long ago each VM last migrated: the snapshot's figure or the state's, whichever is more recent; 0 for
    a VM still migrating."""
    n = len(cluster.vm_host)
    ago = np.full(n, np.inf) if cluster.vm_moved_ago_s is None else cluster.vm_moved_ago_s.astype(np.float64)
    if state.moved_at:
        index = _positions(cluster, list(state.moved_at))
        times = np.array(list(state.moved_at.values()), dtype=np.float64)
        known = index >= 0
        np.minimum.at(ago, index[known], now - times[known])
    if cluster.vm_migrating is not None:
        ago = np.where(cluster.vm_migrating, 0.0, ago)
    return ago


def _positions(cluster: VmCluster, names: list[str]) -> np.ndarray:
    """The index of each named VM in the snapshot, -1 for a VM no longer there."""
    if cluster.vm_ids is None:  # the simulator's VMs are "vm-<index>"
        n = len(cluster.vm_host)
        out = np.array([_simulated_index(name) for name in names], dtype=np.intp)
        return np.where((out >= 0) & (out < n), out, -1).astype(np.intp)
    index = cluster.vm_index()
    return np.array([index.get(name, -1) for name in names], dtype=np.intp)


@lru_cache(maxsize=1 << 17)
def _simulated_index(name: str) -> int:
    """The index in a simulated VM's name "vm-<index>" (-1 for another name); each decision looks up every VM
    remembered as moved, so the names are parsed once."""
    return int(name[3:]) if name.startswith("vm-") and name[3:].isdigit() else -1


def _within_limits(moves: list[Migration], cluster: VmCluster, settings: StrategySettings) -> list[Migration]:
    """The moves in order, dropping any that would break a limit or move a VM still migrating (strategies that
    plan with the limits drop nothing here). A VM planned twice (placed on a host that is then emptied) moves
    once, straight to its last host, unless `settings.merge_moves` is off (CloudSim 3.0.3 migrates it twice)."""
    per_host = (
        np.zeros(cluster.hosts, dtype=np.intp) if cluster.host_in_flight is None else cluster.host_in_flight.copy()
    )
    total = cluster.in_flight_total()
    kept: dict[int, Migration] = {}
    out: list[Migration] = []
    for m in moves:
        if cluster.vm_migrating is not None and cluster.vm_migrating[m.vm]:
            continue
        earlier = kept.get(m.vm) if settings.merge_moves else None
        if earlier is not None:
            per_host[earlier.target] -= 1
            per_host[m.target] += 1
            merged = Migration(m.vm, earlier.source, m.target, f"{m.reason} (instead of {earlier.reason})")
            kept[m.vm] = merged
            continue
        if settings.max_migrations is not None and total >= settings.max_migrations:
            break
        cap = settings.max_per_host
        if cap is not None and (per_host[m.source] >= cap or per_host[m.target] >= cap):
            continue
        kept[m.vm] = m
        out.append(m)
        total += 1
        per_host[m.source] += 1
        per_host[m.target] += 1
    if not settings.merge_moves:
        return out
    final = [kept[m.vm] for m in out]
    return [m for m in final if m.source != m.target]
