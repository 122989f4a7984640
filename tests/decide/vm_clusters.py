"""Small hand-made VM clusters for the VM strategy tests."""

from __future__ import annotations

import numpy as np

from loadpilot.decide.vms.cluster import VmCluster
from loadpilot.decide.vms.power import HP_G4, HP_G5, table_matrix


def cluster(
    host_kinds: list[int],
    vms: list[tuple[int, float, float]],
    *,
    history: list[list[float]] | None = None,
    ram_limit: bool = False,
    host_ram: float = 4096.0,
    maintenance: list[int] | None = None,
    groups: list[int] | None = None,
    moved_ago: list[float] | None = None,
) -> VmCluster:
    """Hosts of kind 0 (G4: 2 x 1860 MIPS) or 1 (G5: 2 x 2660); VMs as (host, request MIPS, RAM MB), size 2500."""
    kinds = np.array(host_kinds, dtype=np.intp)
    pe = np.where(kinds == 0, 1860.0, 2660.0)
    capacity = 2 * pe
    n = len(vms)
    host = np.array([v[0] for v in vms], dtype=np.intp)
    request = np.array([v[1] for v in vms], dtype=np.float64)
    ram = np.array([v[2] for v in vms], dtype=np.float64)
    placed = host >= 0
    used = np.bincount(host[placed], weights=request[placed], minlength=len(kinds))
    hist = np.array(history, dtype=np.float64) if history is not None else np.tile(request[:, None] / 2500, (1, 30))
    return VmCluster(
        capacity=capacity,
        pe_capacity=pe,
        ram=np.full(len(kinds), host_ram),
        power_kind=kinds,
        power_watts=table_matrix([HP_G4, HP_G5]),
        utilisation=np.minimum(used / capacity, 1.0),
        allocated=np.minimum(used, capacity),
        available=np.maximum(capacity - used, 0.0),
        vm_host=host,
        vm_request=request,
        vm_size=np.full(n, 2500.0),
        vm_ram=ram,
        vm_history=hist,
        vm_migration_s=ram / 62.5,
        vm_order=np.arange(n, dtype=np.intp),
        ram_limit=ram_limit,
        maintenance=None if maintenance is None else np.isin(np.arange(len(kinds)), maintenance),
        vm_group=None if groups is None else np.array(groups, dtype=np.intp),
        vm_moved_ago_s=None if moved_ago is None else np.array(moved_ago, dtype=np.float64),
    )
