"""`loadpilot simulate autoscale`: the JSON document's shape, the table, and exit 2 naming a bad option."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from loadpilot.cli import app

runner = CliRunner()


@pytest.fixture
def trace(tmp_path: Path) -> Path:
    """Twenty minutes per second: flat, a rise, flat."""
    path = tmp_path / "small.csv"
    counts = [300] * 300 + [300 + 2 * i for i in range(600)] + [1500] * 300
    path.write_text("period,count\n" + "".join(f"{1000 + i},{c}\n" for i, c in enumerate(counts)))
    return path


def test_json_shape(trace: Path) -> None:
    result = runner.invoke(
        app, ["simulate", "autoscale", "--trace", str(trace), "--policy", "predictive", "--compare", "hpa", "--json"]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert set(doc) == {"trace", "pool", "results", "target_check"}
    assert doc["trace"]["period_s"] == 1.0 and doc["trace"]["simulated_s"] == 1200
    assert [r["policy"] for r in doc["results"]] == ["predictive", "hpa"]
    for row in doc["results"]:
        for key in ("slo_violation_s", "worker_s", "actions", "theta_u_pct", "theta_o_pct", "tau_u_pct"):
            assert isinstance(row[key], int | float)
        assert {"tau_o_pct", "jitter_per_h", "dropped_pct"} <= set(row)
    assert doc["pool"]["capacity"] == 100.0 and doc["pool"]["startup_s"] == 30.0
    assert doc["pool"]["burst_memory_s"] == 1800.0
    assert doc["target_check"]["best"] == "predictive"


def test_table_slice_speedup_and_chart(trace: Path, tmp_path: Path) -> None:
    chart = tmp_path / "chart.html"
    args = ["simulate", "autoscale", "--trace", str(trace), "--policy", "target", "--compare", "static"]
    result = runner.invoke(
        app, [*args, "--start", "1300", "--duration", "600", "--speedup", "2", "--chart", str(chart)]
    )
    assert result.exit_code == 0, result.output
    assert "target" in result.stdout and "static" in result.stdout and "target check" in result.stdout
    assert chart.read_text().count("<svg") == 4


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--policy", "magic"], "--policy: unknown policy 'magic'"),
        (["--compare", "magic"], "--compare: unknown policy 'magic'"),
        (["--speedup", "0"], "--speedup: must be > 0"),
        (["--duration", "-5"], "--duration: must be > 0"),
        (["--capacity", "0"], "--capacity: must be > 0"),
        (["--startup-s", "-1"], "--startup-s: must be >= 0"),
        (["--burst-memory-s", "-1"], "--burst-memory-s: must be >= 0"),
        (["--slo-ms", "10"], "--slo-ms: must exceed --service-ms"),
        (["--target", "1.5"], "--target: a CPU utilisation"),
        (["--start", "noon"], "--start: not a time"),
    ],
)
def test_bad_arguments_exit_2_naming_the_option(trace: Path, extra: list[str], message: str) -> None:
    result = runner.invoke(app, ["simulate", "autoscale", "--trace", str(trace), *extra])
    assert result.exit_code == 2 and message in result.output


def test_bad_trace_files_exit_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["simulate", "autoscale", "--trace", str(tmp_path / "none.csv")])
    assert result.exit_code == 2 and "--trace:" in result.output and "cannot read" in result.output
    bad = tmp_path / "bad.csv"
    bad.write_text("period,count\n0,1\n1,lots\n")
    result = runner.invoke(app, ["simulate", "autoscale", "--trace", str(bad)])
    assert result.exit_code == 2 and "bad.csv:3: count 'lots' is not a number" in result.output
