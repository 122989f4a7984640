"""Frozen value types shared by every part of loadpilot.

Units follow DESIGN.md: utilisation is a fraction 0..1 of capacity, time is UNIX seconds (float), memory is
bytes and rates are per second.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple


def slot_of(timestamp: float, interval: float) -> int:
    """Return the sampling slot a timestamp falls in: floor(timestamp / interval).

    A sample's identity is (resource_id, metric, slot), so two readings of the same thing in the same slot are
    one sample: storing it twice keeps one row.
    """
    if interval <= 0:
        raise ValueError("interval must be > 0")
    return math.floor(timestamp / interval)


class Sample(NamedTuple):
    """One reading of one metric of one resource: utilisation as 0..1, memory in bytes, time in UNIX seconds.

    A tuple, because millions are made per minute.
    """

    resource_id: str
    metric: str
    value: float
    timestamp: float
    unit: str = ""
    source: str = ""


@dataclass(frozen=True, slots=True)
class Resource:
    """Something loadpilot watches: a host, a VM, a process, a pool worker."""

    id: str
    kind: str
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Batch:
    """What an agent ships at once: samples taken at one interval, and the resources they describe."""

    batch_id: str
    agent: str
    interval: float
    samples: tuple[Sample, ...]
    resources: tuple[Resource, ...] = ()


@dataclass(frozen=True, slots=True)
class WindowStats:
    """Aggregates of one metric over a time window, for one resource or a group of resources."""

    key: str
    metric: str
    count: int
    mean: float
    max: float
    p95: float
    latest: float


@dataclass(frozen=True, slots=True)
class Event:
    """Something loadpilot did or saw, with the reason and the result, kept for people to read."""

    time: float
    kind: str
    subject: str
    reason: str
    result: str
    details: dict[str, Any] = field(default_factory=dict)
    id: int | None = None
