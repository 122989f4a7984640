"""The controller: a level-triggered reconcile loop, acting only while it leads.

Every control.tick_s, for each pool with autoscale enabled: observe the pool (observe.py), decide its size with
the very code the simulator runs (decide_scale), act through the pool's actuator with the leadership epoch, and
record an event with the reason, the inputs and the result. Nothing is remembered as "done": each tick compares
what the pool is with what it should be, so a lost write or a restarted supervisor is simply seen and repaired.

Failures, by kind (loadpilot.errors):
- temporary (the fence unreadable, a full disk): an event, then the pool is tried again after a backoff
  (control.retry_initial_s doubling up to retry_max_s), deciding afresh from what it sees then;
- a stale epoch (a newer leader has acted on the pool): an event, and the same backoff; this controller's own
  leadership tick finds out that its term is over;
- permanent (a read-only or broken state dir): an event, and the pool is flagged: skipped until the controller
  restarts (or reloads its config), and shown flagged by `loadpilot up`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from loadpilot import plugins
from loadpilot.act.pool.state import PoolPaths
from loadpilot.config import Config, PoolConfig
from loadpilot.control.actuate import apply_scale
from loadpilot.control.events import EventLog, reason_kind
from loadpilot.control.metrics import ControllerMetrics
from loadpilot.control.migrate import MigrationControl, migration_control
from loadpilot.control.observe import PoolObserver, PoolUnavailable
from loadpilot.control.prometheus import PrometheusSource, QueryUnavailable, expand, pool_queries
from loadpilot.control.retry import Backoff
from loadpilot.control.status import ControllerStatus, PoolControlStatus, write_status
from loadpilot.coord import Leadership
from loadpilot.decide.scaling import Policy, ScalingState, decide_scale, evaluation_due, policy_names
from loadpilot.errors import PermanentError, StaleEpochError, TemporaryError
from loadpilot.metrics_http import MetricsListener, serve_metrics
from loadpilot.model import Decision, PoolView, ScaleTo
from loadpilot.store import Store
from loadpilot.wakeup import WakeEvent

log = logging.getLogger(__name__)

# Applies one ScaleTo (stamped with the leader's epoch) to a pool; raises loadpilot's Temporary/PermanentError.
Actuator = Callable[[PoolPaths, PoolConfig, ScaleTo], object]


@dataclass
class PoolControl:
    """What the controller keeps about one autoscaled pool between ticks."""

    pool: PoolConfig
    paths: PoolPaths
    observer: PoolObserver
    backoff: Backoff
    state: ScalingState | None = None
    retry_at: float | None = None
    flagged: str = ""
    held: str = ""  # the kind of the last hold reason recorded (events.reason_kind)
    view: PoolView | None = None
    last_reason: str = ""
    attempts: int = 0
    queries: list[str] = field(default_factory=list)  # the Prometheus queries of its checks (metric = "query")
    policies: dict[str, Policy] = field(default_factory=dict)  # its checks' policies, by name (entry points)


@dataclass
class Controller:
    """Reconciles every autoscaled pool of a config while `leader` leads; `step(now)` is one tick."""

    config: Config
    store: Store
    leader: Leadership
    member_id: str
    act: Actuator = apply_scale
    clock: Callable[[], float] = time.time
    events: EventLog = field(init=False)
    pools: dict[str, PoolControl] = field(init=False)
    leading: bool = False
    migrations: MigrationControl | None = field(init=False, default=None)  # the VM half ([cluster], migrate.py)
    metrics: ControllerMetrics = field(init=False)  # served on control.metrics_listen while run() runs
    prometheus: PrometheusSource | None = field(init=False, default=None)  # for checks with metric = "query"
    metrics_listener: MetricsListener | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.metrics = ControllerMetrics()
        self.events = EventLog(self.store)
        self.events.on_add = self.metrics.event
        self.migrations = migration_control(self.config, self.store, self.events, self.member_id, self.clock)
        control = self.config.control
        self.pools = {}
        for pool in self.config.pools:
            if not pool.autoscale.enabled:
                continue
            paths = PoolPaths.of(self.config.state_path, pool.name)
            backoff = Backoff(control.retry_initial_s, control.retry_max_s)
            self.pools[pool.name] = PoolControl(pool, paths, PoolObserver(pool, paths), backoff)
            self.pools[pool.name].queries = pool_queries(pool)
            self.pools[pool.name].policies = plugins.load_each(plugins.SCALING_POLICIES, policy_names(pool.autoscale))
        if control.prometheus_url and any(c.queries for c in self.pools.values()):
            self.prometheus = PrometheusSource(control.prometheus_url, control.prometheus_timeout_s)

    # --- the loop -------------------------------------------------------------------------------------------------

    def run(self, stop: threading.Event | WakeEvent) -> None:
        """Tick until `stop` is set, then resign the leadership (so another controller takes over at once)."""
        tick = self.config.control.tick_s
        lead_every = min(tick, self.config.coordination.tick_s)
        next_reconcile = 0.0
        try:
            listener = serve_metrics(
                self.metrics.registry, self.config.control.metrics_listen, f"controller {self.member_id}"
            )
        except Exception:
            self.close()  # the port is taken, say: release what the constructor opened
            raise
        self.metrics_listener = listener
        try:
            while not stop.is_set():
                started = time.monotonic()
                reconcile = started >= next_reconcile
                if reconcile:
                    next_reconcile = started + tick
                self.step(self.clock(), reconcile=reconcile)
                stop.wait(max(0.0, min(next_reconcile, started + lead_every) - time.monotonic()))
        finally:
            try:
                self.close()
            finally:
                if listener is not None:
                    listener.stop()

    def step(self, now: float, reconcile: bool = True) -> None:
        """One tick: renew or campaign for the leadership; while leading, reconcile every pool (when `reconcile`)."""
        started = time.perf_counter()
        self._lead(now)
        if reconcile and self.leading:
            for control in self.pools.values():
                if not self.leader.is_leader():
                    break
                try:
                    self.reconcile(control, now)
                except Exception as exc:  # unforeseen (a bug, a malformed file): as kopf does, retry the pool later
                    self._failed(control, now, exc)
            if self.migrations is not None and self.leader.is_leader():
                self.migrations.reconcile(now, self.leader)
        self.events.flush()
        self._publish(now)
        self._measure(time.perf_counter() - started)

    def _measure(self, tick_s: float) -> None:
        m = self.metrics
        m.tick_seconds.observe(tick_s)
        m.leader.set(1 if self.leading else 0)
        m.epoch.set(self.leader.epoch)
        m.events_pending.set(len(self.events.pending))
        for name, control in self.pools.items():
            m.flagged.labels(name).set(1 if control.flagged else 0)

    def close(self) -> None:
        """Resign, write the last events and a stopped status, stop observing."""
        if self.leading:  # recorded before the term ends, so it comes before the successor's "leads"
            self._leadership_event(self.clock(), "resigned (stopping)", "stopped")
        self.leader.resign()
        self.leading = False
        self.events.flush()
        self._publish(self.clock(), stopped=True)
        for control in self.pools.values():
            control.observer.close()
        if self.migrations is not None:
            self.migrations.close()
        if self.prometheus is not None:
            self.prometheus.close()

    # --- leadership -----------------------------------------------------------------------------------------------

    def _lead(self, now: float) -> None:
        leading = self.leader.tick() and self.leader.is_leader()
        if leading and not self.leading:
            for control in self.pools.values():  # a new term starts from what it sees, not from an old term's memory
                control.state, control.held = None, ""
            self._leadership_event(now, f"leads with epoch {self.leader.epoch}", "leading")
        elif self.leading and not leading:
            self._leadership_event(now, f"lost the leadership (epoch {self.leader.epoch})", "standby")
        self.leading = leading

    def _leadership_event(self, now: float, reason: str, result: str) -> None:
        log.info("controller %s %s", self.member_id, reason)
        details = {"epoch": self.leader.epoch, "member": self.member_id, "pid": os.getpid()}
        self.events.add(now, "leadership", f"controller/{self.member_id}", reason, result, details)

    # --- one pool -------------------------------------------------------------------------------------------------

    def reconcile(self, control: PoolControl, now: float) -> None:
        """Observe -> decide -> act -> record, for one pool (skipped while flagged or waiting to retry)."""
        if control.flagged or (control.retry_at is not None and now < control.retry_at):
            return
        window = max(self.config.control.tick_s, control.pool.autoscale.interval_s)  # since the last evaluation
        try:
            view = control.observer.observe(now, window)
            if control.queries and evaluation_due(control.pool.autoscale, control.state, now):
                view = replace(view, queries=self._ask_prometheus(control))
        except (PoolUnavailable, QueryUnavailable) as exc:
            control.view = None
            self._hold(control, now, str(exc), {})
            return
        control.view = view
        decision, state = decide_scale(view, control.pool.autoscale, control.state, now, control.policies)
        evaluated = state.evaluated_at != (control.state.evaluated_at if control.state else None)
        actions = [a for a in decision.actions if isinstance(a, ScaleTo)]
        if evaluated or actions:
            self.metrics.decided(
                control.pool.name, control.pool.autoscale.policy, view.desired, [a.size for a in actions]
            )
        if not actions:
            control.state = state
            if evaluated:
                self._hold(control, now, decision.reason, {**decision.inputs, "kept": view.desired})
            return
        for action in actions:
            self._act(control, view, decision, action, state, now)

    def _ask_prometheus(self, control: PoolControl) -> dict[str, float | None]:
        """Each of the pool's queries, `{pool}` filled in, answered by Prometheus (keyed as configured)."""
        if self.prometheus is None:  # the config requires prometheus_url with a query; kept for a hand-made one
            raise QueryUnavailable(f"pool {control.pool.name!r}: a query check needs control.prometheus_url")
        answers: dict[str, float | None] = {}
        for query in control.queries:
            try:
                answers[query] = value = self.prometheus.query(expand(query, control.pool.name))
            except QueryUnavailable:
                self.metrics.queries.labels(control.pool.name, "error").inc()
                raise
            self.metrics.queries.labels(control.pool.name, "empty" if value is None else "ok").inc()
        return answers

    def _act(
        self, control: PoolControl, view: PoolView, decision: Decision, action: ScaleTo, state: ScalingState, now: float
    ) -> None:
        if not self.leader.is_leader():  # checked again right before acting: the deadline may just have passed
            return
        epoch, pool = self.leader.epoch, control.pool
        action = replace(action, epoch=epoch)  # every action carries the term that decided it
        control.attempts += 1
        started = time.monotonic()
        result = "ok"
        try:
            self.act(control.paths, pool, action)
        except StaleEpochError as exc:
            result = f"refused: {exc}; retry in {self._retry(control, now):g} s"
            log.warning("%s", exc)
        except PermanentError as exc:
            control.flagged = str(exc)
            result = f"failed: {exc}; pool flagged, not scaled again until the controller restarts"
            log.error("pool %s flagged: %s", pool.name, exc)
        except TemporaryError as exc:
            result = f"error: {exc}; retry in {self._retry(control, now):g} s"
            log.warning("pool %s: %s", pool.name, exc)
        else:
            control.state, control.retry_at, control.held = state, None, ""
            control.backoff.reset()
            log.info("pool %s: %d -> %d (%s)", pool.name, view.desired, action.size, action.reason)
        details: dict[str, Any] = {
            **decision.inputs,
            "from": view.desired,
            "to": action.size,
            "epoch": epoch,
            "member": self.member_id,
            "policy": pool.autoscale.policy,
            "metric": pool.autoscale.metric,
            "target": pool.autoscale.target,
            **({"query": pool.autoscale.query} if pool.autoscale.query else {}),
            "attempt": control.attempts,
            "duration_s": round(time.monotonic() - started, 6),
        }
        if result == "ok":
            control.attempts = 0
        control.last_reason = action.reason
        self.events.add(now, "scale", f"pool/{pool.name}", action.reason, result, details)

    def _failed(self, control: PoolControl, now: float, exc: Exception) -> None:
        """An unexpected error while reconciling one pool: logged with its traceback, an event, a backoff; the
        other pools and the controller go on."""
        log.exception("pool %s: reconcile failed", control.pool.name)
        control.view = None
        delay = self._retry(control, now)
        reason = f"reconcile failed: {type(exc).__name__}: {exc}"
        control.last_reason = reason
        details = {"epoch": self.leader.epoch, "member": self.member_id, "policy": control.pool.autoscale.policy}
        self.events.add(now, "error", f"pool/{control.pool.name}", reason, f"retry in {delay:g} s", details)

    def _retry(self, control: PoolControl, now: float) -> float:
        delay = control.backoff.next_delay()
        control.retry_at = now + delay
        return delay

    def _hold(self, control: PoolControl, now: float, reason: str, inputs: dict[str, Any]) -> None:
        """Record a decision to keep the size, once per kind of reason."""
        control.last_reason = reason
        kind = reason_kind(reason)
        if kind == control.held:
            return
        control.held = kind
        details = {
            **inputs,
            "epoch": self.leader.epoch,
            "member": self.member_id,
            "policy": control.pool.autoscale.policy,
        }
        self.events.add(now, "hold", f"pool/{control.pool.name}", reason, "kept", details)

    # --- status ---------------------------------------------------------------------------------------------------

    def _publish(self, now: float, stopped: bool = False) -> None:
        pools = {
            name: PoolControlStatus(
                policy=c.pool.autoscale.policy,
                metric=c.pool.autoscale.metric,
                target=c.pool.autoscale.target,
                view=asdict(c.view) if c.view is not None else {},
                flagged=c.flagged,
                retry_at=c.retry_at,
                last_reason=c.last_reason,
            )
            for name, c in self.pools.items()
        }
        status = ControllerStatus(
            member=self.member_id,
            pid=os.getpid(),
            leading=self.leading,
            epoch=self.leader.epoch,
            tick_s=self.config.control.tick_s,
            updated_at=now,
            stopped=stopped,
            pools=pools,
            cluster=self.migrations.status() if self.migrations is not None else None,
        )
        try:
            write_status(self.config.state_path, status)
        except OSError as exc:
            log.debug("cannot write the controller status: %s", exc)
