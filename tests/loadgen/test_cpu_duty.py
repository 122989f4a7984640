"""The duty controller against synthetic machines: it settles, backs off, fills in, and does not wind up."""

from __future__ import annotations

import random

import pytest

from loadpilot.loadgen.duty import DutyController

DT = 0.2


class Machine:
    """A plant: workers deliver `gain` x what the duty asks, part of it one reading late (`lag`); other work on
    top; the machine cannot exceed 100 %; readings carry /proc/stat-like tick noise when `noise` is set."""

    def __init__(self, capacity: float, gain: float = 1.0, lag: float = 0.3, noise: float = 0.0, seed: int = 1):
        self.capacity, self.gain, self.lag, self.noise = capacity, gain, lag, noise
        self.rng = random.Random(seed)
        self.previous_duty = 0.0

    def read(self, duty: float, other: float) -> tuple[float, float]:
        """Total and own share over the reading that follows setting `duty`."""
        asked = (1 - self.lag) * duty + self.lag * self.previous_duty
        self.previous_duty = duty
        own = min(self.gain * asked * self.capacity, 1.0 - other)
        total = own + other
        if self.noise:
            ticks = 40  # 0.2 s x 2 cores x 100 Hz
            total = min(1.0, max(0.0, round((total + self.rng.gauss(0, self.noise)) * ticks) / ticks))
        return total, own


def drive(controller: DutyController, machine: Machine, others: list[float]) -> list[float]:
    """Run the loop over a sequence of other loads; the totals read."""
    duty, totals = 0.0, []
    for other in others:
        total, own = machine.read(duty, other)
        totals.append(total)
        duty = controller.update(total, own, DT)
    return totals


def first_within(totals: list[float], target: float, tolerance: float) -> int:
    """Index from which every total stays within tolerance of target."""
    for i in range(len(totals)):
        if all(abs(t - target) <= tolerance for t in totals[i:]):
            return i
    return len(totals)


@pytest.mark.parametrize("gain", [1.0, 0.9, 1.1])
def test_settles_within_a_few_readings(gain: float) -> None:
    controller = DutyController(0.5, capacity=1.0)
    totals = drive(controller, Machine(1.0, gain=gain), [0.1] * 50)
    # Feed-forward alone puts it close in two readings; the integral removes what the workers' gain leaves.
    assert first_within(totals, 0.5, 0.05) <= 4
    assert first_within(totals, 0.5, 0.01) <= 15
    assert abs(totals[-1] - 0.5) < 0.002


def test_removes_a_large_steady_mismatch() -> None:
    controller = DutyController(0.5, capacity=1.0)
    totals = drive(controller, Machine(1.0, gain=0.6), [0.1] * 50)  # workers deliver 60 % of what they are asked
    assert first_within(totals, 0.5, 0.01) <= 25


def test_backs_off_at_once_when_other_work_appears_and_fills_in_when_it_stops() -> None:
    controller = DutyController(0.5, capacity=1.0)
    others = [0.05] * 30 + [0.30] * 30 + [0.05] * 30
    totals = drive(controller, Machine(1.0), others)
    own_before = controller.command
    assert first_within(totals[:30], 0.5, 0.01) < 10
    assert first_within(totals[30:60], 0.5, 0.03) <= 4  # under a second at 5 Hz
    assert first_within(totals[60:], 0.5, 0.03) <= 4
    assert own_before == pytest.approx(0.45, abs=0.01)


def test_holds_zero_while_others_exceed_the_target_and_recovers_without_windup() -> None:
    controller = DutyController(0.4, capacity=1.0)
    drive(controller, Machine(1.0), [0.7] * 300)  # a minute of others alone above the target
    assert controller.duty == 0.0
    assert controller.integral == pytest.approx(0.0, abs=0.05)  # not wound down during the saturation
    totals = drive(controller, Machine(1.0), [0.1] * 30)
    assert first_within(totals, 0.4, 0.03) <= 3


def test_holds_full_duty_while_the_target_is_out_of_reach_and_recovers_without_windup() -> None:
    controller = DutyController(0.9, capacity=0.5)  # one worker of two cores: at most 50 % on its own
    totals = drive(controller, Machine(0.5), [0.0] * 300)
    assert controller.duty == 1.0 and totals[-1] == pytest.approx(0.5)
    assert controller.integral == pytest.approx(0.0, abs=0.05)
    totals = drive(controller, Machine(0.5), [0.6] * 30)  # now others bring the target within reach
    assert first_within(totals, 0.9, 0.03) <= 3
    assert max(totals[3:]) <= 0.93  # no overshoot from a wound-up integral


def test_the_integral_stays_clamped() -> None:
    controller = DutyController(0.5, capacity=1.0)
    for _ in range(500):  # a plant that never responds: nothing the loop does changes the reading
        controller.update(0.1, 0.0, DT)
    assert abs(controller.integral) <= controller.gains.integral_limit


def test_holds_a_5_point_band_through_tick_noise() -> None:
    controller = DutyController(0.5, capacity=1.0)
    others = [0.05] * 150 + [0.30] * 150
    totals = drive(controller, Machine(1.0, gain=0.9, noise=0.01), others)
    settled = totals[15:]
    in_band = sum(abs(t - 0.5) <= 0.05 for t in settled) / len(settled)
    assert in_band >= 0.95
    assert sum(abs(t - 0.5) for t in settled) / len(settled) <= 0.02


def test_rejects_impossible_settings() -> None:
    with pytest.raises(ValueError, match="target"):
        DutyController(1.5, capacity=1.0)
    with pytest.raises(ValueError, match="capacity"):
        DutyController(0.5, capacity=0.0)
