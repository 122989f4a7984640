"""Reading per-VM traces: PlanetLab folders (names with spaces, byte order) and wide CSV files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from loadpilot.sim.planetlab import TraceError, load_csv, load_planetlab, load_traces


def test_planetlab_folder_in_name_order_with_spaces(tmp_path: Path) -> None:
    (tmp_path / "b host").write_text("10\n20\n30\n")
    (tmp_path / "a_host").write_text("0\n50\n99\n")
    (tmp_path / "B").write_text("1\n2\n3\n")
    traces = load_planetlab(tmp_path)
    assert traces.names == ["B", "a_host", "b host"]
    assert traces.utilisation[2].tolist() == [0.1, 0.2, 0.3]
    assert traces.interval_s == 300


def test_csv_of_time_and_vms_in_percent_or_fractions(tmp_path: Path) -> None:
    path = tmp_path / "u.csv"
    path.write_text("time,web 1,db\n0,10,50\n60,20,60\n120,30,70\n")
    traces = load_csv(path)
    assert traces.names == ["web 1", "db"]
    assert np.allclose(traces.utilisation[0], [0.1, 0.2, 0.3])
    assert traces.interval_s == 60
    assert load_traces(path).vms == 2


def test_unreadable_traces_say_what_is_wrong(tmp_path: Path) -> None:
    (tmp_path / "vm").write_text("ten\n")
    with pytest.raises(TraceError, match="integer percent"):
        load_planetlab(tmp_path)
    with pytest.raises(TraceError, match="no such"):
        load_traces(tmp_path / "missing")
