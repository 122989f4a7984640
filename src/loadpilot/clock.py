"""Time as a dependency: the real clock for production, a simulated one for tests and the simulator."""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """What loadpilot needs from time: the current UNIX time and a way to wait."""

    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class RealClock:
    """Wall-clock time."""

    def now(self) -> float:
        """Return the current UNIX time in seconds."""
        return time.time()

    def sleep(self, seconds: float) -> None:
        """Block for `seconds` of real time."""
        if seconds > 0:
            time.sleep(seconds)


class SimulatedClock:
    """A clock that moves only when told to: sleeping advances it at once."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> float:
        """Return the simulated time."""
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        """Advance the simulated time by `seconds` without waiting."""
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        """Move the simulated time forward; it never moves backwards."""
        if seconds < 0:
            raise ValueError("a simulated clock cannot go backwards")
        with self._lock:
            self._now += seconds
