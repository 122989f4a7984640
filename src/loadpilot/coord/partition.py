"""This member's share of the shared resources, handed over make-before-break.

Every member computes the same owners from the same view of the members (ring.py). When the view changes, the
resources that move get a new owner; a naive member would stop polling what it lost at once, and the new owner
would start only when it noticed the change: the resource goes unpolled in between (tooz's partitioner loses a
third of the objects for a while when a member leaves). And a member that still thinks the old view holds polls
what the new owner already polls: duplicates.

Here a member keeps polling everything it polled until each of the resource's current owners *confirms* the
current view: it publishes (view, since_slot) after it has polled `since_slot` under that view, and it polls every
slot from then on. So for a moment both poll (the store's identity dedupe keeps one row), and no slot is left
unpolled by a graceful join or leave: a leaving member announces it is draining, drops out of everyone's view,
and leaves only once all it polled has been taken over.

What this cannot cover: a member killed outright stops polling at once, and its resources wait for the others to
notice (the member timeout). With `replicas = 2` every resource has two owners, so the other one keeps polling
through that window: no gap, at twice the polling.

This module is pure: the caller passes the members, their published states and the slot.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

from loadpilot.coord.ring import Ring, view_id


@dataclass(frozen=True)
class MemberState:
    """What a member publishes about its share: the view it polls by, since which slot, and whether it leaves."""

    view: str = ""
    since_slot: int = -1
    draining: bool = False

    def confirms(self, view: str, slot: int) -> bool:
        """True when this member polls by `view` and has done so at least since `slot`."""
        return self.view == view and 0 <= self.since_slot <= slot

    def to_json(self) -> dict[str, object]:
        """The fields, for a record."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> MemberState:
        """Read the fields back from a record (missing or malformed fields: not confirming anything)."""
        view, since, draining = data.get("view", ""), data.get("since_slot", -1), data.get("draining", False)
        return cls(
            view=view if isinstance(view, str) else "",
            since_slot=since if isinstance(since, int) else -1,
            draining=bool(draining),
        )


@dataclass(frozen=True)
class Plan:
    """What to poll in one slot, and why."""

    polling: frozenset[str]  # owned | kept
    owned: frozenset[str]  # what the current view gives this member
    kept: frozenset[str]  # polled only until their current owners confirm the view
    view: str
    since_slot: int

    @property
    def state(self) -> MemberState:
        """The state to publish once this slot has been polled."""
        return MemberState(self.view, self.since_slot)


class Handover:
    """Decides, slot after slot, which shared resources this member polls."""

    def __init__(self, member_id: str, replicas: int = 1) -> None:
        if replicas < 1:
            raise ValueError("replicas must be >= 1")
        self.member_id = member_id
        self.replicas = replicas
        self.polling: frozenset[str] = frozenset()
        self.view = ""
        self.since_slot = -1
        self._owners_key: tuple[str, tuple[str, ...]] | None = None
        self._owners: dict[str, tuple[str, ...]] = {}

    def owners(self, keys: Sequence[str], members: Mapping[str, float]) -> dict[str, tuple[str, ...]]:
        """The owners of every key under a view (cached: recomputed only when the view or the keys change)."""
        view = view_id(members, self.replicas)
        cache_key = (view, tuple(keys))
        if cache_key != self._owners_key:
            self._owners = Ring(members).assign(keys, self.replicas)
            self._owners_key = cache_key
        return self._owners

    def plan(
        self,
        keys: Sequence[str],
        members: Mapping[str, float],
        states: Mapping[str, MemberState],
        slot: int,
    ) -> Plan:
        """What to poll in `slot`, given the members in the view (id -> weight; a draining member, this one
        included, is left out by the caller) and every member's last published state."""
        view = view_id(members, self.replicas)
        if view != self.view:
            self.view, self.since_slot = view, slot
        owners = self.owners(keys, members)
        me = self.member_id
        owned = frozenset(k for k, who in owners.items() if me in who)
        kept = frozenset(
            k for k in self.polling - owned if k in owners and not self._taken_over(owners[k], states, view, slot)
        )
        self.polling = owned | kept
        return Plan(self.polling, owned, kept, view, self.since_slot)

    def _taken_over(self, owners: tuple[str, ...], states: Mapping[str, MemberState], view: str, slot: int) -> bool:
        if not owners:
            return False  # nobody to hand over to: keep polling
        return all(o in states and states[o].confirms(view, slot) for o in owners)

    @property
    def handed_over(self) -> bool:
        """True when this member polls nothing any more (a draining member may leave)."""
        return not self.polling


def encode_state(state: MemberState, extra: Mapping[str, object]) -> bytes:
    """A member's published record: its handover state and whatever else it shows (kind, counts, time)."""
    return json.dumps({**extra, **state.to_json()}, separators=(",", ":")).encode()


def decode_record(raw: bytes) -> dict[str, object]:
    """A member record back as a dict (an unreadable record: empty)."""
    try:
        data = json.loads(raw)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
