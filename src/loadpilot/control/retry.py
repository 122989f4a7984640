"""Backoff for a pool whose actuator failed for a reason that may clear up: wait, doubling, up to a ceiling."""

from __future__ import annotations


class Backoff:
    """Delays of `initial`, 2 x initial, ... up to `ceiling` seconds; reset() after a success."""

    def __init__(self, initial: float, ceiling: float) -> None:
        self.initial = initial
        self.ceiling = max(initial, ceiling)
        self.failures = 0

    def next_delay(self) -> float:
        """Count one more failure and return how long to wait before the next attempt."""
        delay = min(self.ceiling, self.initial * 2.0 ** min(self.failures, 30))
        self.failures += 1
        return delay

    def reset(self) -> None:
        """The last attempt worked: the next failure waits `initial` again."""
        self.failures = 0
