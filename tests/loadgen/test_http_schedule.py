"""Schedules: how many requests leave in each second for a constant rate, a ramp and a replayed trace."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from loadpilot.loadgen.schedule import ScheduleError, constant, ramp, trace


def per_bin(times: list[float], width: float = 1.0) -> list[int]:
    counts = Counter(int(t // width) for t in times)
    return [counts[i] for i in range(max(counts) + 1)]


def test_a_constant_rate_spaces_its_requests_evenly() -> None:
    schedule = constant(200, 3)
    times = list(schedule.send_times())
    assert len(times) == schedule.total == 600
    assert times[:3] == [0.0, 0.005, 0.01]
    assert per_bin(times) == [200, 200, 200]
    assert schedule.duration == 3
    assert schedule.rate_at(1.5) == 200


@pytest.mark.parametrize(("low", "high", "expected"), [(0, 100, [10, 30, 50, 70, 90]), (100, 0, [90, 70, 50, 30, 10])])
def test_a_ramp_changes_the_rate_linearly(low: float, high: float, expected: list[int]) -> None:
    schedule = ramp(low, high, 5)
    times = list(schedule.send_times())
    assert len(times) == schedule.total == 250
    assert times == sorted(times) and times[0] >= 0 and times[-1] < 5
    assert per_bin(times) == expected  # each second: the rate at its middle
    assert schedule.rate_at(2.5) == pytest.approx(50)


def test_a_trace_replays_each_period_evenly_and_faster_with_speedup(tmp_path: Path) -> None:
    path = tmp_path / "trace.csv"
    path.write_text("period,count\n# a comment\n10,100\n\n10,300\n10,0\n10,200\n")
    schedule = trace(path, speedup=10)
    times = list(schedule.send_times())
    assert schedule.total == len(times) == 600
    assert schedule.duration == pytest.approx(4)
    assert per_bin(times) == [100, 300, 0, 200]
    assert times[:2] == [0.0, pytest.approx(0.01)]
    assert schedule.rate_at(1.5) == pytest.approx(300)
    cut = trace(path, speedup=10, duration=1.5)  # the second period only half
    assert per_bin(list(cut.send_times())) == [100, 150]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1,10\n1,abc\n", r"trace.csv:2: count 'abc' is not a whole number"),
        ("1,10\n\nx,5\n", r"trace.csv:3: period 'x' is not a number"),
        ("0,5\n", r"trace.csv:1: period '0' must be > 0"),
        ("1,-5\n", r"trace.csv:1: count -5 must be >= 0"),
        ("1,2,3\n", r"trace.csv:1: expected `period,count`"),
        ("# nothing\n", "holds no `period,count` lines"),
        ("1,0\n", "sends no request"),
    ],
)
def test_a_bad_trace_names_the_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "trace.csv"
    path.write_text(text)
    with pytest.raises(ScheduleError, match=message):
        trace(path)


def test_bad_rates_and_durations_name_the_option(tmp_path: Path) -> None:
    with pytest.raises(ScheduleError, match="--rate/--ramp"):
        constant(-1, 5)
    with pytest.raises(ScheduleError, match="--rate/--ramp: the rate must be above 0"):
        ramp(0, 0, 5)
    with pytest.raises(ScheduleError, match="--duration"):
        constant(10, 0)
    with pytest.raises(ScheduleError, match="--speedup"):
        trace(tmp_path / "any.csv", speedup=0)
    with pytest.raises(ScheduleError, match="--trace: cannot read"):
        trace(tmp_path / "missing.csv")
    with pytest.raises(ScheduleError, match="more than"):
        constant(1e9, 3600)
