"""Several checks per pool: the safest recommendation wins (out > none > in)."""

from __future__ import annotations

from loadpilot.decide.scaling.arbitration import arbitrate
from loadpilot.decide.scaling.recommendation import Recommendation


def rec(size: int, policy: str = "p") -> Recommendation:
    return Recommendation(size, f"{policy} asks {size}", policy)


def test_the_largest_scale_out_wins() -> None:
    chosen = arbitrate(5, [rec(3, "a"), rec(7, "b"), rec(5, "c"), rec(9, "d")])
    assert chosen is not None and chosen.size == 9 and chosen.policy == "d"
    assert "safest of 4" in chosen.reason and "a -> 3" in chosen.reason


def test_keeping_beats_scaling_in() -> None:
    chosen = arbitrate(5, [rec(3, "a"), rec(5, "b"), rec(4, "c")])
    assert chosen is not None and chosen.size == 5 and chosen.policy == "b"


def test_when_all_scale_in_the_smallest_step_wins() -> None:
    chosen = arbitrate(5, [rec(2), rec(4), rec(3)])
    assert chosen is not None and chosen.size == 4


def test_one_or_none() -> None:
    only = rec(2)
    assert arbitrate(5, [only]) is only
    assert arbitrate(5, []) is None
