"""`loadpilot up`'s live view: each pool's size, CPU, requests/s and p95, the leader, the cluster it balances, and
the last actions.

The read side of the controller: it reads what the pools' supervisors publish (state.json), what the controllers
publish (status.py) and the events in the store, and never changes anything. On a terminal it is a rich table
refreshed every second; otherwise (or with --no-view) it prints plain lines: every event as it comes, and a
summary of each pool every few seconds.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from loadpilot.act.pool.state import PoolPaths, read_state
from loadpilot.config import Config
from loadpilot.control.status import ClusterControlStatus, ControllerStatus, read_statuses
from loadpilot.model import Event
from loadpilot.store import Store

EVENT_KINDS = ("scale", "hold", "error", "leadership", "migrate", "migrated")
SHOWN_EVENTS = 8
RATE_WINDOW_S = 3.0


@dataclass
class PoolRow:
    """One pool as the view shows it."""

    name: str
    running: bool
    desired: int = 0
    size: int = 0
    ready: int = 0
    failed: int = 0
    cpu: float | None = None  # cores, all workers together
    rps: float | None = None
    p95_s: float | None = None
    in_flight: int | None = None
    policy: str = ""
    flagged: str = ""


@dataclass
class Frame:
    """Everything one refresh shows."""

    at: float
    pools: list[PoolRow]
    leader: ControllerStatus | None
    events: list[Event]
    new_events: list[Event] = field(default_factory=list)


class LiveView:
    """Reads the pools, the controllers and the store's events; renders them as a table or as lines."""

    def __init__(self, config: Config, store: Store | None, header: str) -> None:
        self.config = config
        self.store = store
        self.header = header
        self._counts: dict[str, deque[tuple[float, dict[str, int]]]] = {}
        self._events: deque[Event] = deque(maxlen=SHOWN_EVENTS)
        self._last_event_id: int | None = None
        self._primed = False

    # --- reading --------------------------------------------------------------------------------------------------

    def frame(self) -> Frame:
        """Read everything once."""
        now = time.time()
        statuses = read_statuses(self.config.state_path)
        leader = next((s for s in statuses if s.leading and s.live), None)
        rows = [self._pool(p.name, now, leader) for p in self.config.pools]
        new = self._new_events()
        return Frame(now, rows, leader, list(self._events), new)

    def _pool(self, name: str, now: float, leader: ControllerStatus | None) -> PoolRow:
        pool = self.config.pool(name)
        scale = pool.autoscale
        row = PoolRow(
            name, running=False, policy=f"{scale.policy} {scale.metric} {scale.target:g}" if scale.enabled else "off"
        )
        state = read_state(PoolPaths.of(self.config.state_path, name))
        if state is None or state.status == "stopped" or now - state.updated_at > 10:
            return row
        alive = [w for w in state.workers if w.pid and w.state != "failed"]
        row.running = True
        row.desired, row.size, row.ready, row.failed = state.desired, len(alive), state.ready, state.failed
        cpus = [w.cpu for w in alive if w.cpu is not None]
        row.cpu = sum(cpus) if cpus else None
        flights = [w.in_flight for w in alive if w.in_flight is not None]
        row.in_flight = sum(flights) if flights else None
        row.rps = self._rate(name, now, {f"{w.id}:{w.pid}": w.requests for w in alive if w.requests is not None})
        p95s = [w.latency_p95_s for w in alive if w.state == "ready" and w.latency_p95_s is not None]
        row.p95_s = max(p95s) if p95s else None
        control = leader.pools.get(name) if leader is not None else None
        if control is not None:
            row.flagged = control.flagged
            view: dict[str, Any] = control.view
            if view.get("latency_p95") is not None:
                row.p95_s = float(view["latency_p95"])  # the pool's own p95, as the controller measured it
        return row

    def _rate(self, name: str, now: float, counts: dict[str, int]) -> float | None:
        """Requests/s over the last few seconds, from the workers' counters (a new process counts from zero)."""
        history = self._counts.setdefault(name, deque())
        history.append((now, counts))
        while len(history) > 2 and history[1][0] <= now - RATE_WINDOW_S:
            history.popleft()
        then, old = history[0]
        if now - then < 0.5:
            return None
        served = 0
        for key, n in counts.items():
            before = old.get(key, 0)
            served += n - before if n >= before else n
        return served / (now - then)

    def _new_events(self) -> list[Event]:
        if self.store is None:
            return []
        try:
            found = self.store.events(after_id=self._last_event_id, limit=200)
        except Exception:  # the store is busy or away for a moment: the next refresh tries again
            return []
        found = sorted(found, key=lambda e: e.id or 0)
        if found:
            self._last_event_id = found[-1].id
        shown = [e for e in found if e.kind in EVENT_KINDS]
        self._events.extend(shown)
        if not self._primed:  # events from before this run are context, not news
            self._primed = True
            return []
        return shown

    # --- rendering ------------------------------------------------------------------------------------------------

    def render(self, frame: Frame) -> RenderableType:
        """The frame as rich renderables: header, the leader, one row per pool, the cluster, the last actions."""
        pools = Table("pool", "desired", "size", "ready", "failed", "CPU", "req/s", "p95", "in flight", "autoscale")
        for r in frame.pools:
            if not r.running:
                pools.add_row(r.name, "-", "-", "-", "-", "-", "-", "-", "-", "not running")
                continue
            scale = Text(r.policy)
            if r.flagged:
                scale = Text(f"FLAGGED: {r.flagged}", style="bold red")
            pools.add_row(
                r.name,
                str(r.desired),
                str(r.size),
                str(r.ready),
                str(r.failed),
                _num(r.cpu, "{:.2f}"),
                _num(r.rps, "{:.0f}"),
                _num(None if r.p95_s is None else 1000 * r.p95_s, "{:.0f} ms"),
                _num(r.in_flight, "{}"),
                scale,
            )
        actions = Table("time", "kind", "subject", "change", "result", "reason", show_lines=False)
        for e in reversed(frame.events):
            actions.add_row(_clock(e.time), e.kind, e.subject, _change(e), e.result[:40], e.reason)
        parts: list[RenderableType] = [Text(self.header), Text(_leader_line(frame.leader), style="bold"), pools]
        cluster = frame.leader.cluster if frame.leader is not None else None
        if cluster is not None:
            parts.append(Text(_cluster_line(cluster), style="bold red" if cluster.flagged else ""))
        return Group(*parts, actions)

    def lines(self, frame: Frame, summary: bool) -> list[str]:
        """The frame as plain lines: each new event, and (when `summary`) one line per pool and the leader."""
        out = [
            f"{_clock(e.time)} {e.kind} {e.subject} {_change(e)} {e.result}: {e.reason}".replace("  ", " ")
            for e in frame.new_events
        ]
        if summary:
            out.append(f"{_clock(frame.at)} {_leader_line(frame.leader)}")
            for r in frame.pools:
                if not r.running:
                    out.append(f"{_clock(frame.at)} pool {r.name}: not running")
                    continue
                out.append(
                    f"{_clock(frame.at)} pool {r.name}: size {r.size} (desired {r.desired}, ready {r.ready}, "
                    f"failed {r.failed}), CPU {_num(r.cpu, '{:.2f}')}, {_num(r.rps, '{:.0f}')} req/s, "
                    f"p95 {_num(None if r.p95_s is None else 1000 * r.p95_s, '{:.0f} ms')}"
                    + (f", FLAGGED: {r.flagged}" if r.flagged else "")
                )
            if frame.leader is not None and frame.leader.cluster is not None:
                out.append(f"{_clock(frame.at)} {_cluster_line(frame.leader.cluster)}")
        return out


def _leader_line(leader: ControllerStatus | None) -> str:
    if leader is None:
        return "controller: no leader yet"
    return f"controller: {leader.member} leads, epoch {leader.epoch} (tick {leader.tick_s:g} s)"


def _cluster_line(c: ClusterControlStatus) -> str:
    line = f"cluster {c.name} ({c.strategy}): "
    if c.observed_at is None:
        line += "not observed yet"
    else:
        line += f"{c.hosts} hosts ({c.powered} on), {c.vms} VMs, CPU mean {_num(_pct(c.mean_utilisation), '{:.0f} %')}"
        if c.hottest:
            line += f", hottest {c.hottest} {_num(_pct(c.hottest_utilisation), '{:.0f} %')}"
    line += f"; migrations: {c.in_flight} in flight, {c.started} started"
    return line + (f"; FLAGGED: {c.flagged}" if c.flagged else "")


def _pct(fraction: float | None) -> float | None:
    return None if fraction is None else 100 * fraction


def _change(event: Event) -> str:
    d = event.details
    if event.kind == "scale" and "from" in d and "to" in d:
        return f"{d['from']} -> {d['to']}"
    if event.kind == "leadership":
        return f"epoch {d.get('epoch', '?')}"
    return ""


def _clock(t: float) -> str:
    return dt.datetime.fromtimestamp(t).strftime("%H:%M:%S")


def _num(value: float | int | None, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)
