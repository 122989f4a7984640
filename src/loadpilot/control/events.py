"""The controller's record of what it did and why: events in the store, written so that losing one is unlikely.

Event kinds the controller writes (subject, reason, result, details):

- `scale`      pool/<name>: an action attempted; reason = the decision's, result = ok | refused | error | failed,
               details = the decision's inputs, from/to, the epoch, the policy, the attempt and its duration;
- `hold`       pool/<name>: no change, written only when the reason changes in kind (numbers aside), so a pool
               that keeps its size for an hour leaves one line, not 1,800;
- `error`      pool/<name>: reconciling the pool failed unexpectedly (a bug, a malformed file); result = when it
               is tried again (the same backoff as a temporary error);
- `leadership` controller/<member>: this controller became the leader (with its epoch) or stopped being it.

The store may be busy or away for a moment: an event that cannot be written waits in memory (a bounded queue,
oldest dropped first and counted) and is written at the next tick, with its original time.
"""

from __future__ import annotations

import logging
import re
from collections import deque
from collections.abc import Callable
from typing import Any

from loadpilot.model import Event
from loadpilot.store import Store

log = logging.getLogger(__name__)

PENDING_MAX = 1000
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?%?")


def reason_kind(reason: str) -> str:
    """A reason with its numbers blanked: two reasons of the same kind compare equal ("keep 3" = "keep 4")."""
    return _NUMBER.sub("#", reason)


class EventLog:
    """Writes events to the store; keeps those the store refused for the next flush."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.pending: deque[Event] = deque()
        self.dropped = 0
        self._failing = False
        self.on_add: Callable[[Event], None] | None = None  # told of every event recorded (the /metrics counters)

    def add(
        self, time: float, kind: str, subject: str, reason: str, result: str, details: dict[str, Any] | None = None
    ) -> Event:
        """Record one event now, or keep it for the next flush when the store cannot take it; returns it."""
        event = Event(time, kind, subject, reason, result, dict(details or {}))
        if self.on_add is not None:
            self.on_add(event)
        self.pending.append(event)
        while len(self.pending) > PENDING_MAX:
            self.pending.popleft()
            self.dropped += 1
        self.flush()
        return event

    def flush(self) -> None:
        """Write every waiting event, oldest first, until the store refuses one."""
        while self.pending:
            try:
                self.store.add_event(self.pending[0])
            except Exception as exc:  # ours, sqlite3's or psycopg's: whatever it is, the event waits
                if not self._failing:
                    log.warning("cannot record events in the store (%s); %d waiting", exc, len(self.pending))
                self._failing = True
                return
            self.pending.popleft()
        if self._failing:
            log.info("events recorded again")
        self._failing = False
