"""Burst memory: after a burst, target and predictive keep the size it needed for burst_memory_s."""

from __future__ import annotations

import pydantic
import pytest

from loadpilot.config import AutoscaleConfig
from loadpilot.decide.scaling import bursts, predictive, target
from loadpilot.decide.scaling.bursts import BurstMemory, remember
from loadpilot.decide.scaling.demand import QueueReading, demand_now
from loadpilot.model import ScaleTo
from tests.decide.views import decide, settings, view

QUIET = 0.14  # CPU of a quiet minute on one worker
MEMORY_S = 600.0


def replay(policy: str, cpus: list[float], memory_s: float = MEMORY_S) -> list[tuple[int, str]]:
    """(size, reason) of each evaluation of one worker's pool at these CPU readings, one every 10 s."""
    check = settings(policy=policy, burst_memory_s=memory_s)
    policy_fn = target.recommend if policy == "target" else predictive.recommend
    state: object | None = None
    answers = []
    for i, cpu in enumerate(cpus):
        rec, state = policy_fn(view(desired=1, cpu=cpu, observed_at=10.0 * i), check, state, 10.0 * i)
        assert rec is not None
        answers.append((rec.size, rec.reason))
    return answers


@pytest.mark.parametrize("policy", ["target", "predictive"])
def test_a_burst_keeps_its_size_for_the_memory_then_lets_go(policy: str) -> None:
    # Quiet, one saturated reading (a burst: 1 core of demand where 0.14 was asked for), then quiet for long.
    cpus = [QUIET] * 5 + [1.0] + [QUIET] * 80
    answers = replay(policy, cpus)
    burst_at = 5
    assert answers[burst_at][0] == 2  # 1.0 / 0.7 -> 2, target tracking's own answer
    held = [size for size, _ in answers[burst_at + 1 : burst_at + 60]]  # within 600 s of the burst
    assert held == [2] * len(held)
    assert "burst memory" in answers[burst_at + 1][1]
    after = [size for size, _ in answers[burst_at + 60 :]]  # 600 s after it and later
    assert after == [1] * len(after)


@pytest.mark.parametrize("policy", ["target", "predictive"])
def test_without_memory_the_pool_lets_go_at_once(policy: str) -> None:
    answers = replay(policy, [QUIET] * 5 + [1.0] + [QUIET] * 5, memory_s=0.0)
    assert [size for size, _ in answers[6:]] == [1] * 5
    assert not any("burst" in reason for _, reason in answers)


def test_a_returning_burst_starts_the_memory_again() -> None:
    # Bursts every 500 s (50 readings): each return is seen as a burst, so the size never drops between them,
    # and 600 s after the last one it does.
    cpus = ([1.0] + [QUIET] * 49) * 3 + [QUIET] * 60
    sizes = [size for size, _ in replay("target", [QUIET] * 3 + cpus)]
    assert min(sizes[3:153]) == 2
    assert sizes[-1] == 1


def test_a_rise_within_the_headroom_is_no_burst() -> None:
    # 3 workers were asked for. A demand of 2.8 cores needs 4 at 0.7: within 1.4 x 3 = 4.2, the target's headroom
    # takes it. 3.6 cores need 5.1: beyond it, a burst, remembered with the 6 workers it needs.
    check = settings(burst_memory_s=MEMORY_S)
    memory = BurstMemory(asked=3)
    calm = remember(memory, 2.8, 4, check, 10.0)
    assert calm.bursts == () and calm.asked == 4
    burst = remember(memory, 3.6, 6, check, 10.0)
    assert burst.bursts == ((10.0, 6),) and burst.asked == 6
    forgotten = remember(burst, 0.7, 1, check, 10.0 + MEMORY_S)
    assert forgotten.bursts == ()


def test_the_first_evaluation_sees_no_burst() -> None:
    # Nothing was asked for before: a controller that starts under load sizes for it, and remembers nothing.
    memory = remember(BurstMemory(), 10.0, 15, settings(burst_memory_s=MEMORY_S), 0.0)
    assert memory.bursts == () and memory.asked == 15


def test_a_burst_is_sized_with_its_queue_counted_in() -> None:
    # One worker saturated (CPU 1.0) while 100 more requests/s pile up than it serves: 2 cores of demand.
    check = settings(burst_memory_s=MEMORY_S)
    before = QueueReading(in_flight=0.0, observed_at=0.0)
    saturated = view(desired=1, cpu=1.0, rps=100.0, in_flight=500.0, observed_at=5.0)
    demand = demand_now(saturated, check, before)
    assert demand == pytest.approx(2.0)
    memory = remember(BurstMemory(asked=1), demand, 2, check, 5.0)
    assert memory.bursts == ((5.0, 3),)  # 2.0 / 0.7 -> 3, more than target tracking's 2 on a saturated CPU


@pytest.mark.parametrize("policy", ["target", "predictive"])
def test_a_reading_seen_twice_changes_nothing(policy: str) -> None:
    # The controller may evaluate more often than readings come: a reading seen again is not news, even once
    # the memory has run out meanwhile; the state comes back as it was.
    check = settings(policy=policy, burst_memory_s=MEMORY_S)
    policy_fn = target.recommend if policy == "target" else predictive.recommend
    _, state = policy_fn(view(desired=1, cpu=QUIET, observed_at=0.0), check, None, 0.0)
    burst = view(desired=1, cpu=1.0, observed_at=10.0)
    _, state = policy_fn(burst, check, state, 10.0)
    _, again = policy_fn(burst, check, state, 12.0)
    assert again is state
    _, late = policy_fn(burst, check, state, 10.0 + MEMORY_S)
    assert late is state


def test_a_burst_past_the_memory_holds_nothing() -> None:
    check = settings(burst_memory_s=MEMORY_S)
    rec, _ = target.recommend(view(desired=1, cpu=QUIET), check, None, 0.0)
    assert rec is not None
    memory = BurstMemory(((100.0, 3),), asked=1)
    assert bursts.hold(rec, memory, check, 100.0 + MEMORY_S - 1).size == 3
    assert bursts.hold(rec, memory, check, 100.0 + MEMORY_S) is rec


def test_through_the_framework_a_burst_holds_the_pool() -> None:
    config = settings(burst_memory_s=MEMORY_S, interval_s=10.0)
    state = None
    sizes = []
    for i, cpu in enumerate([QUIET] * 3 + [1.0] + [QUIET] * 10):
        pool = view(desired=sizes[-1] if sizes else 1, cpu=cpu, observed_at=10.0 * i)
        decision, state = decide(pool, config, state, 10.0 * i)
        scale = [a.size for a in decision.actions if isinstance(a, ScaleTo)]
        sizes.append(scale[0] if scale else pool.desired)
    assert sizes[3] == 2 and sizes[-1] == 2
    # 600 s after the burst it is forgotten, and the quiet pool scales in.
    pool = view(desired=2, cpu=QUIET / 2, observed_at=30.0 + MEMORY_S)
    decision, _ = decide(pool, config, state, 30.0 + MEMORY_S)
    assert [a.size for a in decision.actions if isinstance(a, ScaleTo)] == [1]


def test_only_target_and_predictive_take_burst_memory() -> None:
    AutoscaleConfig(policy="predictive", burst_memory_s=60.0)
    with pytest.raises(pydantic.ValidationError, match="burst_memory_s"):
        AutoscaleConfig(policy="hpa", burst_memory_s=60.0)


def test_hold_names_the_burst() -> None:
    check = settings(burst_memory_s=MEMORY_S)
    rec, _ = target.recommend(view(desired=1, cpu=QUIET), check, None, 100.0)
    assert rec is not None
    held = bursts.hold(rec, BurstMemory(((40.0, 3),), asked=1), check, 100.0)
    assert held.size == 3 and "a burst 60 s ago needed 3" in held.reason and held.inputs["burst_size"] == 3
