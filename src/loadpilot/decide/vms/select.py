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

from loadpilot.decide.vms.cluster import Plan


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
        data = c.vm_history[vms, :m]
        best, best_index = float(np.finfo(np.float64).tiny), 0
        for i in range(n):
            y = data[i]
            x = np.column_stack([np.ones(m), np.delete(data, i, axis=0).T])
            coef, *_ = np.linalg.lstsq(x, y, rcond=None)
            residual = y - x @ coef
            total = float(((y - y.mean()) ** 2).sum())
            r2 = 1 - float(residual @ residual) / total if total > 0 else float("nan")
            if r2 > best:
                best, best_index = r2, i
        return vms[best_index]

    def describe(self, plan: Plan, v: int) -> str:
        """Why: the most correlated with its neighbours."""
        return "CPU most correlated with the other VMs on the host"


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
