"""An agent's part in polling the shared resources: its membership, its share, and the handover records.

Each slot the agent asks `plan(keys, slot)` what to poll, polls it, then calls `confirm(plan, now)`, which
publishes (view, since_slot) for the others' make-before-break (partition.py) and what the member polls, for
`loadpilot status`. `drain()` starts a graceful leave: the member drops out of everyone's view and keeps polling
until all it polled has been taken over (`handed_over`), then `stop()` leaves the group.

A backend that cannot be reached does not stop the polling: the member keeps its last share until it can read
the members again (at worst others take its resources over meanwhile, and both poll them for a while). A tick
waits for such a backend once, at most a tick long on Redis (CoordSettings.io_timeout).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Sequence

from tooz import coordination

from loadpilot.coord.backend import CoordSettings, connect, disconnect
from loadpilot.coord.membership import Member, Membership
from loadpilot.coord.partition import Handover, MemberState, Plan, decode_record, encode_state
from loadpilot.coord.records import Records, open_records
from loadpilot.errors import LoadpilotError, TemporaryError

log = logging.getLogger(__name__)

AGENTS = "agents"
MEMBERS_TABLE = "members"  # member id -> its published state (JSON)
POLLING_TABLE = "polling"  # member id -> the resources it polls (JSON list), rewritten when it changes


def resources_digest(keys: Sequence[str]) -> str:
    """A short name of a list of shared resources, declared when joining."""
    text = "\n".join(sorted(keys))
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:16]


def ring_members(
    live: dict[str, Member], states: dict[str, MemberState], kind: str, resources: str
) -> dict[str, float]:
    """The members that share the work: live, of the right kind, listing the same resources, not draining
    (id -> weight). A member that lists other resources is left out: it would be given some it cannot poll."""
    return {
        m.id: m.weight
        for m in live.values()
        if m.kind == kind
        and m.capabilities.get("resources", "") == resources
        and not (m.id in states and states[m.id].draining)
    }


def read_states(records: Records, live: dict[str, Member]) -> dict[str, MemberState]:
    """The published handover states of the live members."""
    out = {}
    for member, raw in records.all(MEMBERS_TABLE).items():
        if member in live:
            out[member] = MemberState.from_json(decode_record(raw))
    return out


class SharedWork:
    """One member of the agents' group, polling its share of the shared resources."""

    def __init__(self, settings: CoordSettings, member_id: str, weight: float = 1.0, kind: str = "agent") -> None:
        if not weight > 0:
            raise ValueError("weight must be > 0")
        self.settings = settings
        self.member_id = member_id
        self.weight = weight
        self.kind = kind
        self.handover = Handover(member_id, settings.replicas)
        self.draining = False
        self.coordinator: coordination.CoordinationDriver | None = None
        self.records: Records | None = None
        self.membership: Membership | None = None
        self._last: Plan | None = None
        self._published_polling: frozenset[str] | None = None
        self._published_at = 0.0
        self._nobody_left = False
        self._away = False  # the last plan() could not reach the backend
        self.resources = ""  # the digest of the shared resources this member declared

    def start(self, keys: Sequence[str] = ()) -> None:
        """Connect, publish a fresh state (an older incarnation's draining flag must not linger), and join,
        declaring which shared resources this member can poll (`keys`)."""
        self.resources = resources_digest(keys)
        coordinator = connect(self.settings, self.member_id)
        try:
            records = open_records(self.settings, coordinator)
            records.put(MEMBERS_TABLE, self.member_id, encode_state(MemberState(), {"kind": self.kind}))
            caps = {"kind": self.kind, "weight": self.weight, "resources": self.resources}
            membership = Membership(coordinator, self.settings.group(AGENTS), self.member_id, caps, records)
            membership.join()
        except LoadpilotError:
            with contextlib.suppress(Exception):
                disconnect(coordinator)
            raise
        self.coordinator, self.records, self.membership = coordinator, records, membership
        log.info(
            "joined %s as %s (weight %g, replicas %d)",
            self.settings.group(AGENTS).decode(),
            self.member_id,
            self.weight,
            self.settings.replicas,
        )

    def plan(self, keys: Sequence[str], slot: int) -> Plan:
        """What this member polls in `slot`: its share under the current view, and what it still hands over."""
        assert self.membership is not None and self.records is not None
        try:
            live = self.membership.tick()
            states = read_states(self.records, live)
        except TemporaryError as exc:
            log.warning("coordination backend unavailable, keeping the last share: %s", exc)
            self._away = True  # confirm() skips publishing this tick: one wait for the backend per tick is enough
            if self._last is None:
                return self.handover.plan(keys, {self.member_id: self.weight}, {}, slot)
            return self._last
        self._away = False
        members = ring_members(live, states, self.kind, self.resources)
        if self.draining:
            members.pop(self.member_id, None)
            self._nobody_left = not members  # everyone is leaving: waiting cannot hand anything over
        before = self.handover.view
        self._last = self.handover.plan(keys, members, states, slot)
        if self._last.view != before:
            log.info(
                "view %s: %d member(s), %d of %d resource(s) owned here",
                self._last.view,
                len(members),
                len(self._last.owned),
                len(keys),
            )
        return self._last

    def confirm(self, plan: Plan, now: float) -> None:
        """Publish, after polling the slot, that this member polls by the plan's view (others may now let go);
        not when this tick's plan found the backend away (the next tick that reaches it publishes)."""
        if self._away:
            return
        state = MemberState(plan.view, plan.since_slot, self.draining)
        try:
            self._publish(state, now, len(plan.owned))
            if plan.polling != self._published_polling:
                assert self.records is not None
                body = json.dumps(sorted(plan.polling), separators=(",", ":")).encode()
                self.records.put(POLLING_TABLE, self.member_id, body)
                self._published_polling = plan.polling
        except TemporaryError as exc:
            log.warning("could not publish this member's state: %s", exc)

    def _publish(self, state: MemberState, now: float, owned: int) -> None:
        assert self.records is not None
        polling = len(self.handover.polling)
        extra = {"kind": self.kind, "weight": self.weight, "at": now, "owned": owned, "polling": polling}
        self.records.put(MEMBERS_TABLE, self.member_id, encode_state(state, extra))
        self._published_at = now

    def drain(self) -> None:
        """Start leaving gracefully: announce it, so the others take this member's resources over."""
        if self.draining:
            return
        self.draining = True
        log.info("draining: handing %d resource(s) over before leaving", len(self.handover.polling))
        try:
            self._publish(MemberState(self.handover.view, self.handover.since_slot, True), time.time(), 0)
        except TemporaryError as exc:
            log.warning("could not announce the drain: %s", exc)

    @property
    def started(self) -> bool:
        """True once connected and joined."""
        return self.coordinator is not None and self.membership is not None

    @property
    def handed_over(self) -> bool:
        """True when a draining member polls nothing any more (or no member is left to take anything over)."""
        return self.draining and (self.handover.handed_over or self._nobody_left)

    def stop(self, graceful: bool = True) -> None:
        """Leave the group, stop the heart, disconnect; `graceful` also removes this member's records (a member
        that stops without handing over keeps them, so status shows what it left behind)."""
        if self.coordinator is None:
            return
        try:
            if graceful and self.membership is not None:
                self.membership.leave()
                if self.records is not None:
                    self.records.delete(MEMBERS_TABLE, self.member_id)
                    self.records.delete(POLLING_TABLE, self.member_id)
        except TemporaryError as exc:
            log.warning("leaving the group: %s", exc)
        finally:
            if self.records is not None:
                self.records.close()
            try:
                disconnect(self.coordinator)
            except TemporaryError as exc:
                log.warning("disconnecting from the coordination backend: %s", exc)
            self.coordinator = None
