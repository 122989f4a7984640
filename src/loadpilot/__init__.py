"""loadpilot keeps a fleet of servers evenly loaded and right-sized."""

from __future__ import annotations

# Kept in step with pyproject.toml by tests/test_version.py. A constant, not importlib.metadata: reading the
# installed metadata costs ~50 ms at every start, and pool workers (logsift) are restarted against the clock.
__version__ = "0.1.0"
