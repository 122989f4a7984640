"""`loadpilot simulate vms`: tables, JSON, the HTML report, and usage errors naming the option."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from click.testing import Result
from typer.testing import CliRunner

from loadpilot.cli import app

runner = CliRunner()


def planetlab_folder(tmp_path: Path, vms: int = 40, points: int = 36) -> Path:
    rng = np.random.default_rng(2)
    folder = tmp_path / "day"
    folder.mkdir()
    for i in range(vms):
        values = np.clip(rng.normal(30, 20, points), 0, 99).astype(int)
        (folder / f"vm {i:03d}").write_text("\n".join(str(v) for v in values) + "\n")
    return folder


def simulate(folder: Path, *args: str) -> Result:
    return runner.invoke(app, ["simulate", "vms", "--trace", str(folder), *args])


def test_json_has_the_figures_of_each_strategy(tmp_path: Path) -> None:
    folder = planetlab_folder(tmp_path)
    result = simulate(
        folder, "--hosts", "30", "--strategy", "lr-mmt-1.2", "--compare", "ours", "--model", "cloudsim", "--json"
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    for key in ("energy_kwh", "migrations", "slatah", "pdm", "slav", "esv", "host_shutdowns", "over_threshold_s"):
        assert key in doc
    assert [r["strategy"] for r in doc["results"]] == ["lr-mmt-1.2", "ours"]
    assert doc["model"] == "cloudsim" and doc["strategy"] == "lr-mmt-1.2"


def test_table_and_report(tmp_path: Path) -> None:
    folder = planetlab_folder(tmp_path)
    report = tmp_path / "r.html"
    result = simulate(
        folder, "--hosts", "30", "--strategy", "workload-balance", "--compare", "ours-balance", "--report", str(report)
    )
    assert result.exit_code == 0, result.output
    assert "ours-balance" in result.stdout
    page = report.read_text()
    assert page.startswith("<!doctype html>") and "<svg" in page and "<script" not in page


def test_bad_arguments_exit_2_naming_the_option(tmp_path: Path) -> None:
    folder = planetlab_folder(tmp_path, vms=4, points=4)
    cases = [
        (["--strategy", "nope"], "--strategy"),
        (["--compare", "lr-xx-1"], "--compare"),
        (["--model", "ns3"], "--model"),
        (["--hosts", "0"], "--hosts"),
        (["--threshold", "2"], "--threshold"),
        (["--max-migrations", "0"], "--max-migrations"),
        (["--report", str(tmp_path / "missing" / "r.html")], "--report"),
        (["--hosts", "1", "--host-ram-mb", "1000"], "--hosts"),
    ]
    for extra, option in cases:
        result = simulate(folder, *extra)
        assert result.exit_code == 2, (extra, result.output)
        assert option in result.output
    missing = simulate(tmp_path / "none")
    assert missing.exit_code == 2 and "--trace" in missing.output
