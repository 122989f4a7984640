"""Which VM to take off an overloaded host: minimum migration time (MMT), maximum correlation (MC), random
(RS), minimum utilisation (MU), and Sandpiper's volume-to-size ratio (VSR).

A selector picks one VM at a time; the caller takes it off the host and asks again while the host is still
overloaded. Ties go to the VM that arrived on the host first, as in CloudSim.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from loadpilot.decide.vms.cluster import Plan
from loadpilot.decide.vms.detect import Detector


class Selector(Protocol):
    """Picks the next VM to migrate off host h, or None when no VM can go."""

    @property
    def name(self) -> str:
        """The selector's short name."""
        ...

    def pick(self, plan: Plan, h: int, rng: random.Random) -> int | None:
        """One VM of host h (in the plan), or None."""
        ...

    def describe(self, plan: Plan, v: int) -> str:
        """Why this VM was chosen."""
        ...


@dataclass(frozen=True)
class MinimumMigrationTime:
    """MMT: the VM that migrates fastest (the least memory to copy)."""

    name: str = "mmt"

    def pick(self, plan: Plan, h: int, rng: random.Random) -> int | None:
        """The VM with the least memory; the earliest arrival on ties."""
        vms = plan.host_vms[h]
        if not vms:
            return None
        times = plan.cluster.vm_migration_s[vms]
        return vms[int(np.argmin(times))]

    def describe(self, plan: Plan, v: int) -> str:
        """Why: the shortest migration."""
        return f"shortest migration ({plan.cluster.vm_migration_s[v]:.1f} s)"


@dataclass(frozen=True)
class MinimumUtilisation:
    """MU: the VM using the least CPU now."""

    name: str = "mu"

    def pick(self, plan: Plan, h: int, rng: random.Random) -> int | None:
        """The VM with the smallest request; the earliest arrival on ties."""
        vms = plan.host_vms[h]
        if not vms:
            return None
        return vms[int(np.argmin(plan.cluster.vm_request[vms]))]

    def describe(self, plan: Plan, v: int) -> str:
        """Why: the least CPU."""
        return f"least CPU in use ({plan.cluster.vm_request[v]:.0f})"


@dataclass(frozen=True)
class RandomSelection:
    """RS: any VM, uniformly at random (from the generator the caller passes, so runs repeat)."""

    name: str = "rs"

    def pick(self, plan: Plan, h: int, rng: random.Random) -> int | None:
        """A uniformly random VM of the host."""
        vms = plan.host_vms[h]
        if not vms:
            return None
        return vms[rng.randrange(len(vms))]

    def describe(self, plan: Plan, v: int) -> str:
        """Why: drawn at random."""
        return "drawn at random"


@dataclass(frozen=True)
class MaximumCorrelation:
    """MC: the VM whose CPU history is best explained by the others' (largest R^2 of a least-squares fit);
    MMT when there is too little history for the fit (fewer values than VMs) or a single VM."""

    name: str = "mc"

    def pick(self, plan: Plan, h: int, rng: random.Random) -> int | None:
        """The VM most correlated with the rest of its host."""
        vms = plan.host_vms[h]
        if not vms:
            return None
        c = plan.cluster
        n = len(vms)
        m = int(c.vm_history.shape[1] if c.vm_history_len is None else c.vm_history_len[vms].min())
        if n < 2 or m < n:
            return MinimumMigrationTime().pick(plan, h, rng)
        return vms[_most_correlated(c.vm_history[vms, :m])]

    def describe(self, plan: Plan, v: int) -> str:
        """Why: the most correlated with its neighbours."""
        return "CPU most correlated with the other VMs on the host"


R2_ROUNDING = 1e-9  # R^2 values closer than this are equal fits told apart by rounding alone (float64: ~1e-16)


# Below this condition number the closed form's rounding (~cond x 1e-16) is far under R2_ROUNDING.
WELL_CONDITIONED = 1e6


def _most_correlated(data: NDArray[np.float64]) -> int:
    """The row best explained by the others (largest R^2 of a least-squares fit with an intercept; the first on
    ties, within rounding; 0 when none has R^2 > 0), as one np.linalg.lstsq per row would find (CloudSim's OLS
    R^2): in closed form from the inverse covariance when it is well conditioned, else every row's fit at once."""
    top_r2 = _r2_closed_form(data)
    if top_r2 is None:
        top_r2 = _r2_by_fits(data)
    top = float(top_r2.max())
    if top <= np.finfo(np.float64).tiny:
        return 0
    # Equal fits (two VMs always explain each other equally) differ only by rounding: the first VM wins.
    return int(np.flatnonzero(top_r2 >= top - R2_ROUNDING)[0])


def _r2_closed_form(data: NDArray[np.float64]) -> NDArray[np.float64] | None:
    """R^2 of each row on the others: 1 - 1 / (S_ii (S^-1)_ii), S the rows' covariance; None when S is singular
    or ill conditioned (a row without variance, rows that explain each other exactly, too few values)."""
    centred = data - data.mean(axis=1, keepdims=True)
    cov = centred @ centred.T
    eig = np.linalg.eigvalsh(cov)
    if eig[0] <= eig[-1] / WELL_CONDITIONED:
        return None
    inverse = np.linalg.inv(cov)
    return np.asarray(1 - 1 / (np.diag(cov) * np.diag(inverse)), dtype=np.float64)


def _r2_by_fits(data: NDArray[np.float64]) -> NDArray[np.float64]:
    """R^2 of each row on the others, every fit at once, with np.linalg.lstsq's pseudo-inverse cut-off; -inf for a
    row without variance."""
    n, m = data.shape
    others = np.array([[j for j in range(n) if j != i] for i in range(n)], dtype=np.intp)
    x = np.concatenate([np.ones((n, m, 1)), data[others].transpose(0, 2, 1)], axis=2)  # (n, m, n)
    coef = np.linalg.pinv(x, rcond=np.finfo(np.float64).eps * max(m, n)) @ data[:, :, None]
    residual = data - (x @ coef)[:, :, 0]
    total = ((data - data.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
    safe = np.where(total > 0, total, 1.0)
    return np.asarray(np.where(total > 0, 1 - (residual**2).sum(axis=1) / safe, -np.inf), dtype=np.float64)


@dataclass(frozen=True)
class VolumeToSize:
    """Sandpiper's VSR: volume = 1/((1-cpu)(1-mem)) per VM, divided by its memory; the highest goes first
    (the most load moved per byte copied)."""

    name: str = "vsr"

    def pick(self, plan: Plan, h: int, rng: random.Random) -> int | None:
        """The VM with the highest volume-to-size ratio."""
        vms = plan.host_vms[h]
        if not vms:
            return None
        c = plan.cluster
        cpu = np.minimum(c.vm_request[vms] / c.capacity[h], 0.99)
        mem = np.minimum(c.vm_ram[vms] / c.ram[h], 0.99)
        vsr = 1 / ((1 - cpu) * (1 - mem)) / np.maximum(c.vm_ram[vms], 1e-9)
        return vms[int(np.argmax(vsr))]

    def describe(self, plan: Plan, v: int) -> str:
        """Why: the most load per byte to copy."""
        return "highest volume-to-size ratio"


@dataclass(frozen=True)
class CheapestRelief:
    """Ours: the VM that relieves the most CPU per second of migration (request / migration time), so an
    overloaded host is relieved with as few and as short migrations as possible."""

    name: str = "cr"

    def pick(self, plan: Plan, h: int, rng: random.Random) -> int | None:
        """The VM with the largest request per second of migration."""
        vms = plan.host_vms[h]
        if not vms:
            return None
        c = plan.cluster
        return vms[int(np.argmax(c.vm_request[vms] / np.maximum(c.vm_migration_s[vms], 1e-9)))]

    def describe(self, plan: Plan, v: int) -> str:
        """Why: most CPU relieved per second of migration."""
        c = plan.cluster
        return f"most CPU relieved per second of migration ({c.vm_request[v]:.0f} in {c.vm_migration_s[v]:.1f} s)"


@dataclass(frozen=True)
class CheapestSufficient:
    """Ours: among the VMs whose leaving ends the overload (the detector's verdict on the host without it), the
    one whose migration costs least: a migrating VM gets 90 % of its demand for its migration time, so the CPU it
    loses is proportional to request x migration time (PDM). When no single VM is enough, several must go: the
    cost per unit of CPU relieved is then the migration time alone, so the shortest migration goes first, the
    busiest VM on ties (fewer migrations)."""

    detector: Detector
    name: str = "cs"

    def pick(self, plan: Plan, h: int, rng: random.Random) -> int | None:
        """The cheapest VM that is enough, else the shortest migration."""
        vms = plan.host_vms[h]
        if not vms:
            return None
        c = plan.cluster
        index = np.asarray(vms, dtype=np.intp)
        requests = c.vm_request[index]
        seconds = c.vm_migration_s[index]
        enough = ~self.detector.evaluate(plan.series_without(h, index, self.detector.history_width))[0]
        if enough.any():
            cost = np.where(enough, requests * seconds, np.inf)
            return vms[int(np.lexsort((-requests, cost))[0])]
        return vms[int(np.lexsort((-requests, seconds))[0])]

    def describe(self, plan: Plan, v: int) -> str:
        """Why: the least CPU lost while migrating."""
        c = plan.cluster
        return f"cheapest migration that relieves the host ({c.vm_request[v]:.0f} for {c.vm_migration_s[v]:.1f} s)"


def make_selector(name: str) -> Selector:
    """A selector from its short name: mmt, mc, rs, mu, vsr."""
    known: dict[str, Selector] = {
        "mmt": MinimumMigrationTime(),
        "mc": MaximumCorrelation(),
        "rs": RandomSelection(),
        "mu": MinimumUtilisation(),
        "vsr": VolumeToSize(),
        "cr": CheapestRelief(),
    }
    if name not in known:
        raise ValueError(f"unknown VM selection {name!r} (known: {', '.join(known)})")
    return known[name]
