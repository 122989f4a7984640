"""Every store backend runs the same contract suite: SQLite always, PostgreSQL on a real server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from loadpilot.store import Store, open_store


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A fresh, empty store of each backend."""
    if request.param == "sqlite":
        s = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    else:
        s = open_store(request.getfixturevalue("postgres_db"))
    yield s
    s.close()
