"""What `loadpilot status` shows: the members of every role, the leader and its epoch, and who polls what.

Read-only: the observer connects without joining any group and without a heart.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from loadpilot.coord.backend import CoordSettings, connect, disconnect, redact, translated
from loadpilot.coord.leader import CONTROLLERS, Term, read_term
from loadpilot.coord.membership import BEATS_TABLE, list_members
from loadpilot.coord.partition import decode_record
from loadpilot.coord.records import file_root, open_records
from loadpilot.coord.shared import AGENTS, MEMBERS_TABLE, POLLING_TABLE
from loadpilot.errors import TemporaryError

ROLES = (AGENTS, CONTROLLERS)


@dataclass
class MemberStatus:
    """One member as the backend knows it."""

    id: str
    role: str
    alive: bool  # in the group now (its heart beats)
    capabilities: dict[str, Any] = field(default_factory=dict)
    beat_at: float | None = None  # its loop's last tick
    view: str = ""
    draining: bool = False
    owned: int = 0
    resources: list[str] = field(default_factory=list)  # what it polls (owned and still handing over)

    @property
    def kind(self) -> str:
        """agent, controller, ..."""
        return str(self.capabilities.get("kind", self.role.rstrip("s")))


@dataclass
class ClusterStatus:
    """Everything `loadpilot status` prints."""

    backend: str
    now: float
    members: list[MemberStatus]
    term: Term | None

    @property
    def leader(self) -> Term | None:
        """The current term, when its lease has not expired."""
        return self.term if self.term is not None and self.term.expires_at > self.now else None

    def to_json(self) -> dict[str, Any]:
        """The status as one JSON document (resource lists included)."""
        leader = self.leader
        return {
            "backend": self.backend,
            "time": self.now,
            "leader": None
            if leader is None
            else {
                "member": leader.leader,
                "epoch": leader.epoch,
                "since": leader.since,
                "lease_left_s": round(leader.expires_at - self.now, 3),
            },
            "last_epoch": self.term.epoch if self.term else 0,
            "members": [
                {
                    "id": m.id,
                    "role": m.role,
                    "kind": m.kind,
                    "alive": m.alive,
                    "capabilities": m.capabilities,
                    "last_heartbeat": m.beat_at,
                    "last_heartbeat_age_s": None if m.beat_at is None else round(self.now - m.beat_at, 3),
                    "view": m.view,
                    "draining": m.draining,
                    "owned": m.owned,
                    "polling": len(m.resources),
                    "resources": m.resources,
                }
                for m in self.members
            ],
        }


def read_status(settings: CoordSettings) -> ClusterStatus:
    """Read the members, their records and the leader's term from the backend."""
    if settings.kind == "file" and not file_root(settings.url).is_dir():
        return ClusterStatus(redact(settings.url), time.time(), [], None)  # nobody has joined yet: create nothing
    coordinator = connect(settings, f"status-{socket.gethostname()}-{os.getpid()}", heart=False)
    records = open_records(settings, coordinator)
    try:
        with translated("reading the groups"):
            live = {role: list_members(coordinator, settings.group(role)) for role in ROLES}
        beats = {k: decode_record(v) for k, v in records.all(BEATS_TABLE).items()}
        states = {k: decode_record(v) for k, v in records.all(MEMBERS_TABLE).items()}
        polling = records.all(POLLING_TABLE)
        term = read_term(records, CONTROLLERS)
    finally:
        records.close()
        with contextlib.suppress(TemporaryError):
            disconnect(coordinator)
    members: list[MemberStatus] = []
    for role in ROLES:
        group = settings.group(role).decode()
        ids = set(live[role]) | {m for m, b in beats.items() if b.get("group") == group}
        for member in sorted(ids):
            members.append(_member(member, role, member in live[role], live[role], beats, states, polling))
    return ClusterStatus(redact(settings.url), time.time(), members, term)


def _member(
    member: str,
    role: str,
    alive: bool,
    live: dict[str, Any],
    beats: dict[str, dict[str, object]],
    states: dict[str, dict[str, object]],
    polling: dict[str, bytes],
) -> MemberStatus:
    beat = beats.get(member, {})
    caps = live[member].capabilities if member in live else beat.get("capabilities", {})
    state = states.get(member, {}) if role == AGENTS else {}
    beat_at = beat.get("beat_at")
    try:
        resources = json.loads(polling[member]) if role == AGENTS and member in polling else []
    except ValueError:
        resources = []
    owned = state.get("owned", 0)
    return MemberStatus(
        id=member,
        role=role,
        alive=alive,
        capabilities=dict(caps) if isinstance(caps, dict) else {},
        beat_at=float(beat_at) if isinstance(beat_at, int | float) else None,
        view=str(state.get("view", "")),
        draining=bool(state.get("draining", False)),
        owned=owned if isinstance(owned, int) else 0,
        resources=[str(r) for r in resources] if isinstance(resources, list) else [],
    )
