"""A pool's demand in a metric's units, with the requests a saturated pool could not take counted back in.

Demand is the metric per worker times the ready workers. A saturated pool under-reports it: its CPU tops out and
it completes only what it can. The requests piling up are the rest, so the growth of the requests in flight per
second is added back, converted with the pool's cost per request (load / requests per second).
"""

from __future__ import annotations

from dataclasses import dataclass

from loadpilot.config import ScalingCheck
from loadpilot.model import PoolView


@dataclass(frozen=True, slots=True)
class QueueReading:
    """The requests in flight at one reading, to see the queue grow by the next."""

    in_flight: float | None
    observed_at: float


def queue_reading(view: PoolView) -> QueueReading:
    """What `demand_now` needs of this view next time."""
    return QueueReading(view.in_flight, view.observed_at)


def is_new(view: PoolView, previous: QueueReading | None) -> bool:
    """True when `view` holds a reading newer than `previous` (the same reading seen twice is not news)."""
    return previous is None or view.observed_at > previous.observed_at


def demand_now(view: PoolView, check: ScalingCheck, previous: QueueReading | None) -> float | None:
    """The pool's load in the check's metric units, requests piling up in its queues added back; None when
    there is no metric or no ready worker."""
    value = view.metric(check.metric, check.query)
    if value is None or view.ready <= 0:
        return None
    load = value * view.ready
    if (
        previous is not None
        and previous.in_flight is not None
        and view.in_flight is not None
        and view.observed_at > previous.observed_at
        and view.rps
        and load > 0
    ):
        growth = (view.in_flight - previous.in_flight) / (view.observed_at - previous.observed_at)
        if growth > 0:
            load += growth * load / view.rps
    return load
