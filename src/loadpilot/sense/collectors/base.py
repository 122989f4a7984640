"""What every collector is, and the bookkeeping for cumulative counters they share."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Protocol

from pydantic import BaseModel, ConfigDict

from loadpilot.model import Resource, Sample


class CollectorOptions(BaseModel):
    """Base of a collector's options: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


@dataclass
class Collection:
    """What one collection pass found: samples and the resources they describe."""

    samples: list[Sample] = field(default_factory=list)
    resources: list[Resource] = field(default_factory=list)

    def add(self, resource_id: str, metric: str, value: float, timestamp: float, unit: str, source: str) -> None:
        """Append one sample."""
        self.samples.append(Sample(resource_id, metric, float(value), timestamp, unit, source))


class Collector(Protocol):
    """Samples something every interval. Collectors observe; they never decide or act."""

    Options: ClassVar[type[CollectorOptions]]

    def collect(self, now: float) -> Collection:
        """Take one reading of everything this collector watches, stamped `now`."""
        ...

    def close(self) -> None:
        """Release whatever the collector holds open (connections, files)."""
        ...


class Rates:
    """Turns cumulative counters into rates per second.

    The first reading of a counter only primes it; a counter that went backwards (a restart, a wrap) primes
    again instead of producing a negative rate.
    """

    def __init__(self) -> None:
        self._last: dict[str, tuple[float, float]] = {}

    def rate(self, key: str, counter: float, now: float) -> float | None:
        """The counter's growth per second since the last reading, or None when there is no valid last one."""
        last = self._last.get(key)
        self._last[key] = (counter, now)
        if last is None:
            return None
        prev, then = last
        dt = now - then
        if dt <= 0 or counter < prev:
            return None
        return (counter - prev) / dt

    def forget_except(self, keys: set[str]) -> None:
        """Drop the state of counters that are gone (a process that exited, a VM that left)."""
        for key in list(self._last):
            if key not in keys:
                del self._last[key]
