"""Where the shared WC98 traces are, and a skip with a clear message when they are not there."""

from __future__ import annotations

from pathlib import Path

import pytest

TRACES = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "traces"
PER_SECOND = TRACES / "wc98_per_second_day1.csv"
PER_MINUTE = TRACES / "wc98_per_minute.csv"


def need(path: Path) -> Path:
    """The trace file, or skip the test saying which file is missing."""
    if not path.exists():
        pytest.skip(f"{path} is absent: the shared WC98 traces are needed for this test (../shared/data/traces)")
    return path
