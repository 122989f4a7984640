"""The pool supervisor: a level-triggered loop that keeps the running workers equal to the desired ones.

Every tick it reads what the pool should be (desired.json), looks at what it is (exited processes, health
checks), and closes the gap: start missing workers, restart dead ones with exponential backoff, give up on a
slot that keeps crashing (circuit breaker), replace old workers one by one after `pool restart`, drain and stop
extra ones. Only ready workers are routed to by the balancer. Signal handlers only set flags and wake the loop.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadpilot.act.lb.base import Balancer, Route
from loadpilot.act.pool.cgroup import CpuQuota
from loadpilot.act.pool.checks import HealthChecks
from loadpilot.act.pool.metrics import PoolMetrics, ServeMetrics
from loadpilot.act.pool.ports import PortPicker
from loadpilot.act.pool.state import (
    Desired,
    PoolPaths,
    PoolState,
    WorkerRecord,
    read_desired,
    write_desired,
    write_state,
)
from loadpilot.act.pool.worker import Worker, describe_exit, render_command, tail
from loadpilot.config import PoolConfig
from loadpilot.errors import LoadpilotError, PermanentError
from loadpilot.wakeup import WakeEvent

log = logging.getLogger(__name__)
FAST_TICK_S = 0.05  # while a worker is starting or stopping, look more often
RECENT_EVENTS = 30


@dataclass
class Slot:
    """A place for one worker; its crash history survives the worker, so backoff and the breaker can work."""

    index: int
    worker: Worker | None = None  # the incarnation that serves (or will)
    replacement: Worker | None = None  # rolling restart: the new incarnation, until it is ready
    incarnations: int = 0
    restarts: int = 0
    crashes: deque[float] = field(default_factory=deque)
    backoff_s: float = 0.0
    next_start_at: float = 0.0
    failed: str = ""  # the circuit breaker is open: why
    held: Route | None = None  # a dead worker's route, kept in a reloading proxy until the slot serves again


class Supervisor:
    """Runs one pool until asked to stop; `tick()` is one reconcile step."""

    def __init__(
        self,
        config: PoolConfig,
        paths: PoolPaths,
        balancer: Balancer,
        cwd: Path | None = None,
        serve_metrics: ServeMetrics | None = None,
    ) -> None:
        self.config = config
        self.paths = paths
        self.balancer = balancer
        self.cwd = cwd
        self.slots: dict[int, Slot] = {}
        self.retiring: list[Worker] = []
        self.desired = Desired(size=config.initial_size)
        self.generation = 0
        self.stopping = False
        self.status = "running"
        self.started_at = time.time()
        self.events: deque[dict[str, Any]] = deque(maxlen=RECENT_EVENTS)
        self.metrics = PoolMetrics(config.name, serve_metrics)  # served while run() runs, with metrics_listen
        self.quota = CpuQuota(config.name, config.cpu_quota)
        self.ports = PortPicker(config.host, config.worker_ports, self.event)
        self.uses_port = "{port}" in " ".join(config.command)
        self._wake = WakeEvent()  # set by SIGCHLD, SIGTERM and the health checks' threads
        self.checks = HealthChecks(config.health, config.host, min(32, config.max + 4), FAST_TICK_S, self._wake.set)
        self._routed: list[Route] | None = None
        # nginx reloads to change its servers, and a reload closes connections its old workers have just accepted.
        # So a crashed worker's server stays listed (nginx retries a refused connection on another worker, POSTs
        # included, as nothing was sent) and its replacement on the same port needs no reload at all.
        self._hold_dead_routes = balancer.kind == "nginx"
        self._reported_routes: list[str] = []
        self._next_measure = 0.0

    # --- the loop -----------------------------------------------------------------------------------------------

    def run(self, install_signals: bool = True) -> None:
        """Start the balancer, reconcile until stopped, then drain and stop every worker and the balancer."""
        self.metrics.start(self.config.metrics_listen)
        if install_signals:
            signal.signal(signal.SIGTERM, lambda *_: self.request_stop())
            signal.signal(signal.SIGINT, lambda *_: self.request_stop())
            signal.signal(signal.SIGCHLD, lambda *_: self._wake.set())
        if self.config.cpu_quota > 0:
            self.event("cpu_quota", self.config.name, self.quota.reason, "ok" if self.quota.active else "unsupported")
        self.balancer.start()
        self.event("started", self.config.name, f"supervisor pid {os.getpid()}, front {self.front}")
        try:
            while True:
                self.tick()
                if self.stopping and not self.slots and not self.retiring:
                    break
                self._wake.wait(self._next_wait())
                self._wake.clear()
        finally:
            try:
                self._shutdown()
            finally:
                self.metrics.stop()

    def request_stop(self) -> None:
        """Ask the loop to drain and stop everything (safe from a signal handler)."""
        self.stopping = True
        self._wake.set()

    def tick(self) -> None:
        """One reconcile step: observe, compare with desired, act, publish."""
        now = time.time()
        self._read_desired()
        self._reap(now)
        self._take_check_results(now)
        self._enforce_start_timeouts(now)
        self._reconcile_slots(now)
        self._advance_retiring(now)
        self._sync_balancer()
        self.checks.schedule(self._all_workers(), now)
        self._measure(now)
        self._publish(now)

    @property
    def front(self) -> str:
        host, port = self.balancer.front
        return f"{host}:{port}"

    def _next_wait(self) -> float:
        busy = any(w.state in ("starting", "stopping", "draining") for w in self._all_workers())
        pending_start = any(s.worker is None and not s.failed for s in self.slots.values())
        return FAST_TICK_S if busy or pending_start or self.stopping else self.config.tick_s

    # --- desired state ------------------------------------------------------------------------------------------

    def _read_desired(self) -> None:
        desired = read_desired(self.paths)
        if desired is None:
            write_desired(self.paths, self.desired)
            return
        size = max(self.config.min, min(self.config.max, desired.size))
        if desired.generation > self.generation:
            self.event("restart", self.config.name, f"rolling restart to generation {desired.generation}")
            for slot in self.slots.values():  # a restart also gives failed slots another chance
                if slot.failed:
                    slot.failed, slot.backoff_s, slot.next_start_at = "", 0.0, 0.0
                    slot.crashes.clear()
            self.generation = desired.generation
        if size != self.desired.size:
            self.event("scale", self.config.name, f"desired size {self.desired.size} -> {size}")
        self.desired = Desired(size=size, generation=desired.generation, epoch=desired.epoch)

    # --- observing ----------------------------------------------------------------------------------------------

    def _reap(self, now: float) -> None:
        for slot in self.slots.values():
            for worker in (slot.worker, slot.replacement):
                if worker is None or (code := worker.poll()) is None:
                    continue
                why = describe_exit(code)
                last = tail(worker.log_path)
                self._crashed(slot, worker, f"{why}{': ' + last if last else ''}", now)
        for worker in list(self.retiring):
            if (code := worker.poll()) is not None:
                self.retiring.remove(worker)
                self.quota.release(worker.key)
                self.event("stopped", worker.id, f"{worker.retire_reason}; {describe_exit(code)}")

    def _crashed(self, slot: Slot, worker: Worker, reason: str, now: float) -> None:
        """A worker died or was given up on: free its place and decide when (or whether) the slot tries again."""
        if slot.worker is worker:
            slot.worker = None
            if self._hold_dead_routes and worker.state == "ready" and worker.poll() is not None and worker.port:
                slot.held = Route(worker.key, self.config.host, worker.port, pid=worker.pid or 0)
        if slot.replacement is worker:
            slot.replacement = None
        if worker.poll() is None:
            self._retire(worker, reason, drain=False)
        else:
            self.quota.release(worker.key)
        slot.restarts += 1
        self.metrics.restarts.inc()
        slot.crashes.append(now)
        while slot.crashes and slot.crashes[0] < now - self.config.restart.window_s:
            slot.crashes.popleft()
        restart = self.config.restart
        if len(slot.crashes) >= restart.max_crashes:
            slot.failed = f"{len(slot.crashes)} crashes within {restart.window_s:g} s; last: {reason}"
            self.event("failed", worker.id, slot.failed, "failed")
            slot.held = None
            return
        delay = slot.backoff_s
        slot.backoff_s = restart.backoff_initial_s if delay == 0 else min(restart.backoff_max_s, delay * 2)
        slot.next_start_at = now + delay
        self.event("crashed", worker.id, f"{reason}; restarting in {delay:g} s", "restart")

    def _take_check_results(self, now: float) -> None:
        for worker, result, metrics in self.checks.results():
            worker.check_pending = False
            worker.took_metrics(metrics)
            slot = self.slots.get(worker.slot)
            if slot is None or worker not in (slot.worker, slot.replacement) or worker.poll() is not None:
                continue
            if result.ok:
                worker.check_failures = 0
                if worker.state == "starting":
                    worker.ready_at = now
                    worker.set_state("ready", f"ready after {now - worker.started_at:.2f} s")
                    self.event("ready", worker.id, worker.reason)
                continue
            worker.check_failures += 1
            if worker.state == "ready" and worker.check_failures >= self.config.health.failures:
                worker.set_state("unhealthy", f"{worker.check_failures} failed checks; last: {result.reason}")
                self._crashed(slot, worker, worker.reason, now)

    def _enforce_start_timeouts(self, now: float) -> None:
        limit = self.config.health.start_timeout_s
        for slot in list(self.slots.values()):
            for worker in (slot.worker, slot.replacement):
                if worker is not None and worker.state == "starting" and now - worker.started_at > limit:
                    self._crashed(slot, worker, f"not ready within {limit:g} s", now)

    # --- acting -------------------------------------------------------------------------------------------------

    def _reconcile_slots(self, now: float) -> None:
        size = 0 if self.stopping else self.desired.size
        for index in sorted(i for i in self.slots if i >= size):  # scale in: the highest slots go first
            slot = self.slots.pop(index)
            for worker in (slot.replacement, slot.worker):
                if worker is not None:
                    self._retire(worker, "stopping" if self.stopping else f"scale in to {size}", drain=True)
        for index in range(size):
            self.slots.setdefault(index, Slot(index))
        replacing = any(s.replacement is not None for s in self.slots.values())
        for slot in self.slots.values():
            if slot.failed:
                continue
            if slot.worker is None:
                if now >= slot.next_start_at:
                    slot.worker = self._start(slot, now)
                continue
            if slot.replacement is not None and slot.replacement.state == "ready":
                old, slot.worker, slot.replacement = slot.worker, slot.replacement, None
                self._retire(old, f"replaced by generation {self.generation}", drain=True)
                replacing = False
            elif not replacing and slot.worker.generation < self.generation and slot.worker.state == "ready":
                slot.replacement = self._start(slot, now)
                replacing = slot.replacement is not None
            if slot.worker.state == "ready" and now - (slot.worker.ready_at or now) > self.config.restart.stable_s:
                slot.backoff_s = 0.0

    def _start(self, slot: Slot, now: float) -> Worker | None:
        """Start a new incarnation of a slot's worker; a command that cannot run counts as a crash."""
        port = None
        if self.uses_port:
            port = self.ports.pick(slot.index, {w.port for w in self._all_workers() if w.port is not None})
            if port is None:
                slot.next_start_at = now + max(1.0, self.config.restart.backoff_initial_s)
                return None
        slot.incarnations += 1
        worker = Worker(
            pool=self.config.name,
            slot=slot.index,
            incarnation=slot.incarnations,
            generation=self.generation,
            port=port,
            log_path=self.paths.logs / f"{self.config.name}-{slot.index}.log",
        )
        fd = self.balancer.fileno() if hasattr(self.balancer, "fileno") else None
        values = {"{port}": str(port or ""), "{fd}": str(fd or ""), "{worker}": worker.id}
        values |= {"{pool}": self.config.name, "{host}": self.config.host, "{python}": sys.executable}
        command = render_command(self.config.command, values)
        try:
            worker.spawn(self.config, command, (fd,) if fd is not None else (), self.cwd)
        except OSError as exc:
            self.metrics.spawn_failures.inc()
            self._crashed(slot, worker, f"cannot run {command[0]!r}: {exc.strerror or exc}", now)
            return None
        if self.quota.active:
            problem = self.quota.apply(worker.key, worker.pid or 0)
            if problem:
                self.event("cpu_quota", worker.id, problem, "error")
        self.event("starting", worker.id, f"pid {worker.pid}" + (f", port {port}" if port else ""))
        return worker

    def _retire(self, worker: Worker, reason: str, drain: bool) -> None:
        """Take a worker out of service: out of the balancer now, TERM after the drain time, KILL after that."""
        now = time.time()
        worker.retire_reason = reason
        proxy_drains = drain and self.balancer.kind in ("nginx", "haproxy") and worker.state == "ready"
        if proxy_drains:
            worker.set_state("draining", reason)
            worker.stop_deadline = now + self.config.drain_s
        else:  # the shared socket drains by TERM: the worker stops accepting and finishes what it has
            self._terminate(worker, now, reason)
        self.retiring.append(worker)

    def _terminate(self, worker: Worker, now: float, reason: str) -> None:
        worker.signal(signal.SIGTERM)
        worker.set_state("stopping", reason)
        grace = max(self.config.stop_timeout_s, self.config.drain_s if self.balancer.kind == "shared" else 0.0)
        worker.stop_deadline = now + grace

    def _advance_retiring(self, now: float) -> None:
        for worker in self.retiring:
            if worker.stop_deadline is None or now < worker.stop_deadline:
                continue
            if worker.state == "draining":
                self._terminate(worker, now, worker.retire_reason)
            elif worker.state == "stopping":
                worker.signal(signal.SIGKILL)
                worker.stop_deadline = None
                self.event("killed", worker.id, f"still running {self.config.stop_timeout_s:g} s after TERM")

    def _sync_balancer(self) -> None:
        routes: list[Route] = []
        for slot in sorted(self.slots.values(), key=lambda s: s.index):
            ready = [w for w in (slot.worker, slot.replacement) if w is not None and w.state == "ready"]
            if ready or slot.failed:
                slot.held = None
            routes += [Route(w.key, self.config.host, w.port or 0, pid=w.pid or 0) for w in ready]
            if slot.held is not None:
                routes.append(slot.held)
        if routes == self._routed:
            return
        try:
            self.balancer.update(routes)
        except LoadpilotError as exc:
            self.event("balancer", self.config.name, str(exc), "error")
            if isinstance(exc, PermanentError):
                self._routed = routes  # not again until the routes change
            return
        self._routed = routes

    def _measure(self, now: float) -> None:
        if now < self._next_measure:
            return
        self._next_measure = now + self.config.health.interval_s
        for worker in self._all_workers():
            worker.measure()
        try:
            self._reported_routes = sorted(r.worker_id.rsplit(".", 1)[0] for r in self.balancer.routes())
        except LoadpilotError as exc:
            self._reported_routes = [f"(unknown: {exc})"]

    # --- publishing ---------------------------------------------------------------------------------------------

    def _all_workers(self) -> list[Worker]:
        live = [w for s in self.slots.values() for w in (s.worker, s.replacement) if w is not None]
        return live + self.retiring

    def _records(self) -> list[WorkerRecord]:
        records = []
        for slot in sorted(self.slots.values(), key=lambda s: s.index):
            workers = [w for w in (slot.worker, slot.replacement) if w is not None]
            records += [w.record(slot.restarts) for w in workers]
            if not workers:
                state = "failed" if slot.failed else "backoff"
                reason = slot.failed or f"restarting in {max(0.0, slot.next_start_at - time.time()):.1f} s"
                records.append(
                    WorkerRecord(
                        id=f"{self.config.name}-{slot.index}",
                        slot=slot.index,
                        state=state,
                        restarts=slot.restarts,
                        reason=reason,
                    )
                )
        return records + [w.record(0) for w in self.retiring]

    def _publish(self, now: float) -> None:
        state = PoolState(
            pool=self.config.name,
            status="stopping" if self.stopping and self.status == "running" else self.status,
            supervisor_pid=os.getpid(),
            mode=self.config.mode,
            front=self.front,
            balancer=self.balancer.kind,
            desired=self.desired.size,
            generation=self.generation,
            started_at=self.started_at,
            updated_at=now,
            workers=self._records(),
            routes=self._reported_routes,
            cpu_quota=self.quota.reason,
            events=list(self.events),
        )
        write_state(self.paths, state)
        self.metrics.published(state)

    def event(self, kind: str, subject: str, reason: str, result: str = "ok") -> None:
        """Record what happened and why: in the pool's events.jsonl, in state.json, and in the log."""
        record = {"time": time.time(), "kind": kind, "subject": subject, "reason": reason, "result": result}
        self.events.append(record)
        self.metrics.event(kind, result)
        self.paths.root.mkdir(parents=True, exist_ok=True)
        with open(self.paths.events, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        log.log(
            logging.WARNING if result not in ("ok", "restart") else logging.INFO, "%s %s: %s", kind, subject, reason
        )

    def _shutdown(self) -> None:
        for worker in self._all_workers():  # only reached early on an error: leave nothing behind
            worker.signal(signal.SIGKILL)
            if worker.process is not None:
                worker.process.wait()
            self.quota.release(worker.key)
        self.checks.close()
        try:
            self.balancer.stop()
        finally:
            self.slots.clear()
            self.retiring.clear()
            self._publish_stopped()

    def _publish_stopped(self) -> None:
        self.event("stopped", self.config.name, "supervisor stopped")
        self._reported_routes = []
        self.status = "stopped"
        self._publish(time.time())
