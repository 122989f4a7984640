"""Scenario tests run real loadpilot processes; these fixtures start them and make sure they stop."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import Launcher, launcher


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Launcher]:
    """Start `loadpilot <args>` as a child process logging to tmp_path; every child is stopped at teardown."""
    with launcher(tmp_path) as start:
        yield start
