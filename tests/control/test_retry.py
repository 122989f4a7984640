"""Backoff after a temporary actuator error: doubling, capped, reset by a success."""

from __future__ import annotations

from loadpilot.control.retry import Backoff


def test_doubles_up_to_the_ceiling_and_resets() -> None:
    backoff = Backoff(1.0, 5.0)
    assert [backoff.next_delay() for _ in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    backoff.reset()
    assert backoff.next_delay() == 1.0


def test_a_ceiling_below_the_start_is_the_start() -> None:
    assert Backoff(3.0, 1.0).next_delay() == 3.0
