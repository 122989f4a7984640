"""What a controller tells the machine it runs on: whether it leads, its epoch, each pool's last view, and the
cluster it balances.

Every controller rewrites `<state_dir>/controllers/<member>.json` each tick (atomically), so `loadpilot up`'s
live view can show the leader and a flagged pool without asking the coordination backend every second.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from loadpilot.act.pool.state import write_json_atomic

STALE_AFTER_S = 15.0  # a status this old belongs to a controller that is gone


@dataclass
class PoolControlStatus:
    """One autoscaled pool as the controller last handled it."""

    policy: str
    metric: str
    target: float
    view: dict[str, Any] = field(default_factory=dict)  # the last PoolView's fields (empty: not observed)
    flagged: str = ""  # why the controller gave up on the pool until it restarts (empty: it did not)
    retry_at: float | None = None  # when a failed action is tried again
    last_reason: str = ""


@dataclass
class ClusterControlStatus:
    """The cluster as the controller last observed and balanced it ([cluster], control/migrate.py)."""

    name: str
    strategy: str
    observed_at: float | None = None  # the last view's time (None: not observed yet)
    hosts: int = 0
    powered: int = 0  # hosts switched on
    vms: int = 0
    mean_utilisation: float | None = None  # CPU of the powered hosts, 0..1
    hottest: str = ""
    hottest_utilisation: float | None = None
    in_flight: int = 0  # migrations running at the last tick
    started: int = 0  # migrations started by this controller since it began
    flagged: str = ""  # why the cluster is not balanced until the controller restarts (empty: it is)
    last_reason: str = ""


@dataclass
class ControllerStatus:
    """One controller process."""

    member: str
    pid: int
    leading: bool
    epoch: int
    tick_s: float
    updated_at: float
    stopped: bool = False
    pools: dict[str, PoolControlStatus] = field(default_factory=dict)
    cluster: ClusterControlStatus | None = None

    @property
    def live(self) -> bool:
        """True while the controller runs and keeps its status fresh."""
        return not self.stopped and time.time() - self.updated_at < STALE_AFTER_S


def status_dir(state_path: Path) -> Path:
    """Where the controllers of a state dir publish their status."""
    return state_path / "controllers"


def write_status(state_path: Path, status: ControllerStatus) -> None:
    """Publish a controller's status."""
    write_json_atomic(status_dir(state_path) / f"{status.member}.json", asdict(status))


def read_statuses(state_path: Path) -> list[ControllerStatus]:
    """Every controller status under a state dir (unreadable files skipped), the leaders first."""
    out = []
    for path in sorted(status_dir(state_path).glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            pools = {name: PoolControlStatus(**p) for name, p in data.pop("pools", {}).items()}
            cluster = data.pop("cluster", None)
            cluster = None if cluster is None else ClusterControlStatus(**cluster)
            out.append(ControllerStatus(**data, pools=pools, cluster=cluster))
        except (OSError, ValueError, TypeError):
            continue
    return sorted(out, key=lambda s: (not (s.leading and s.live), -s.updated_at))
