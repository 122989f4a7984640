"""Loading `period,count` traces: the real WC98 files, gaps, speedup, and malformed input named by line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from loadpilot.sim.traces import Trace, TraceError, load_trace, parse_time
from tests.sim.traces_data import PER_MINUTE, PER_SECOND, need


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "t.csv"
    path.write_text(text)
    return path


def test_the_per_second_day() -> None:
    trace = load_trace(need(PER_SECOND))
    assert trace.period_s == 1.0 and len(trace.counts) == 86_400 and trace.filled == 0
    assert trace.start == parse_time("1998-06-25 22:00:01")
    assert trace.counts[:3].tolist() == [116.0, 281.0, 307.0]


def test_the_per_minute_trace_and_its_gaps() -> None:
    trace = load_trace(need(PER_MINUTE))
    assert trace.period_s == 60.0
    assert trace.filled == 10  # 7 gaps of 1 to 3 missing minutes
    assert len(trace.counts) == 125_300 + 10
    assert trace.rates[0] == pytest.approx(2 / 60)


def test_gaps_are_interpolated_and_counted(tmp_path: Path) -> None:
    trace = load_trace(write(tmp_path, "period,count\n0,10\n60,20\n240,50\n300,0\n"))
    assert trace.period_s == 60.0 and trace.filled == 2
    assert trace.counts.tolist() == [10.0, 20.0, 30.0, 40.0, 50.0, 0.0]
    assert trace.slice(120.0, 60.0).filled == 1 and trace.slice(240.0).filled == 0


def test_slice_and_replay_speedup() -> None:
    trace = Trace("x", 1000.0, 60.0, np.array([60.0, 120.0, 180.0]))  # 1, 2, 3 requests/s
    assert trace.replay().tolist() == [1.0] * 60 + [2.0] * 60 + [3.0] * 60
    assert trace.replay(speedup=60).tolist() == [1.0, 2.0, 3.0]  # each minute in a second, at the same rate
    assert trace.replay(speedup=30).tolist() == [1.0, 1.0, 2.0, 2.0, 3.0, 3.0]
    assert trace.replay(speedup=90).tolist() == pytest.approx([4 / 3, 8 / 3])  # the mean of 90 s of trace
    part = trace.slice(1060.0, 60.0)
    assert part.start == 1060.0 and part.counts.tolist() == [120.0] and part.filled == 0
    with pytest.raises(TraceError, match="nothing in the trace"):
        trace.slice(99_999.0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("time,count\n0,1\n", r"t\.csv:1: the header must be 'period,count'"),
        ("period,count\n0,1\n1,2,3\n", r"t\.csv:3: expected 'period,count', got '1,2,3'"),
        ("period,count\n0,1\n\n1998-13-01 00:00:00,2\n", r"t\.csv:4: period '1998-13-01 00:00:00' is not a time"),
        ("period,count\n0,1\n1,many\n", r"t\.csv:3: count 'many' is not a number"),
        ("period,count\n0,1\n1,-4\n", r"t\.csv:3: count must be a number >= 0"),
        ("period,count\n0,1\n5,1\n3,1\n", r"t\.csv:4: periods must increase"),
        ("period,count\n0,1\n60,1\n120,1\n180,1\n190,1\n", r"t\.csv:6: period is not on the trace's 60 s grid"),
        ("period,count\n", r"t\.csv: no data rows"),
    ],
)
def test_malformed_input_names_the_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(TraceError, match=message):
        load_trace(write(tmp_path, text))


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="cannot read the trace"):
        load_trace(tmp_path / "missing.csv")
    binary = tmp_path / "b.csv"
    binary.write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(TraceError, match="not a text file"):
        load_trace(binary)


def test_times_are_utc_or_unix_seconds() -> None:
    assert parse_time("1970-01-01 00:01:00") == 60.0
    assert parse_time("1970-01-02") == 86_400.0
    assert parse_time("12.5") == 12.5
    with pytest.raises(ValueError):
        parse_time("noon")
