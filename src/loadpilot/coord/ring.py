"""Which members own a resource: weighted rendezvous hashing (highest random weight) over the live members.

Each (member, resource) pair gets a pseudo-random score; a resource belongs to the member(s) with the highest
scores. Weights scale the score the logarithmic way (score = weight / -ln(u), u uniform in (0, 1)), so a member of
weight 2 owns twice the share of a member of weight 1.

Why not a ring of virtual nodes, as tooz's HashRing: a ring's balance depends on how its virtual points happen to
fall (tooz's 32 per member leave the largest share about 1.6x the mean at 10 members), and fixing that takes
hundreds of points per member. Rendezvous hashing has no points: every member's share is what the resource ids
themselves give, so balance is as good as a hash can make it, and a membership change moves exactly the resources
of the member that left, or those the newcomer wins: 1/n of them. Its cost, one hash per member per resource, is
paid once per membership change (owners are cached per view). bench/coord.py measures both side by side.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import math
from collections.abc import Iterable, Mapping

MASK64 = (1 << 64) - 1
TWO_53 = float(1 << 53)


def hash64(text: str) -> int:
    """A stable 64-bit hash of a string (the same on every machine and Python run, unlike hash())."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def _mix(x: int) -> int:
    """splitmix64's finaliser: every input bit flips about half of the output bits."""
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


def _unit(x: int) -> float:
    """A 64-bit integer as a float strictly between 0 and 1."""
    return ((x >> 11) + 0.5) / TWO_53


def view_id(members: Mapping[str, float], replicas: int) -> str:
    """A short name of one membership view: members that compute it agree on every owner."""
    text = json.dumps([sorted((m, float(w)) for m, w in members.items()), replicas], separators=(",", ":"))
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:16]


class Ring:
    """The owners of resources among weighted members."""

    def __init__(self, members: Mapping[str, float]) -> None:
        for member, weight in members.items():
            if not weight > 0:
                raise ValueError(f"member {member!r}: weight must be > 0, not {weight}")
        self.members = dict(sorted(members.items()))
        self._seeds = [(member, hash64(member), float(weight)) for member, weight in self.members.items()]
        self._uniform = len({w for *_, w in self._seeds}) <= 1

    def owners(self, key: str, replicas: int = 1) -> tuple[str, ...]:
        """The `replicas` members that own `key`, best first (fewer when there are fewer members)."""
        if not self._seeds:
            return ()
        h = hash64(key)
        scored: list[tuple[float, str]]
        if self._uniform:  # equal weights: the largest u wins, no logarithm needed
            scored = [(_mix(h ^ seed), member) for member, seed, _ in self._seeds]
        else:
            scored = [(weight / -math.log(_unit(_mix(h ^ seed))), member) for member, seed, weight in self._seeds]
        if replicas == 1:
            return (max(scored)[1],)
        return tuple(member for _, member in heapq.nlargest(replicas, scored))

    def assign(self, keys: Iterable[str], replicas: int = 1) -> dict[str, tuple[str, ...]]:
        """The owners of every key."""
        return {key: self.owners(key, replicas) for key in keys}

    def shares(self, keys: Iterable[str]) -> dict[str, int]:
        """How many of `keys` each member owns (one replica), for balance reports."""
        counts = dict.fromkeys(self.members, 0)
        for key in keys:
            for member in self.owners(key):
                counts[member] += 1
        return counts
