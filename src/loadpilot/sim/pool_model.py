"""A pool of workers behind a balancer, in discrete time steps (a fluid queue with a queueing-theory latency).

Model and assumptions:
- Each ready worker completes up to `capacity` requests/s, serving `slots` = capacity x service_s requests at
  once, each taking `service_s`. The balancer spreads requests evenly over the ready workers.
- Requests of a step arrive as a Poisson stream at the trace's rate. What the ready workers cannot complete in a
  step waits in one queue (the backlog) that carries over to the next step; requests that would wait longer
  than `queue_limit_s` are dropped (a balancer's timeout) and counted.
- The p95 latency of a step is service_s plus the larger of: the p95 wait of a stationary M/M/c queue per
  worker at this step's rate (queueing.wait_p95, capped just below saturation), and the time the backlog
  takes to drain at the pool's capacity. The M/M/c tail overstates the wait of a steady service time (by up to
  2x), so the model errs on the slow side. With no ready worker a request waits until it is dropped.
- A new worker costs from the moment it is asked for and serves `startup_s` later. Scale-in first cancels
  workers still starting, then takes ready workers out of the balancer at once; each keeps costing for `drain_s`
  while it finishes its requests. Worker-seconds count every worker starting, ready or draining.
- A worker's CPU utilisation is the share of its capacity in use (a CPU-bound worker).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from loadpilot.sim.queueing import utilisation_for, wait_p95


@dataclass(frozen=True)
class PoolParams:
    """One simulated worker's capacity and timing."""

    capacity: float = 100.0  # requests/s one worker completes at most
    service_s: float = 0.02  # time one request takes on an idle worker
    startup_s: float = 30.0  # from being asked for to serving
    drain_s: float = 5.0  # out of the balancer, finishing its requests, still costing
    queue_limit_s: float = 30.0  # requests that would wait longer are dropped

    def __post_init__(self) -> None:
        for name in ("capacity", "service_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0")
        for name in ("startup_s", "drain_s", "queue_limit_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")

    @property
    def slots(self) -> int:
        """Requests one worker serves at once."""
        return max(1, round(self.capacity * self.service_s))

    @property
    def slot_rate(self) -> float:
        """Requests/s one slot completes."""
        return self.capacity / self.slots

    def utilisation_for(self, slo_s: float) -> float:
        """The highest per-worker utilisation whose steady p95 latency meets `slo_s`."""
        return utilisation_for(self.slots, self.slot_rate, self.service_s, slo_s)


@dataclass(frozen=True, slots=True)
class StepOutcome:
    """What happened in one step: requests arrived, completed and dropped, the p95 latency, the pool's sizes."""

    arrived: float
    served: float
    dropped: float
    p95_s: float
    backlog: float
    ready: int
    starting: int
    draining: int


class PoolModel:
    """The simulated pool: scale it with `scale_to`, advance it with `step`."""

    def __init__(self, params: PoolParams, size: int) -> None:
        self.params = params
        self.ready = size
        self.backlog = 0.0
        self._starting: deque[float] = deque()  # when each starting worker becomes ready, in order
        self._draining: deque[float] = deque()  # when each draining worker is gone, in order
        self._served_rate = 0.0  # requests/s completed in the last step

    @property
    def desired(self) -> int:
        """The size asked for: ready workers and those starting."""
        return self.ready + len(self._starting)

    @property
    def running(self) -> int:
        """Every worker that costs: starting, ready or draining."""
        return self.desired + len(self._draining)

    @property
    def in_flight(self) -> float:
        """Requests in the pool now: queued, and in service (Little's law at the last step's throughput)."""
        return self.backlog + self._served_rate * self.params.service_s

    def scale_to(self, size: int, now: float) -> None:
        """Ask for `size` workers: start new ones, or cancel starting ones and drain ready ones."""
        size = max(0, size)
        if size > self.desired:
            self._starting.extend([now + self.params.startup_s] * (size - self.desired))
            return
        excess = self.desired - size
        while excess and self._starting:
            self._starting.pop()
            excess -= 1
        self.ready -= excess
        self._draining.extend([now + self.params.drain_s] * excess)

    def step(self, rate: float, dt: float, now: float) -> StepOutcome:
        """Advance the pool `dt` seconds from `now` with requests arriving at `rate` per second."""
        p = self.params
        while self._starting and self._starting[0] <= now:
            self._starting.popleft()
            self.ready += 1
        while self._draining and self._draining[0] <= now:
            self._draining.popleft()
        arrived = rate * dt
        capacity = self.ready * p.capacity * dt
        before = self.backlog
        served = min(before + arrived, capacity)
        left = before + arrived - served
        limit = p.queue_limit_s * self.ready * p.capacity
        dropped = max(0.0, left - limit)
        self.backlog = left - dropped
        self._served_rate = served / dt
        if self.ready == 0:
            p95 = p.service_s + p.queue_limit_s if arrived > 0 or before > 0 else 0.0
        else:
            per_worker = rate / self.ready
            stationary = wait_p95(p.slots, p.slot_rate, per_worker) if per_worker > 0 else 0.0
            draining = max(before, self.backlog) / (self.ready * p.capacity)
            p95 = p.service_s + max(stationary, draining)
        return StepOutcome(
            arrived, served, dropped, p95, self.backlog, self.ready, len(self._starting), len(self._draining)
        )


def steady_p95(params: PoolParams, rate: float, workers: int) -> float:
    """The p95 latency of `workers` ready workers at a steady `rate` (no backlog), for tests and sizing."""
    if workers <= 0:
        return math.inf
    return params.service_s + wait_p95(params.slots, params.slot_rate, rate / workers)
