"""`loadpilot server`'s own options: a bad --host or --port names the option and exits 2, before anything starts."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from loadpilot.cli import app

runner = CliRunner()


def test_a_bad_port_names_the_option_and_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "loadpilot.toml"
    config.write_text(f'state_dir = "{tmp_path}"\n')
    result = runner.invoke(app, ["server", "--config", str(config), "--port", "70000"])
    assert result.exit_code == 2
    assert result.output.startswith("--port: "), result.output
    assert not (tmp_path / "loadpilot.db").exists()  # nothing was started or created
