"""The ring: balance, movement on joins and leaves, weights, replicas, and the same answer everywhere."""

from __future__ import annotations

import pytest

from loadpilot.coord.ring import Ring, view_id

KEYS = [f"res/{i:05d}" for i in range(10_000)]


def members(n: int) -> dict[str, float]:
    return {f"agent-{i}": 1.0 for i in range(n)}


@pytest.mark.parametrize("n", [2, 3, 5, 10])
def test_the_largest_share_is_within_ten_percent_of_the_mean(n: int) -> None:
    shares = Ring(members(n)).shares(KEYS)
    assert max(shares.values()) <= 1.10 * len(KEYS) / n
    assert sum(shares.values()) == len(KEYS)


@pytest.mark.parametrize("n", [3, 10])
def test_a_leave_moves_only_the_leavers_resources_and_a_join_only_the_newcomers(n: int) -> None:
    before = Ring(members(n)).assign(KEYS)
    after_leave = Ring({m: w for m, w in members(n).items() if m != "agent-0"}).assign(KEYS)
    moved = [k for k in KEYS if before[k] != after_leave[k]]
    assert all(before[k] == ("agent-0",) for k in moved)
    assert abs(len(moved) / len(KEYS) - 1 / n) < 0.02
    after_join = Ring({**members(n), "newcomer": 1.0}).assign(KEYS)
    moved = [k for k in KEYS if before[k] != after_join[k]]
    assert all(after_join[k] == ("newcomer",) for k in moved)
    assert abs(len(moved) / len(KEYS) - 1 / (n + 1)) < 0.02


def test_weights_give_proportional_shares() -> None:
    shares = Ring({"a": 1.0, "b": 2.0, "c": 3.0}).shares(KEYS)
    for member, weight in (("a", 1), ("b", 2), ("c", 3)):
        assert abs(shares[member] / len(KEYS) - weight / 6) < 0.02


def test_replicas_are_distinct_and_the_first_is_the_single_owner() -> None:
    ring = Ring(members(5))
    for key in KEYS[:500]:
        two = ring.owners(key, 2)
        assert len(set(two)) == 2 and two[0] == ring.owners(key)[0]
    assert Ring({"only": 1.0}).owners("x", 2) == ("only",)
    assert Ring({}).owners("x") == ()


def test_every_member_computes_the_same_owners_and_view() -> None:
    one = Ring({"b": 1.0, "a": 2.0})
    other = Ring({"a": 2.0, "b": 1.0})
    assert one.assign(KEYS[:200], 2) == other.assign(KEYS[:200], 2)
    assert view_id({"b": 1.0, "a": 2.0}, 1) == view_id({"a": 2, "b": 1}, 1) != view_id({"a": 2, "b": 1}, 2)
    with pytest.raises(ValueError, match="weight"):
        Ring({"a": 0.0})
