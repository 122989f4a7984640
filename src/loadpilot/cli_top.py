"""`loadpilot top`: a live view of the hosts, the pools and the last events, read from the server's HTTP API.

The data is built by a pure function (`build_top`) from the API's answers (resources, newest samples, events) and
drawn by `render_top`, so both can be tested without a terminal. Hosts are sorted by CPU, busiest first, and
only as many as fit the terminal are shown; a pool's CPU and requests/s are its workers' sums, its p95 the slowest
worker's. A resource whose newest sample is older than a couple of minutes is left out (its agent or pool is gone).

`--once` prints one frame and exits (with --json: the same data as one JSON document). Exit 1 when the server
cannot be reached or refuses the read, 2 on a bad config or option; Ctrl-C ends the live view with exit 0.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

import typer

from loadpilot.cli_events import ConfigOpt, ReadError, ServerOpt, events_table, get_json, plain
from loadpilot.model import stale_after_s

if TYPE_CHECKING:
    import httpx
    from rich.console import RenderableType
    from rich.text import Text

EXIT_UNREACHABLE = 1
SHOWN_EVENTS = 6
BAR_WIDTH = 20
HOST_METRICS = ("cpu.util", "mem.util")
POOL_METRICS = ("pool.desired", "pool.size", "pool.ready")
WORKER_METRICS = ("cpu.util", "http.requests_rate", "http.latency_p95")
KINDS = ("host", "pool", "pool_worker")
FIXED_LINES = 12  # title, the three tables' titles, headers and rules, the "more hosts" line


@dataclass(frozen=True)
class HostRow:
    """One host: CPU and memory utilisation as fractions 0..1 (None when not measured)."""

    id: str
    cpu: float | None
    mem: float | None
    cores: str = ""


@dataclass(frozen=True)
class PoolRow:
    """One pool: its sizes, its workers' CPU (cores) and requests/s summed, and the slowest worker's p95 (s)."""

    name: str
    desired: int | None
    size: int | None
    ready: int | None
    workers: int
    cpu: float | None
    rps: float | None
    p95_s: float | None


@dataclass(frozen=True)
class TopData:
    """One frame of `loadpilot top`: what the server knew at `time`."""

    time: float
    server: str
    hosts: list[HostRow] = field(default_factory=list)
    pools: list[PoolRow] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The frame as plain JSON types (what --once --json prints)."""
        return asdict(self)


def _fresh_values(latest: list[dict[str, Any]], now: float, stale_s: float) -> dict[tuple[str, str], float]:
    """(resource, metric) -> value of every newest sample younger than `stale_s`."""
    return {
        (str(s["resource_id"]), str(s["metric"])): float(s["value"])
        for s in latest
        if now - float(s.get("timestamp", 0.0)) <= stale_s
    }


def _sum(values: list[float]) -> float | None:
    return sum(values) if values else None


def _count(value: float | None) -> int | None:
    return None if value is None else round(value)


def build_top(
    resources: list[dict[str, Any]],
    latest: list[dict[str, Any]],
    events: list[dict[str, Any]],
    now: float,
    stale_s: float,
    server: str = "",
    shown_events: int = SHOWN_EVENTS,
) -> TopData:
    """A frame from the API's answers: /resources (hosts, pools, workers), /latest samples and /events; readings
    older than `stale_s` are left out."""
    values = _fresh_values(latest, now, stale_s)
    hosts = []
    for r in resources:
        if r["kind"] != "host":
            continue
        cpu, mem = values.get((r["id"], "cpu.util")), values.get((r["id"], "mem.util"))
        if cpu is not None or mem is not None:
            hosts.append(HostRow(r["id"], cpu, mem, str(r.get("labels", {}).get("cores", ""))))
    hosts.sort(key=lambda h: (-(h.cpu if h.cpu is not None else -1.0), h.id))
    pools = []
    names = sorted(
        {
            str(r.get("labels", {}).get("pool") or r["id"].removeprefix("pool/"))
            for r in resources
            if r["kind"] == "pool"
        }
    )
    for name in names:
        pid = f"pool/{name}"
        workers = [
            r["id"]
            for r in resources
            if r["kind"] == "pool_worker"
            and r.get("labels", {}).get("pool") == name
            and any((r["id"], m) in values for m in WORKER_METRICS)
        ]
        desired, size, ready = (_count(values.get((pid, m))) for m in POOL_METRICS)
        if not workers and desired is None and size is None and ready is None:
            continue

        def measured(metric: str, of: list[str] = workers) -> list[float]:
            return [values[(w, metric)] for w in of if (w, metric) in values]

        p95s = measured("http.latency_p95")
        pools.append(
            PoolRow(
                name,
                desired,
                size,
                ready,
                workers=len(workers),
                cpu=_sum(measured("cpu.util")),
                rps=_sum(measured("http.requests_rate")),
                p95_s=max(p95s) if p95s else None,
            )
        )
    recent = sorted(events, key=lambda e: int(e.get("id", 0)))[-shown_events:] if shown_events else []
    return TopData(now, server, hosts, pools, recent)


def fetch_top(client: httpx.Client, now: float, stale_s: float, server: str = "") -> TopData:
    """Ask the server for what a frame needs (a few small reads) and build it; readings older than `stale_s` are
    left out (what stopped reporting)."""
    resources = [r for kind in KINDS for r in get_json(client, "/resources", {"kind": kind})]
    metrics = dict.fromkeys((*HOST_METRICS, *POOL_METRICS, *WORKER_METRICS))
    latest = [s for metric in metrics for s in get_json(client, "/latest", {"metric": metric})]
    events = get_json(client, "/events", {"limit": SHOWN_EVENTS})
    return build_top(resources, latest, events, now, stale_s, server)


def bar(fraction: float | None, width: int = BAR_WIDTH) -> Text:
    """A utilisation bar with its percentage, green, yellow or red by level."""
    from rich.text import Text

    if fraction is None:
        return Text("-".ljust(width + 5), style="dim")
    clipped = min(1.0, max(0.0, fraction))
    filled = round(clipped * width)
    style = "green" if clipped < 0.6 else "yellow" if clipped < 0.85 else "red"
    out = Text()
    out.append("█" * filled, style=style)
    out.append("░" * (width - filled), style="dim")
    out.append(f" {fraction * 100:3.0f}%", style=style)
    return out


def _num(value: float | int | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def render_top(data: TopData, max_hosts: int | None = None, error: str | None = None) -> RenderableType:
    """The frame as rich renderables: a title, the hosts, the pools and the last events; names print literally."""
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    when = dt.datetime.fromtimestamp(data.time).strftime("%H:%M:%S")
    title = Text.assemble(
        ("loadpilot top", "bold"),
        f"  {plain(data.server)}  {when}  ",
        f"{len(data.hosts)} hosts, {len(data.pools)} pools",
    )
    parts: list[RenderableType] = [title]
    if error:
        parts.append(Text(plain(error), style="bold red"))
    hosts = data.hosts if max_hosts is None else data.hosts[: max(1, max_hosts)]
    table = Table(
        "host", "cpu", "mem", "cores", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, title_justify="left"
    )
    for h in hosts:
        table.add_row(Text(plain(h.id)), bar(h.cpu), bar(h.mem), Text(plain(h.cores)))
    parts.append(table if hosts else Text("no hosts reporting", style="dim"))
    if len(hosts) < len(data.hosts):
        parts.append(Text(f"… and {len(data.hosts) - len(hosts)} more hosts", style="dim"))
    pools = Table("pool", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for heading in ("desired", "size", "ready", "cpu (cores)", "req/s", "p95"):
        pools.add_column(heading, justify="right")
    for p in data.pools:
        pools.add_row(
            Text(plain(p.name)),
            _num(p.desired, "d"),
            _num(p.size, "d"),
            _num(p.ready, "d"),
            _num(p.cpu, ".2f"),
            _num(p.rps, ".1f"),
            "-" if p.p95_s is None else f"{p.p95_s * 1000:.0f} ms",
        )
    parts += ["", pools if data.pools else Text("no pools reporting", style="dim")]
    parts += ["", events_table(data.events, details=False) if data.events else Text("no events", style="dim")]
    return Group(*parts)


def hosts_that_fit(data: TopData, height: int) -> int:
    """How many host rows fit a terminal `height` lines tall beside the pools and events."""
    return max(1, height - FIXED_LINES - len(data.pools) - 2 * len(data.events))


def top(
    config_path: ConfigOpt = None,
    server: ServerOpt = None,
    interval: Annotated[float, typer.Option(min=0.2, help="seconds between refreshes")] = 2.0,
    once: Annotated[bool, typer.Option("--once", help="print one frame on stdout and exit")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="with --once: the frame as one JSON document")] = False,
    max_hosts: Annotated[
        int | None, typer.Option("--hosts", min=1, help="show at most N hosts (default: as many as fit)")
    ] = None,
) -> None:
    """Show hosts (CPU, memory), pools (size, ready, CPU, requests/s, p95) and the last events, refreshed live."""
    from rich.console import Console
    from rich.live import Live

    from loadpilot.cli import _load
    from loadpilot.cli_events import read_client, server_url

    if as_json and not once:
        raise typer.BadParameter("--json needs --once", param_hint="--json")
    config = _load(config_path)
    url = server_url(config, server)
    stale_s = stale_after_s(config.agent.interval_s)
    console = Console()
    with read_client(config, url) as client:
        try:
            data = fetch_top(client, time.time(), stale_s, url)
        except ReadError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(EXIT_UNREACHABLE) from None
        if once:
            if as_json:
                typer.echo(json.dumps(data.to_json()))
            else:
                fit = hosts_that_fit(data, console.size.height) if console.is_terminal else None
                console.print(render_top(data, max_hosts or fit))
            return
        try:
            with Live(console=console, auto_refresh=False, vertical_overflow="crop") as live:
                while True:
                    error = None
                    try:
                        data = fetch_top(client, time.time(), stale_s, url)
                    except ReadError as exc:
                        if exc.permanent:
                            raise
                        error = f"{exc}; retrying every {interval:g} s"
                    limit = max_hosts or hosts_that_fit(data, console.size.height)
                    live.update(render_top(data, limit, error), refresh=True)
                    time.sleep(interval)
        except KeyboardInterrupt:
            return
        except ReadError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(EXIT_UNREACHABLE) from None
