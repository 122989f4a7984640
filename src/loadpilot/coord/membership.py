"""Membership of one tooz group, as a small synchronous facade.

Join with a member id and capabilities; tooz's heart beats in a background thread; every tick runs the watchers
(tooz only fires join and leave callbacks when they are run), lists the live members with their capabilities and,
given records, notes the tick's time there (tooz keeps the heartbeat's time to itself; status shows ours).
A member that finds itself dropped from the group (paused, or cut off, longer than the member timeout: Redis,
etcd and ZooKeeper forget it for good) joins again. Every call waits at most the coordinator's call_timeout()
(ZooKeeper: kazoo would wait for ever while the server is away).
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from tooz import coordination

from loadpilot.coord.backend import call_timeout, translated
from loadpilot.coord.records import Records

log = logging.getLogger(__name__)
EVENTS_KEPT = 100
BEATS_TABLE = "beats"  # member id -> {group, kind, capabilities, beat_at}: its loop's last tick, for status


def encode_beat(group: bytes, capabilities: dict[str, Any], now: float) -> bytes:
    """A member's beat record: which group, what it declared, and when its loop last ticked."""
    body = {"group": group.decode(), "capabilities": capabilities, "beat_at": now}
    return json.dumps(body, separators=(",", ":"), default=str).encode()


@dataclass(frozen=True)
class Member:
    """A live member of a group and what it declared when it joined."""

    id: str
    capabilities: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """What the member is: agent, controller, ..."""
        return str(self.capabilities.get("kind", ""))

    @property
    def weight(self) -> float:
        """Its share of partitioned work relative to the others (1 when it did not say)."""
        value = self.capabilities.get("weight", 1)
        return float(value) if isinstance(value, int | float) and value > 0 else 1.0


@dataclass(frozen=True)
class GroupEvent:
    """A member that joined or left, as the watchers saw it."""

    time: float
    kind: str  # joined | left
    member: str


def _text(member_id: bytes | str) -> str:
    return member_id.decode() if isinstance(member_id, bytes) else member_id


class Membership:
    """This member in one group."""

    def __init__(
        self,
        coordinator: coordination.CoordinationDriver,
        group: bytes,
        member_id: str,
        capabilities: dict[str, Any],
        records: Records | None = None,
    ) -> None:
        self.coordinator = coordinator
        self.records = records
        self.group = group
        self.member_id = member_id
        self.capabilities = capabilities
        self.events: deque[GroupEvent] = deque(maxlen=EVENTS_KEPT)
        self.live: dict[str, Member] = {}
        self.joined = False
        self.timeout = call_timeout(coordinator)

    def join(self) -> None:
        """Create the group when needed, join it, and start watching joins and leaves."""
        with translated(f"joining {self.group.decode()}"):
            ensure_group(self.coordinator, self.group)
            try:
                self.coordinator.join_group(self.group, self.capabilities).get(timeout=self.timeout)
            except coordination.MemberAlreadyExist:
                # Our previous incarnation (same id) has not timed out yet: take its place.
                self.coordinator.leave_group(self.group).get(timeout=self.timeout)
                self.coordinator.join_group(self.group, self.capabilities).get(timeout=self.timeout)
            if not self.joined:
                self.coordinator.watch_join_group(self.group, self._on_join)
                self.coordinator.watch_leave_group(self.group, self._on_leave)
        self.joined = True

    def _on_join(self, event: coordination.MemberJoinedGroup) -> None:
        member = _text(event.member_id)
        self.events.append(GroupEvent(time.time(), "joined", member))
        if member != self.member_id:
            log.info("%s: %s joined", self.group.decode(), member)

    def _on_leave(self, event: coordination.MemberLeftGroup) -> None:
        member = _text(event.member_id)
        self.events.append(GroupEvent(time.time(), "left", member))
        log.info("%s: %s left", self.group.decode(), member)

    def tick(self) -> dict[str, Member]:
        """Run the watchers and return the live members (joining again when the group forgot us)."""
        with translated(f"reading {self.group.decode()}"):
            self.coordinator.run_watchers(self.timeout)
            self.live = list_members(self.coordinator, self.group)
        if self.joined and self.member_id not in self.live:
            log.warning(
                "%s: this member (%s) was dropped from the group; joining again", self.group.decode(), self.member_id
            )
            self.join()
            self.live[self.member_id] = Member(self.member_id, dict(self.capabilities))
        if self.records is not None:
            self.records.put(BEATS_TABLE, self.member_id, encode_beat(self.group, self.capabilities, time.time()))
        return self.live

    def leave(self) -> None:
        """Leave the group (the others see it at their next tick) and remove this member's beat record."""
        if not self.joined:
            return
        if self.records is not None:
            self.records.delete(BEATS_TABLE, self.member_id)
        with translated(f"leaving {self.group.decode()}"):
            self.coordinator.unwatch_join_group(self.group, self._on_join)
            self.coordinator.unwatch_leave_group(self.group, self._on_leave)
            with contextlib.suppress(coordination.MemberNotJoined, coordination.GroupNotCreated):
                self.coordinator.leave_group(self.group).get(timeout=self.timeout)
        self.joined = False


def ensure_group(coordinator: coordination.CoordinationDriver, group: bytes) -> None:
    """Create a group unless it exists."""
    with contextlib.suppress(coordination.GroupAlreadyExist):
        coordinator.create_group(group).get(timeout=call_timeout(coordinator))


def list_members(coordinator: coordination.CoordinationDriver, group: bytes) -> dict[str, Member]:
    """The live members of a group with their capabilities (none when the group does not exist yet)."""
    timeout = call_timeout(coordinator)
    try:
        if timeout is None:
            found = coordinator.get_members_with_capabilities(group).get()
        else:
            found = _members_within(coordinator, group, timeout)
    except coordination.GroupNotCreated:
        return {}
    return {
        _text(member): Member(_text(member), dict(caps) if isinstance(caps, dict) else {})
        for member, caps in found.items()
    }


def _members_within(coordinator: coordination.CoordinationDriver, group: bytes, timeout: float) -> dict[bytes, Any]:
    """The members and their capabilities within `timeout` seconds, all asked at once (tooz's
    get_members_with_capabilities reads them one by one, each without a time limit)."""
    deadline = time.monotonic() + timeout
    ids = coordinator.get_members(group).get(timeout=timeout)
    pending = {member: coordinator.get_member_capabilities(group, member) for member in ids}
    found: dict[bytes, Any] = {}
    for member, result in pending.items():
        try:
            found[member] = result.get(timeout=max(0.01, deadline - time.monotonic()))
        except coordination.MemberNotJoined:
            continue  # left while listing
    return found
