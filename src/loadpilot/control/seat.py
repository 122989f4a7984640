"""A controller's seat among the controllers: it joins their group and runs for leadership (loadpilot.coord).

The seat is a Leadership (tick, is_leader, resign, epoch) that also connects, joins the `controllers` group (so
`loadpilot status` lists it) and reconnects after the backend was away: a controller started before its
backend simply does not lead until the backend answers.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from tooz import coordination

from loadpilot.coord import CONTROLLERS, CoordSettings, Leadership, leadership
from loadpilot.coord.backend import connect, disconnect, redact
from loadpilot.coord.membership import Membership
from loadpilot.coord.records import Records, open_records
from loadpilot.errors import LoadpilotError, TemporaryError

log = logging.getLogger(__name__)


class Seat:
    """Membership and leadership of one controller, connected on first use."""

    def __init__(self, settings: CoordSettings, member_id: str, capabilities: dict[str, Any]) -> None:
        self.settings = settings
        self.member_id = member_id
        self.capabilities = {"kind": "controller", **capabilities}
        self.epoch = 0
        self._coordinator: coordination.CoordinationDriver | None = None
        self._records: Records | None = None
        self._members: Membership | None = None
        self._leader: Leadership | None = None
        self._warned = False

    def tick(self) -> bool:
        """Connect when needed, beat, campaign or renew; True when this controller leads after it."""
        if self._leader is None and not self._connect():
            return False
        assert self._members is not None and self._leader is not None
        with contextlib.suppress(TemporaryError):
            self._members.tick()
        leading = self._leader.tick()
        self.epoch = self._leader.epoch
        return leading

    def is_leader(self) -> bool:
        """True while this controller may act: leading, and before its lease's deadline."""
        return self._leader is not None and self._leader.is_leader()

    def resign(self) -> None:
        """Give the leadership up at once, leave the group and disconnect (the next controller takes over)."""
        with contextlib.suppress(LoadpilotError):
            if self._leader is not None:
                self._leader.resign()
            if self._members is not None:
                self._members.leave()
        if self._coordinator is not None:
            with contextlib.suppress(Exception):  # best effort: a backend that is away has nothing left to leave
                disconnect(self._coordinator)
        if self._records is not None:
            with contextlib.suppress(Exception):
                self._records.close()
        self._coordinator = self._records = self._members = self._leader = None

    def _connect(self) -> bool:
        try:
            self._coordinator = connect(self.settings, self.member_id)
            self._records = open_records(self.settings, self._coordinator)
            self._members = Membership(
                self._coordinator,
                self.settings.group(CONTROLLERS),
                self.member_id,
                self.capabilities,
                self._records,
            )
            self._members.join()
        except TemporaryError as exc:
            if not self._warned:
                log.warning("coordination at %s: %s; not leading until it answers", redact(self.settings.url), exc)
            self._warned = True
            self.resign()
            return False
        self._leader = leadership(self.settings, self._coordinator, self._records, self.member_id)
        self._warned = False
        return True
