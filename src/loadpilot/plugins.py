"""Plug-ins found by name through entry points and loaded only when used.

Each group's entries name a plug-in: a collector or store class, a VM actuator driver (act/vm/base.py VmDriver),
a balancer factory (act/pool/front.py BalancerFactory) or a scaling policy (decide/scaling Policy). `names` lists a
group from the installed metadata without importing anything; `load` imports one entry when it is used.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib.metadata import entry_points
from typing import Any

from loadpilot.errors import PermanentError

COLLECTORS = "loadpilot.collectors"
STORES = "loadpilot.stores"
VM_ACTUATORS = "loadpilot.vm_actuators"
BALANCERS = "loadpilot.balancers"
SCALING_POLICIES = "loadpilot.scaling_policies"

# What one entry of a group is called in messages.
_WHAT = {
    COLLECTORS: "collector",
    STORES: "store",
    VM_ACTUATORS: "VM actuator",
    BALANCERS: "balancer",
    SCALING_POLICIES: "scaling policy",
}


def names(group: str) -> list[str]:
    """The plug-in names registered in an entry-point group."""
    return sorted({ep.name for ep in entry_points(group=group)})


def load(group: str, name: str) -> Any:
    """Import and return the plug-in `name` of `group`; an unknown name lists the known ones."""
    for ep in entry_points(group=group):
        if ep.name == name:
            return ep.load()
    known = ", ".join(names(group)) or "none installed"
    what = _WHAT.get(group, group.rsplit(".", 1)[-1])
    raise PermanentError(f"unknown {what} {name!r} (known: {known})")


def load_each(group: str, wanted: Iterable[str]) -> dict[str, Any]:
    """Every plug-in of `wanted` by name, each loaded once (for callers that look them up in a loop)."""
    return {name: load(group, name) for name in sorted(set(wanted))}
