"""A ClusterView of a real cluster: the actuator's inventory (hosts, and the VMs on each) and the VMs' CPU use
as the agents sampled it (the libvirt collector's `cpu.util` of `vm/<uuid>`, in the store).

Units, as the strategies want one CPU unit for the whole view: cores. A host offers all its cores, and one VM
may get at most all of them; a VM's size is its vCPUs and its request is vCPUs x its latest interval's mean
utilisation. A VM's history is one mean per interval, newest first (up to 30 intervals). A VM with no sample yet
asks for nothing. A migration is priced at its memory over the migration bandwidth. A VM caught mid-migration is
counted once, on its source (its paused incoming copy on the target is left out).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from loadpilot.act.vm.base import Domain, HostInfo, VmActuator
from loadpilot.model import ClusterView, HostView, VmView
from loadpilot.store import Store

HISTORY = 30
DEFAULT_BANDWIDTH = 100 * 1024 * 1024  # bytes/s when none is configured


@dataclass
class InventoryView:
    """Builds the view from the actuator and the store; one view per interval (observed_at = its start)."""

    actuator: VmActuator
    store: Store
    interval_s: float
    power_model: str
    bandwidth_mib_s: int = 0

    def __call__(self, now: float) -> ClusterView:
        """The cluster at the start of the interval `now` is in."""
        at = math.floor(now / self.interval_s) * self.interval_s
        hosts, vms = [], []
        requests: dict[str, float] = defaultdict(float)
        bandwidth = self.bandwidth_mib_s * 1024 * 1024 or DEFAULT_BANDWIDTH
        infos = self.actuator.hosts()
        seen: set[str] = set()
        for info in infos:
            for dom in self._running(infos, info.id):
                if dom.id in seen:
                    continue
                seen.add(dom.id)
                history = self._history(dom.id, at)
                request = dom.vcpus * (history[0] if history else 0.0)
                requests[info.id] += request
                vms.append(
                    VmView(
                        id=dom.id,
                        host=info.id,
                        cpu_request=request,
                        cpu_size=float(dom.vcpus),
                        memory=float(dom.memory),
                        history=history,
                        migration_s=dom.memory / bandwidth,
                    )
                )
            hosts.append((info, requests))
        views = tuple(
            HostView(
                id=info.id,
                cpu=float(info.cpus),
                cpu_per_vm=float(info.cpus),
                memory=float(info.memory),
                power_model=self.power_model,
                utilisation=min(1.0, req[info.id] / info.cpus) if info.cpus else 0.0,
            )
            for info, req in hosts
        )
        return ClusterView(views, tuple(vms), self.interval_s, True, at)

    def _running(self, infos: list[HostInfo], host: str) -> list[Domain]:
        """The running domains of a host, without the paused copy a live migration starts on its target (the VM
        counts on its source until it has moved)."""
        out = []
        for dom in self.actuator.domains(host):
            if not dom.running:
                continue
            if dom.paused and self._elsewhere(infos, dom):
                continue
            out.append(dom)
        return out

    def _elsewhere(self, infos: list[HostInfo], dom: Domain) -> bool:
        """True when the same VM runs, unpaused, on another host."""
        for info in infos:
            if info.id != dom.host and any(
                d.id == dom.id and d.running and not d.paused for d in self.actuator.domains(info.id)
            ):
                return True
        return False

    def _history(self, vm: str, at: float) -> tuple[float, ...]:
        """Mean cpu.util per interval before `at`, newest first."""
        start = at - HISTORY * self.interval_s
        samples = self.store.series(f"vm/{vm}", "cpu.util", start, at)
        buckets: dict[int, list[float]] = defaultdict(list)
        for s in samples:
            buckets[int((at - s.timestamp - 1e-9) // self.interval_s)].append(s.value)
        out = []
        for k in range(HISTORY):
            values = buckets.get(k)
            if not values:
                break
            out.append(sum(values) / len(values))
        return tuple(out)
