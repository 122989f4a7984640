"""What the simulated pool's collector sees: readings every sampling interval, windows of them as a PoolView.

As the live pool collector, it does not see the truth step by step: every `sample_s` it reads the ready
workers' CPU utilisation and completed requests/s over the interval, the requests in flight at that moment,
and the highest p95 latency of the interval. A policy then sees the mean of the readings in its window.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from loadpilot.model import PoolView
from loadpilot.sim.pool_model import PoolModel, StepOutcome

KEPT_READINGS = 64


@dataclass(frozen=True, slots=True)
class Reading:
    """One sampling interval's metrics of the pool."""

    at: float
    cpu: float | None
    rps: float
    latency_p95: float | None
    in_flight: float


class Observer:
    """Accumulates step outcomes into readings, and readings into the views policies decide on."""

    def __init__(self, sample_s: float, capacity: float) -> None:
        self.sample_s = sample_s
        self.capacity = capacity
        self.readings: deque[Reading] = deque(maxlen=KEPT_READINGS)
        self._reset()

    def _reset(self) -> None:
        self._elapsed = 0.0
        self._served = 0.0
        self._capacity = 0.0
        self._p95: float | None = None

    def add(self, outcome: StepOutcome, dt: float) -> None:
        """Fold one simulated step into the current sampling interval."""
        self._elapsed += dt
        self._served += outcome.served
        self._capacity += outcome.ready * self.capacity * dt
        if outcome.arrived > 0 and (self._p95 is None or outcome.p95_s > self._p95):
            self._p95 = outcome.p95_s

    def sample_if_due(self, now: float, pool: PoolModel) -> None:
        """Take a reading when a whole sampling interval has passed."""
        if self._elapsed + 1e-9 < self.sample_s:
            return
        cpu = self._served / self._capacity if self._capacity > 0 else None
        rps = self._served / self._elapsed
        self.readings.append(Reading(now, cpu, rps, self._p95, pool.in_flight))
        self._reset()

    def view(self, name: str, pool: PoolModel, low: int, high: int, window_s: float, now: float) -> PoolView:
        """The pool as a policy sees it: its sizes now, and the mean of the readings within `window_s`."""
        inside = [r for r in self.readings if r.at > now - window_s] or list(self.readings)[-1:]
        cpus = [r.cpu for r in inside if r.cpu is not None]
        latencies = [r.latency_p95 for r in inside if r.latency_p95 is not None]
        return PoolView(
            name=name,
            desired=pool.desired,
            size=pool.running,
            ready=pool.ready,
            min=low,
            max=high,
            cpu=sum(cpus) / len(cpus) if cpus else None,
            rps=sum(r.rps for r in inside) / len(inside) if inside else None,
            latency_p95=sum(latencies) / len(latencies) if latencies else None,
            in_flight=sum(r.in_flight for r in inside) / len(inside) if inside else None,
            window_s=window_s,
            observed_at=inside[-1].at if inside else 0.0,
        )
