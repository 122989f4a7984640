"""A simulated cluster written straight into a store, as the collectors would have reported it: hosts with CPU and
memory random walks, a few VMs per host, two pools with their workers' HTTP metrics, and some events.

For the dashboard's tests (numbers, page weight, browsers). It carries hostile names on purpose: one host is
called `<script>alert(1)</script>` and one event's reason holds a `<script>` tag, so pages can be checked for XSS.
"""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass, field

from loadpilot.model import Batch, Event, Resource, Sample
from loadpilot.store import Store

XSS_NAME = "<script>alert(1)</script>"
XSS_REASON = 'cpu high <script>alert("reason")</script> <img src=x onerror=alert(2)>'
POOLS = {"web": 4, "api": 3}  # pool -> workers


@dataclass
class Fleet:
    """What write_fleet wrote, for tests to look things up."""

    now: float
    interval_s: float
    hosts: list[str]
    vms: list[str]
    pools: list[str]
    workers: dict[str, list[str]] = field(default_factory=dict)  # pool -> worker resource ids
    events: list[int] = field(default_factory=list)


def _walk(rng: random.Random, value: float, step: float = 0.04) -> float:
    return min(1.0, max(0.0, value + rng.gauss(0.0, step)))


def write_fleet(
    store: Store,
    hosts: int = 1000,
    minutes: float = 15,
    interval_s: float = 15,
    now: float | None = None,
    seed: int = 8,
) -> Fleet:
    """Write `minutes` of history at `interval_s` ending at `now` for a simulated cluster; returns what it wrote.

    Hosts report cpu.util and mem.util every tick; VMs report once, at `now`; pools report pool.* and their
    workers the pool collector's metrics every tick. The last host is the hostile name XSS_NAME.
    """
    end = time.time() if now is None else now
    rng = random.Random(seed)
    host_ids = [f"host-{i:04d}" for i in range(hosts - 1)] + [XSS_NAME] if hosts else []
    fleet = Fleet(end, interval_s, host_ids, [], list(POOLS))
    resources = [Resource(h, "host", {"host": h, "cores": "8", "os": "Linux"}) for h in host_ids]
    resources += _vms(rng, host_ids, fleet)
    resources += _pool_resources(host_ids, fleet)
    cpu = {h: rng.uniform(0.05, 0.9) for h in host_ids}
    mem = {h: rng.uniform(0.2, 0.8) for h in host_ids}
    ticks = max(1, int(minutes * 60 / interval_s))
    for k in range(ticks):
        t = end - (ticks - 1 - k) * interval_s
        samples: list[Sample] = []
        for h in host_ids:
            cpu[h], mem[h] = _walk(rng, cpu[h]), _walk(rng, mem[h], 0.01)
            samples += [
                Sample(h, "cpu.util", cpu[h], t, "ratio", "host"),
                Sample(h, "mem.util", mem[h], t, "ratio", "host"),
            ]
        samples += _pool_samples(rng, fleet, t, k)
        if k == ticks - 1:
            samples += [
                Sample(v, m, rng.uniform(0, 1), t, "ratio", "libvirt")
                for v in fleet.vms
                for m in ("cpu.util", "mem.util")
            ]
        store.write_batch(
            Batch(uuid.uuid4().hex, "fleet", interval_s, tuple(samples), tuple(resources) if k == 0 else ())
        )
    fleet.events = _events(store, fleet)
    return fleet


def _vms(rng: random.Random, host_ids: list[str], fleet: Fleet) -> list[Resource]:
    out = []
    for h in host_ids:
        for j in range(rng.randint(1, 4)):
            name = XSS_NAME if h == host_ids[0] and j == 0 else f"{h}-vm{j}"
            out.append(Resource(f"vm/{uuid.UUID(int=rng.getrandbits(128))}", "vm", {"host": h, "name": name}))
    fleet.vms = [r.id for r in out]
    return out


def _pool_resources(host_ids: list[str], fleet: Fleet) -> list[Resource]:
    out = []
    for n, (pool, size) in enumerate(POOLS.items()):
        host = host_ids[n % len(host_ids)] if host_ids else "nowhere"
        out.append(Resource(f"pool/{pool}", "pool", {"pool": pool, "host": host, "mode": "ports"}))
        fleet.workers[pool] = []
        for i in range(size):
            rid = f"pool/{pool}/{pool}-{i}"
            labels = {"pool": pool, "host": host, "worker": f"{pool}-{i}", "port": str(8481 + 10 * n + i)}
            out.append(Resource(rid, "pool_worker", labels))
            fleet.workers[pool].append(rid)
    return out


def _pool_samples(rng: random.Random, fleet: Fleet, t: float, k: int) -> list[Sample]:
    out = []
    for pool, rids in fleet.workers.items():
        pid = f"pool/{pool}"
        out += [Sample(pid, f"pool.{m}", float(len(rids)), t, "workers", "pool") for m in ("desired", "size", "ready")]
        out.append(Sample(pid, "pool.failed", 0.0, t, "workers", "pool"))
        for i, rid in enumerate(rids):
            rate = 20.0 + 5 * i + rng.uniform(-2, 2)
            out += [
                Sample(rid, "cpu.util", 0.3 + 0.1 * i + rng.uniform(-0.05, 0.05), t, "cores", "pool"),
                Sample(rid, "mem.rss_bytes", 50e6 + i * 1e6, t, "bytes", "pool"),
                Sample(rid, "worker.ready", 1.0, t, "", "pool"),
                Sample(rid, "worker.restarts", float(i == 0), t, "restarts", "pool"),
                Sample(rid, "http.requests_total", 1000.0 + k * rate * fleet.interval_s, t, "requests", "pool"),
                Sample(rid, "http.requests_rate", rate, t, "requests/s", "pool"),
                Sample(rid, "http.in_flight", float(i + 1), t, "requests", "pool"),
                Sample(rid, "http.latency_mean", 0.02 + 0.005 * i, t, "s", "pool"),
                Sample(rid, "http.latency_p95", 0.05 + 0.01 * i, t, "s", "pool"),
            ]
    return out


def _events(store: Store, fleet: Fleet) -> list[int]:
    t = fleet.now
    host = fleet.hosts[0] if fleet.hosts else "nowhere"
    vm = fleet.vms[0] if fleet.vms else "vm/none"  # a migration's subject is the VM it moves
    events = [
        Event(t - 600, "leadership", "controller/ctl-1", "became the leader (epoch 1)", "ok", {"epoch": 1}),
        Event(t - 500, "scale", "pool/web", "cpu 0.82 above target 0.7: 3 -> 4", "ok", {"from": 3, "to": 4}),
        Event(t - 400, "scale", "pool/api", "rps_per_worker 30 above target 25: 2 -> 3", "ok", {"from": 2, "to": 3}),
        Event(t - 300, "hold", "pool/web", "keep 4: within tolerance", "ok", {}),
        Event(t - 200, "migrate", vm, f"{host} hot: cpu 0.95", "error", {"source": host}),
        Event(t - 100, "scale", "pool/api", XSS_REASON, "refused", {"note": XSS_NAME}),
    ]
    return [store.add_event(e) for e in events]
