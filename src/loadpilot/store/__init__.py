"""The time-series store: open one by URL (sqlite:///file.db or postgresql://...)."""

from __future__ import annotations

from loadpilot import plugins
from loadpilot.store.base import Store, WriteResult, group_stats, window_stats

__all__ = ["Store", "WriteResult", "group_stats", "open_store", "window_stats"]


def open_store(url: str, sqlite_synchronous: str = "full") -> Store:
    """Open the store a URL names; the backend is found by the URL's scheme through entry points."""
    scheme = url.split(":", 1)[0].split("+", 1)[0]
    if scheme == "postgres":
        scheme = "postgresql"
    backend = plugins.load(plugins.STORES, scheme)
    if scheme == "sqlite":
        store: Store = backend(url, synchronous=sqlite_synchronous)
    else:
        store = backend(url)
    return store
