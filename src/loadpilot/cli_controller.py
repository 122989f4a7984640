"""`loadpilot controller`: run for leadership among the controllers and, while leading, scale the pools.

Leadership goes through the `[coordination]` backend whether or not `coordination.enabled` is set (that switch
is about agents sharing work): by default a file:// directory in the state dir, so controllers on one machine
elect one leader with nothing installed. Every pool with `[pools.autoscale] enabled = true` is reconciled every
`control.tick_s`; each action and each change of mind is an event in the store (`/api/v1/events`). SIGTERM or
SIGINT resigns the leadership at once (so another controller can take over without waiting for the lease) and
exits 0. Exit 2: a bad config or option.
"""

from __future__ import annotations

import logging
import signal
from pathlib import Path
from typing import Annotated

import typer

from loadpilot.errors import LoadpilotError

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="loadpilot.toml (default: ./loadpilot.toml when present, else defaults)"),
]
MemberOpt = Annotated[
    str | None,
    typer.Option("--member", help="this controller's id among the controllers (default: controller-<host>)"),
]
EXIT_CONFIG = 2

log = logging.getLogger("loadpilot.controller")


def default_member_id(base: str) -> str:
    """A controller's id when none is given: controller-<this machine's member id>, distinct from the agent's id
    on the same machine (both keep heartbeat records in the same backend)."""
    return f"controller-{base}"


def controller(config_path: ConfigOpt = None, member: MemberOpt = None) -> None:
    """Scale the autoscaled pools while this controller is the elected leader; resign on SIGTERM/SIGINT."""
    from loadpilot.cli import _fail, _load
    from loadpilot.control.controller import Controller
    from loadpilot.control.seat import Seat
    from loadpilot.coord import CoordSettings
    from loadpilot.store import open_store
    from loadpilot.wakeup import WakeEvent

    config = _load(config_path)
    member_id = member or default_member_id(config.coordination_member_id)
    pools = [p.name for p in config.pools if p.autoscale.enabled]
    settings = CoordSettings(**config.coordination_options())
    try:
        store = open_store(config.store_url, config.store.sqlite_synchronous)
    except LoadpilotError as exc:
        _fail([str(exc)])
    stop = WakeEvent()  # set by SIGTERM and SIGINT: no lock (loadpilot.wakeup)

    def _stop(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    seat = Seat(settings, member_id, {"pools": pools})
    runner = Controller(config, store, seat, member_id)
    log.info(
        "controller %s: %s autoscaled, tick %g s, coordination %s",
        member_id,
        ", ".join(pools) or "no pool",
        config.control.tick_s,
        settings.kind,
    )
    try:
        runner.run(stop)
    except LoadpilotError as exc:
        _fail([str(exc)])
    finally:
        store.close()
