"""Plug-ins found by name through entry points and loaded only when used."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from loadpilot.errors import PermanentError

COLLECTORS = "loadpilot.collectors"
STORES = "loadpilot.stores"


def names(group: str) -> list[str]:
    """The plug-in names registered in an entry-point group."""
    return sorted({ep.name for ep in entry_points(group=group)})


def load(group: str, name: str) -> Any:
    """Import and return the plug-in `name` of `group`; an unknown name lists the known ones."""
    for ep in entry_points(group=group):
        if ep.name == name:
            return ep.load()
    known = ", ".join(names(group)) or "none installed"
    raise PermanentError(f"unknown {group.rsplit('.', 1)[-1][:-1]} {name!r} (known: {known})")
