"""The simulator's snapshot as the controller would see it: a `ClusterView` of model types."""

from __future__ import annotations

import numpy as np

from loadpilot.decide.vms.cluster import VmCluster
from loadpilot.decide.vms.view import POWER_MODELS
from loadpilot.model import ClusterView, HostView, VmView

MB = 2**20


def view_of(cluster: VmCluster, power_names: list[str] | None = None) -> ClusterView:
    """A ClusterView of a simulator snapshot (memory turned from MB into bytes), VMs in host arrival order."""
    names = power_names or list(POWER_MODELS)
    on = cluster.is_on()
    hosts = tuple(
        HostView(
            id=cluster.host_name(h),
            cpu=float(cluster.capacity[h]),
            cpu_per_vm=float(cluster.pe_capacity[h]),
            memory=float(cluster.ram[h]) * MB,
            power_model=names[int(cluster.power_kind[h])],
            utilisation=float(cluster.utilisation[h]),
            powered=bool(on[h]),
            maintenance=bool(cluster.maintenance[h]) if cluster.maintenance is not None else False,
        )
        for h in range(cluster.hosts)
    )
    order = np.lexsort((cluster.vm_order, cluster.vm_host))
    length = cluster.vm_history_len
    vms = tuple(
        VmView(
            id=cluster.vm_name(v),
            host=cluster.host_name(int(cluster.vm_host[v])) if cluster.vm_host[v] >= 0 else None,
            cpu_request=float(cluster.vm_request[v]),
            cpu_size=float(cluster.vm_size[v]),
            memory=float(cluster.vm_ram[v]) * MB,
            history=tuple(float(x) for x in cluster.vm_history[v, : int(length[v]) if length is not None else None]),
            migration_s=float(cluster.vm_migration_s[v]),
            moved_ago_s=float(cluster.vm_moved_ago_s[v]) if cluster.vm_moved_ago_s is not None else float("inf"),
            group=str(int(cluster.vm_group[v])) if cluster.vm_group is not None and cluster.vm_group[v] >= 0 else None,
        )
        for v in order.tolist()
    )
    return ClusterView(hosts, vms, cluster.interval_s, cluster.ram_limit)
