"""A `ClusterView` (model types, what a live controller observed) turned into the array snapshot (`VmCluster`)
the strategies compute on. `strategies.plan` uses it; the simulator builds the same snapshot directly.
"""

from __future__ import annotations

import numpy as np

from loadpilot.decide.vms.cluster import VmCluster
from loadpilot.decide.vms.power import HP_G4, HP_G5, PowerTable, table_matrix
from loadpilot.model import ClusterView

POWER_MODELS = {t.name: t for t in (HP_G4, HP_G5)}
HISTORY = 30


def cluster_from_view(view: ClusterView, power_models: dict[str, PowerTable] | None = None) -> VmCluster:
    """The array snapshot of a view; raises ValueError for an unknown power model or host."""
    models = power_models or POWER_MODELS
    names = sorted({h.power_model for h in view.hosts})
    unknown = [n for n in names if n not in models]
    if unknown:
        raise ValueError(f"unknown power model(s) {unknown}; known: {sorted(models)}")
    kind_of = {n: i for i, n in enumerate(names)}
    index = {h.id: i for i, h in enumerate(view.hosts)}
    strays = sorted({v.host for v in view.vms if v.host is not None and v.host not in index})
    if strays:
        raise ValueError(f"VMs on host(s) {strays} the view does not list; known hosts: {sorted(index)[:10]}")
    hosts = view.hosts
    capacity = np.array([h.cpu for h in hosts], dtype=np.float64)
    pe = np.array([h.cpu_per_vm for h in hosts], dtype=np.float64)
    vm_host = np.array([index[v.host] if v.host is not None else -1 for v in view.vms], dtype=np.intp)
    request = np.array([v.cpu_request for v in view.vms], dtype=np.float64)
    placed = vm_host >= 0
    capped = np.minimum(request[placed], pe[vm_host[placed]])
    total = np.asarray(np.bincount(vm_host[placed], weights=capped, minlength=len(hosts)), dtype=np.float64)
    history = np.zeros((len(view.vms), HISTORY))
    lengths = np.zeros(len(view.vms), dtype=np.intp)
    for i, v in enumerate(view.vms):
        values = v.history[:HISTORY]
        history[i, : len(values)] = values
        lengths[i] = len(values)
    groups = sorted({v.group for v in view.vms if v.group is not None})
    group_of = {g: i for i, g in enumerate(groups)}
    return VmCluster(
        capacity=capacity,
        pe_capacity=pe,
        ram=np.array([h.memory for h in hosts], dtype=np.float64),
        power_kind=np.array([kind_of[h.power_model] for h in hosts], dtype=np.intp),
        power_watts=table_matrix([models[n] for n in names]),
        utilisation=np.array([h.utilisation for h in hosts], dtype=np.float64),
        allocated=np.minimum(total, capacity),
        available=np.maximum(capacity - total, 0.0),
        vm_host=vm_host,
        vm_request=request,
        vm_size=np.array([v.cpu_size for v in view.vms], dtype=np.float64),
        vm_ram=np.array([v.memory for v in view.vms], dtype=np.float64),
        vm_history=history,
        vm_migration_s=np.array([v.migration_s for v in view.vms], dtype=np.float64),
        vm_order=np.arange(len(view.vms), dtype=np.intp),
        vm_history_len=lengths,
        interval_s=view.interval_s,
        ram_limit=view.memory_limit,
        maintenance=np.array([h.maintenance for h in hosts], dtype=bool),
        powered=np.array([h.powered for h in hosts], dtype=bool),
        charge_switch_on=True,
        vm_group=np.array([group_of[v.group] if v.group is not None else -1 for v in view.vms], dtype=np.intp)
        if groups
        else None,
        vm_moved_ago_s=np.array([v.moved_ago_s for v in view.vms], dtype=np.float64),
        vm_ids=[v.id for v in view.vms],
        host_ids=[h.id for h in hosts],
    )
