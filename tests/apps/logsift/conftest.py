"""Where the reference data is, for the tests that need it."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
LOGHUB = ROOT.parent / "shared" / "data" / "loghub2k"


@pytest.fixture(scope="session")
def loghub_dir() -> Path:
    """../shared/data/loghub2k beside the repository; the test fails, saying where it looked, when it is absent."""
    if not LOGHUB.is_dir():
        pytest.fail(f"reference logs not found at {LOGHUB} (see ../shared/data/README.md)")
    return LOGHUB
