"""`loadpilot status [--json]`: the coordination view of the cluster.

Members of every role with their last heartbeat, the leader and its epoch, and the shared resources each agent
polls (counts; the lists too with --json). Exit 0 when the backend answered, 1 when it could not be reached.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated

import typer

from loadpilot.errors import LoadpilotError

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="loadpilot.toml")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print one JSON document on stdout (with resource lists)")]
EXIT_UNREACHABLE = 1


def status(config_path: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Show the members and their last heartbeat, the leader and its epoch, and who polls which shared resources."""
    from loadpilot.cli import _load
    from loadpilot.coord import CoordSettings
    from loadpilot.coord.status import read_status

    config = _load(config_path)
    settings = CoordSettings(**config.coordination_options())
    try:
        cluster = read_status(settings)
    except LoadpilotError as exc:
        if as_json:
            typer.echo(json.dumps({"ok": False, "error": str(exc)}))
        else:
            typer.echo(str(exc), err=True)
        raise typer.Exit(EXIT_UNREACHABLE) from None
    data = cluster.to_json()
    data["namespace"] = settings.namespace
    if as_json:
        typer.echo(json.dumps(data))
        return
    _print(data)


def _age(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.1f} s ago"


def _print(data: dict[str, object]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"coordination: {data['backend']} (namespace {data['namespace']})")
    leader = data["leader"]
    if isinstance(leader, dict):
        since = dt.datetime.fromtimestamp(float(leader["since"])).strftime("%H:%M:%S")
        left = float(leader["lease_left_s"])
        console.print(f"leader: {leader['member']}, epoch {leader['epoch']} (since {since}, lease {left:.1f} s left)")
    else:
        console.print(f"leader: none (last epoch {data['last_epoch']})")
    table = Table("role", "member", "kind", "alive", "heartbeat", "weight", "owned", "polling", "view")
    members = data["members"]
    assert isinstance(members, list)
    for m in members:
        caps = m["capabilities"]
        table.add_row(
            m["role"],
            m["id"],
            m["kind"],
            "yes" if m["alive"] else "no",
            _age(m["last_heartbeat_age_s"]),
            str(caps.get("weight", "")),
            str(m["owned"]) if m["role"] == "agents" else "",
            str(m["polling"]) if m["role"] == "agents" else "",
            (m["view"][:8] + (" draining" if m["draining"] else "")) if m["role"] == "agents" else "",
        )
    if members:
        console.print(table)
    else:
        console.print("no members")
