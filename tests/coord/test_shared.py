"""Who shares the work: live agents that list the same resources and are not draining."""

from __future__ import annotations

from loadpilot.coord.membership import Member
from loadpilot.coord.partition import MemberState
from loadpilot.coord.shared import resources_digest, ring_members


def test_only_agents_listing_the_same_resources_and_not_draining_share_them() -> None:
    ours = resources_digest(["b", "a"])
    assert ours == resources_digest(["a", "b"]) != resources_digest(["a"])
    live = {
        "a1": Member("a1", {"kind": "agent", "weight": 2, "resources": ours}),
        "a2": Member("a2", {"kind": "agent", "resources": ours}),
        "old": Member("old", {"kind": "agent", "resources": resources_digest(["a"])}),  # would get what it lacks
        "leaving": Member("leaving", {"kind": "agent", "resources": ours}),
        "ctl": Member("ctl", {"kind": "controller"}),
    }
    states = {"leaving": MemberState("v", 3, draining=True), "a2": MemberState("v", 3)}
    assert ring_members(live, states, "agent", ours) == {"a1": 2.0, "a2": 1.0}
