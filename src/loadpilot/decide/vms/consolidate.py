"""Dynamic consolidation as Beloglazov & Buyya (CCPE 2012) and CloudSim 3.0.3 do it, with constraints.

One decision: (1) find the overloaded hosts; take VMs off each (the selector's choice, one at a time, until the
host is no longer overloaded); place them with PABFD away from the overloaded hosts. Hosts in maintenance are
evacuated the same way. (2) Then, from the least utilised host up, try to move all the VMs of each host
elsewhere so it can be switched off; a host whose VMs cannot all be placed is left alone. Limits on migrations
(in total, and per host as source or target) are respected throughout.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from loadpilot.decide.vms.cluster import Plan, VmCluster, sum_by
from loadpilot.decide.vms.detect import Detector
from loadpilot.decide.vms.place import Migration, PowerAwareBestFit
from loadpilot.decide.vms.select import Selector

Bools = NDArray[np.bool_]
Floats = NDArray[np.float64]


@dataclass(frozen=True)
class Limits:
    """At most `total` migrations at once, `per_host` on any host (leaving or arriving), those in progress
    included, and `attempts` hosts tried for emptying per decision (bounds a decision's work on very large
    clusters)."""

    total: int | None = None
    per_host: int | None = None
    attempts: int | None = None


@dataclass
class Consolidation:
    """An overload detector, a VM selector and PABFD placement, with the under-load phase (CloudSim's policy).

    Knobs CloudSim does not have (off by default): `settle_s`, a VM that migrated less than that long ago is
    not moved again and its host is not emptied (no ping-pong); `underload_below`, only hosts less utilised than
    that are emptied; `headroom`, no target may be asked for more than that share of its CPU; `peak_window`, a
    target must have room for the recent peaks (the largest of that many newest values) of all its VMs at once,
    the new one included, and a core as large as the new one's peak; `cheapest_first`, the under-loaded host
    that costs least to empty (the CPU its VMs lose while migrating, then their migration time) is tried first,
    not the least utilised; `whole_core`, a VM goes only where one core can give it its full size, and a VM that
    asked for more than its host's core twice in a row (under-served whatever the host's load) leaves it.
    """

    detector: Detector
    selector: Selector
    underload: bool = True
    limits: Limits = Limits()
    name: str = ""
    settle_s: float = 0.0
    underload_below: float = 1.0
    headroom: float = np.inf
    peak_window: int | None = None
    cheapest_first: bool = False
    whole_core: bool = False

    def decide(self, cluster: VmCluster, rng: random.Random) -> list[Migration]:
        """The migrations of one decision, each with its reason."""
        plan = Plan.of(cluster, self.detector.history_width)
        if self.peak_window is not None:
            plan.track_peaks(self.peak_window)
        placement = PowerAwareBestFit(self.detector, self.headroom, self.whole_core)
        power_now = plan.power_now()
        moves = _Moves(cluster, self.limits)

        over, values = self.detector.evaluate(plan.series(np.arange(cluster.hosts), self.detector.history_width))
        leaving = over.copy()
        if cluster.maintenance is not None:
            leaving |= cluster.maintenance
        picked: list[tuple[int, int, str]] = []
        for h in np.flatnonzero(leaving).tolist():
            if over[h]:
                util = float(plan.requested[h] / cluster.capacity[h])
                why = f"{cluster.host_name(h)} overloaded: {self.detector.describe(float(values[h]), util)}"
            else:
                why = f"{cluster.host_name(h)} in maintenance: evacuate"
            while moves.may_leave(h):
                v = self._pick(plan, h, rng)
                if v is None:
                    break
                picked.append((v, h, f"{why}; {self.selector.describe(plan, v)}"))
                plan.remove(v, h)
                moves.reserve_leaving(h)
                if not over[h]:
                    continue
                if not self._overloaded(plan, h):
                    break

        core_bound = self._core_bound(plan, leaving, moves) if self.whole_core else []
        stays = {v: source for v, source, _ in core_bound}  # optional moves: back in place unless they find a host
        picked += core_bound
        # A host a VM leaves holds its memory until the copy ends: it receives nothing in this decision.
        senders = leaving.copy()
        senders[[source for _, source, _ in core_bound]] = True
        requests = cluster.vm_request
        picked.sort(key=lambda item: -requests[item[0]])  # stable: decreasing CPU, ties in selection order
        migrations: list[Migration] = []
        excluded = senders | moves.full_targets()
        for v, source, why in picked:
            if not moves.may_start():
                break
            if migrations and self.limits.per_host is not None:  # arrivals may have filled a host
                excluded = senders | moves.full_targets()
            target = placement.find_host(plan, v, excluded, power_now)
            if target is None:
                continue
            stays.pop(v, None)
            plan.add(v, target)
            moves.reserve_arriving(target)
            migrations.append(
                Migration(v, source, target, f"{why}; to {cluster.host_name(target)} (least power added)")
            )
        for v, source in stays.items():  # a VM short of a core with nowhere better to go stays, with its memory
            plan.add(v, source)
            moves.release_leaving(source)
        if self.underload:
            migrations += self._underload(plan, placement, power_now, over | (senders & ~leaving), moves)
        return migrations

    def _overloaded(self, plan: Plan, h: int) -> bool:
        """Whether host h is overloaded as it stands in the plan (told alone when the detector can)."""
        width = self.detector.history_width
        utilisation = float(plan.requested[h]) / float(plan.cluster.capacity[h])
        history = plan.history[h, :width].tolist() if width else []
        intervals = math.ceil(float(plan.max_migration_s[h]) / plan.cluster.interval_s)  # as Plan.series
        verdict = self.detector.evaluate_one(utilisation, history, int(plan.length[h]) if width else 0, intervals)
        if verdict is None:
            return bool(self.detector.evaluate(plan.series(np.array([h]), width))[0][0])
        return verdict

    def _core_bound(self, plan: Plan, leaving: Bools, moves: _Moves) -> list[tuple[int, int, str]]:
        """VMs that asked for more than one core of their host in the last two measurements (so they got less,
        however idle the host, and not for a single spike) and would fit on a larger core somewhere: each leaves
        its host, unless it is settling or migrating; it is placed like the others (PABFD, a whole core for its
        size)."""
        c = plan.cluster
        on = c.vm_host >= 0
        host = np.where(on, c.vm_host, 0)
        core = c.pe_capacity[host]
        bound = on & (c.vm_request > core) & (c.vm_request <= c.pe_capacity.max()) & ~leaving[host]
        if c.vm_history.shape[1] > 1:  # a need that lasts: the measurement before asked for more than the core too
            bound &= c.vm_history[:, 1] * c.vm_size > core
        bound &= ~self._settling(c)
        if c.vm_migrating is not None:
            bound &= ~c.vm_migrating
        out: list[tuple[int, int, str]] = []
        for v in np.flatnonzero(bound).tolist():
            h = int(c.vm_host[v])
            if not moves.may_leave(h):
                continue
            why = f"{c.vm_name(v)} asked for {c.vm_request[v]:.0f}, more than one core of {c.host_name(h)}"
            out.append((v, h, f"{why} ({c.pe_capacity[h]:.0f}): move it to a larger core"))
            plan.remove(v, h)
            moves.reserve_leaving(h)
        return out

    def _settling(self, c: VmCluster) -> NDArray[np.bool_]:
        """VMs that migrated too recently to move again."""
        if self.settle_s <= 0 or c.vm_moved_ago_s is None:
            return np.zeros(len(c.vm_host), dtype=bool)
        return np.asarray(c.vm_moved_ago_s < self.settle_s)

    def _pick(self, plan: Plan, h: int, rng: random.Random) -> int | None:
        """The selector's choice among the VMs of h that may move: never one still migrating; one that moved
        recently only when all the others did too (an overload outweighs the settling time)."""
        c = plan.cluster
        vms = plan.host_vms[h]
        movable = vms if c.vm_migrating is None else [v for v in vms if not c.vm_migrating[v]]
        settling = self._settling(c)
        preferred = [v for v in movable if not settling[v]] or movable
        if len(preferred) == len(vms):
            return self.selector.pick(plan, h, rng)
        if not preferred:
            return None
        plan.host_vms[h] = preferred
        try:
            return self.selector.pick(plan, h, rng)
        finally:
            plan.host_vms[h] = vms

    def _underload(
        self, plan: Plan, placement: PowerAwareBestFit, power_now: NDArray[np.float64], over: Bools, moves: _Moves
    ) -> list[Migration]:
        """Empty under-loaded hosts one by one (the least utilised first, or the cheapest to empty) when all their
        VMs fit elsewhere; the hosts marked in `over` (overloaded, or a VM leaving them) are neither emptied nor
        filled."""
        c = plan.cluster
        off = ~c.is_on()
        not_source = over | off
        not_target = over | off
        if c.maintenance is not None:
            not_source = not_source | c.maintenance
            not_target = not_target | c.maintenance
        # The least utilised eligible host first; utilisation is as measured, so the order is fixed, and the
        # hosts that drop out (chosen, or used as targets) only ever grow: one pass in that order is CloudSim's loop.
        key = np.where(c.utilisation < min(1.0, self.underload_below), c.utilisation, np.inf)
        if c.powered is not None:  # a powered host with idle VMs only is the least utilised of all
            key = np.where(c.powered & (c.utilisation == 0), -1.0, key)
        if self.cheapest_first:
            order = np.lexsort((np.arange(c.hosts), key, *_emptying_cost(c, np.isfinite(key))[::-1]))
        else:
            order = np.lexsort((np.arange(c.hosts), key))
        finite = np.isfinite(key[order])
        order = order[: order.size if finite.all() else int(np.argmin(finite))]  # the loop ends at the first inf
        # A host marked now stays marked, and an empty host only gains VMs as a target, which marks it: neither
        # is ever tried, so they are left out before the loop (which still skips the hosts it marks itself).
        order = order[~not_source[order] & (plan.count[order] != 0)]
        settling = self._settling(c) if self.settle_s > 0 else None
        requests = c.vm_request.tolist()
        room = _Room(plan)
        each_room: _EachRoom | None = None
        failed = 0
        migrations: list[Migration] = []
        attempts = 0
        for i, h in enumerate(order.tolist()):
            if not moves.may_start():
                break
            if not_source[h]:
                continue
            if self.limits.attempts is not None and attempts >= self.limits.attempts:
                break
            attempts += 1
            not_source[h] = True
            not_target[h] = True
            vms = list(plan.host_vms[h])
            if settling is not None and settling[vms].any():
                continue
            if c.vm_migrating is not None and c.vm_migrating[vms].any():
                continue
            if not vms or not moves.may_leave(h, len(vms)) or not moves.may_start(len(vms)):
                continue
            vms.sort(key=lambda v: -requests[v])
            excluded = not_target | moves.full_targets()
            if (
                each_room is None
                and failed >= FAILURES_BEFORE_EACH_ROOM
                and int(plan.count[order[i:]].sum()) * plan.pool.size <= EACH_ROOM_MAX_CELLS
            ):
                each_room = _EachRoom(plan, placement, order[i:].tolist())
            if each_room is not None and each_room.none_for(vms, excluded):
                continue  # a placement would fail
            if room.refuses(vms, excluded) or not _may_fit(plan, vms, excluded):
                failed += 1
                continue
            placed: list[tuple[int, int]] = []
            for v in vms:
                if placed and self.limits.per_host is not None:  # arrivals may have filled a host
                    excluded = not_target | moves.full_targets()
                target = placement.find_host(plan, v, excluded, power_now)
                if target is None:
                    break
                plan.add(v, target)
                moves.reserve_arriving(target)
                placed.append((v, target))
            if len(placed) < len(vms):
                for v, target in placed:
                    plan.remove(v, target)
                    moves.release_arriving(target)
            if each_room is not None and placed:
                each_room.changed([target for _, target in placed])
            if len(placed) < len(vms):
                failed += 1
                continue
            moves.reserve_leaving(h, len(vms))
            why = f"{c.host_name(h)} under-loaded (utilisation {c.utilisation[h]:.2f}): empty it to switch it off"
            for v, target in placed:
                not_source[target] = True
                source = int(c.vm_host[v])
                migrations.append(Migration(v, source, target, f"{why}; to {c.host_name(target)} (least power added)"))
        return migrations


class _Moves:
    """Counts the migrations in progress and those a decision starts, to keep within the limits."""

    def __init__(self, cluster: VmCluster, limits: Limits) -> None:
        self.limits = limits
        self.total = cluster.in_flight_total()
        hosts = cluster.hosts
        in_flight = cluster.host_in_flight
        self.per_host = np.zeros(hosts, dtype=np.intp) if in_flight is None else in_flight.astype(np.intp)
        self._no_targets = np.zeros(hosts, dtype=bool)

    def may_start(self, n: int = 1) -> bool:
        """Whether n more migrations fit in the total."""
        return self.limits.total is None or self.total + n <= self.limits.total

    def may_leave(self, h: int, n: int = 1) -> bool:
        """Whether n more VMs may leave host h."""
        return self.limits.per_host is None or self.per_host[h] + n <= self.limits.per_host

    def reserve_leaving(self, h: int, n: int = 1) -> None:
        """Count n VMs leaving host h."""
        self.per_host[h] += n

    def release_leaving(self, h: int) -> None:
        """Undo reserve_leaving for one VM (a move that was given up)."""
        self.per_host[h] -= 1

    def reserve_arriving(self, h: int) -> None:
        """Count a VM arriving on host h and one more migration."""
        self.per_host[h] += 1
        self.total += 1

    def release_arriving(self, h: int) -> None:
        """Undo reserve_arriving (a plan that was given up)."""
        self.per_host[h] -= 1
        self.total -= 1

    def full_targets(self) -> Bools:
        """Hosts that may take no more arrivals."""
        if self.limits.per_host is None:
            return self._no_targets
        return self.per_host >= self.limits.per_host


def _emptying_cost(c: VmCluster, eligible: Bools) -> tuple[Floats, Floats]:
    """What emptying each host costs, most important first: the CPU its VMs would lose while migrating (each
    migrating VM gets 90 % of its demand for its migration time, so the loss is proportional to the sum of
    request x migration time: PDM, and the time a busy VM's host spends short), then the total migration time
    (the copies themselves, which cost an idle VM nothing else). inf for the hosts not eligible."""
    on_host = c.vm_host >= 0
    hosts = c.vm_host[on_host]
    seconds = c.vm_migration_s[on_host]
    loss = sum_by(hosts, c.vm_request[on_host] * seconds, c.hosts)
    copy = sum_by(hosts, seconds, c.hosts)
    return np.where(eligible, loss, np.inf), np.where(eligible, copy, np.inf)


FAILURES_BEFORE_EACH_ROOM = 8  # attempts to empty a host that fail before _EachRoom is worth building
# ... and only while its table (VMs on the hosts left to try x pool hosts) stays this small: at 10,000 hosts,
# rebuilding it whenever the pool changes cost more than the attempts it saves (a 24 h run took 3x as long).
EACH_ROOM_MAX_CELLS = 2_000_000


class _EachRoom:
    """Whether each VM of the hosts the under-load pass may still try has room on any pool host
    (`PowerAwareBestFit.room`, one VM at a time), brought up to date on the hosts a placement changed (on all hosts
    when the pool changes). Where most attempts fail, most fail there: placements only take room, so an attempt
    with a VM that has room on no open host would fail, however many of its other VMs it placed first (on the
    PlanetLab days, 99 % of the attempts that got as far as placing). A host the pool takes in meanwhile is an idle
    one of a class whose idle hosts were all in the pool already, as empty as it."""

    def __init__(self, plan: Plan, placement: PowerAwareBestFit, hosts: list[int]) -> None:
        self.plan = plan
        self.placement = placement
        vms = [v for h in hosts for v in plan.host_vms[h]]
        self.vms = np.array(vms, dtype=np.intp)
        self.row = {v: i for i, v in enumerate(vms)}
        self._rebuild()

    def _rebuild(self) -> None:
        self.pool = self.plan.pool
        self.fits = self.placement.room(self.plan, self.vms[:, None], self.pool)

    def changed(self, hosts: list[int]) -> None:
        """The plan changed on these hosts."""
        if self.plan.pool is not self.pool:
            self._rebuild()
            return
        at = np.searchsorted(self.pool, hosts)
        at = at[(at < self.pool.size) & (self.pool[np.minimum(at, self.pool.size - 1)] == hosts)]
        if at.size:
            self.fits[:, at] = self.placement.room(self.plan, self.vms[:, None], self.pool[at])

    def none_for(self, vms: list[int], excluded: Bools) -> bool:
        """Whether one of these VMs surely has room on no pool host that is not `excluded` (False: each might)."""
        if self.plan.pool is not self.pool:
            self._rebuild()
        rows = [self.row[v] for v in vms if v in self.row]
        if not rows:
            return False
        open_ = ~excluded[self.pool]
        if not (self.fits[rows[0]] & open_).any():  # the largest VM first: where most attempts fail, alone
            return True
        return len(rows) > 1 and not (self.fits[rows[1:]] & open_).any(axis=1).all()


class _Room:
    """The most free CPU and memory on any host still open as a target, as upper bounds: worked out again only
    when the plan changes, as in the under-load pass hosts otherwise only close. Hosts whose largest VM needs
    more are refused at once, as `_may_fit` would refuse them (most attempts, where the hosts are full)."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        c = plan.cluster
        self.requests: list[float] = c.vm_request.tolist()
        self.rams: list[float] | None = c.vm_ram.tolist() if c.ram_limit else None
        self.version = -1
        self.cpu = np.inf
        self.memory = np.inf

    def refuses(self, vms: list[int], excluded: Bools) -> bool:
        """Whether the VMs surely cannot all go to hosts not `excluded` (False: they might)."""
        plan = self.plan
        if plan.version != self.version:
            self.version = plan.version
            pool = plan.pool
            open_ = ~excluded[pool]
            if not open_.any():
                self.cpu = self.memory = -np.inf
            else:
                self.cpu = float(plan.avail[pool][open_].max())
                if self.rams is not None:
                    self.memory = float((plan.pool_ram - plan.ram_used[pool])[open_].max())
        if max(self.requests[v] for v in vms) > self.cpu:
            return True
        return self.rams is not None and max(self.rams[v] for v in vms) > self.memory


def _may_fit(plan: Plan, vms: list[int], excluded: Bools) -> bool:
    """A quick necessary test that the VMs could all go elsewhere: enough free CPU and memory in total, and a
    host with room for the largest of each."""
    c = plan.cluster
    pool = plan.pool[~excluded[plan.pool]]
    if pool.size == 0:
        return False
    avail = plan.avail[pool]
    requests = c.vm_request[vms]
    if avail.max() < requests.max() or avail.sum() < requests.sum():
        return False
    if c.ram_limit:
        free = c.ram[pool] - plan.ram_used[pool]
        rams = c.vm_ram[vms]
        if free.max() < rams.max() or free.sum() < rams.sum():
            return False
    return True
