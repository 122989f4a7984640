"""The version the package reports is the one pyproject.toml declares."""

from __future__ import annotations

import tomllib
from pathlib import Path

import loadpilot


def test_version_matches_pyproject() -> None:
    pyproject = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())
    assert loadpilot.__version__ == pyproject["project"]["version"]
