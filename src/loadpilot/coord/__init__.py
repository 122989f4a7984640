"""Coordination on top of tooz: membership, leadership with fencing epochs, and partitioned work.

- backend.py     URL -> a started tooz coordinator (file://, redis://, etcd3+http://, zookeeper://), errors translated
- records.py     small key-value records in the same backend (member states, leases, epochs)
- membership.py  join a group, heartbeat, live members, watchers run every tick
- ring.py        weighted rendezvous hashing: who owns a resource
- partition.py   make-before-break handover of a member's share (pure)
- shared.py      an agent's share of the shared resources, slot after slot
- leader.py      one leader per role, a strictly increasing epoch per term, a deadline to stop acting
- status.py      the read side for `loadpilot status`
"""

from __future__ import annotations

from loadpilot.coord.backend import CoordSettings, backend_kind
from loadpilot.coord.leader import CONTROLLERS, Leadership, Term, leadership, read_term
from loadpilot.coord.partition import Handover, MemberState, Plan
from loadpilot.coord.ring import Ring
from loadpilot.coord.shared import AGENTS, SharedWork

__all__ = [
    "AGENTS",
    "CONTROLLERS",
    "CoordSettings",
    "Handover",
    "Leadership",
    "MemberState",
    "Plan",
    "Ring",
    "SharedWork",
    "Term",
    "backend_kind",
    "leadership",
    "read_term",
]
