"""`loadpilot events [--follow] [--json]`: what loadpilot did and saw, read from the server's HTTP API.

Events are printed oldest to newest, as a table or as JSON Lines (one API object per line). With --follow the
command keeps polling for events newer than the last one it printed; a server that goes away is retried, with
one line on stderr, until Ctrl-C (exit 0). Exit 1 when the server cannot be reached (without --follow) or
refuses the read; exit 2 on a bad config or option.

Event text is data: a reason or subject is never read as rich markup, and control characters are shown escaped.
The small HTTP helpers here (`read_client`, `get_json`, `ReadError`) are shared with `loadpilot top`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    import httpx
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from loadpilot.config import Config

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="loadpilot.toml")]
ServerOpt = Annotated[
    str | None, typer.Option("--server", help="the server's base URL (default: agent.server_url from the config)")
]

EXIT_UNREACHABLE = 1
API = "/api/v1"
PAGE = 10_000  # the most the API returns at once; a poll that fills it may have missed older new events
POLL_S = 1.0
DETAILS_CHARS = 60
WIDE = 110  # columns from which the events table has room for the details
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class ReadError(Exception):
    """A read the server did not answer; `permanent` when retrying cannot help (a refused token, a bad request)."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


def parse_since(text: str) -> float:
    """Seconds from a duration such as `90`, `30s`, `10m`, `2h` or `1d` (how far back --since reaches)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if not match:
        raise ValueError(f"{text!r} is not a duration: seconds, or a number with s, m, h or d (e.g. 10m)")
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


def server_url(config: Config, override: str | None) -> str:
    """The server's base URL: --server when given, else the one the agent ships to."""
    url = (override or config.agent.server_url).rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise typer.BadParameter(f"{url!r} must start with http:// or https://", param_hint="--server")
    return url


def read_client(config: Config, url: str, timeout: float = 5.0) -> httpx.Client:
    """An HTTP client for the server's read API, carrying the read token when the config (or env) has one."""
    import httpx

    token = config.server.read_token_value()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=url, headers=headers, timeout=timeout)


def get_json(client: httpx.Client, path: str, params: dict[str, Any] | None = None) -> Any:
    """GET an API path and return its JSON; raise ReadError saying why not (unreachable, refused, broken)."""
    import httpx

    where = str(client.base_url).rstrip("/")
    try:
        response = client.get(API + path, params={k: v for k, v in (params or {}).items() if v is not None})
    except httpx.TransportError as exc:
        raise ReadError(
            f"cannot reach the loadpilot server at {where}: {exc or type(exc).__name__}", permanent=False
        ) from None
    if response.status_code == 401:
        raise ReadError(
            f"the loadpilot server at {where} refused the read (401): it needs a read token; "
            "set server.read_token in the config or LOADPILOT_READ_TOKEN",
            permanent=True,
        )
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        raise ReadError(
            f"the loadpilot server at {where} answered {response.status_code} to {path}: {detail}",
            permanent=response.status_code < 500,
        )
    try:
        return response.json()
    except ValueError:
        raise ReadError(f"{where} answered {path} with something that is not JSON", permanent=True) from None


def fetch_events(
    client: httpx.Client,
    *,
    since: float | None = None,
    kind: str | None = None,
    subject: str | None = None,
    after_id: int | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Events matching the filters, oldest first (the API gives them newest first)."""
    found = get_json(
        client,
        "/events",
        {"since": since, "kind": kind, "subject": subject, "after_id": after_id, "limit": limit},
    )
    if not isinstance(found, list):
        raise ReadError("the server's /events answer is not a list", permanent=True)
    return sorted(found, key=lambda e: int(e.get("id", 0)))


def plain(value: object) -> str:
    """A value as text with control characters escaped, so event text cannot move the cursor or clear a screen."""
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), default=str)
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def short_details(details: object, width: int = DETAILS_CHARS) -> str:
    """`key=value ...` of an event's details, cut to `width` characters."""
    if isinstance(details, dict):
        text = " ".join(f"{plain(k)}={plain(v)}" for k, v in details.items())
    else:
        text = plain(details)
    return text if len(text) <= width else text[: width - 1] + "…"


def local_time(timestamp: float) -> str:
    """An event's time in this machine's zone: month-day and time of day."""
    return dt.datetime.fromtimestamp(timestamp).strftime("%m-%d %H:%M:%S")


RESULT_STYLES = {"ok": "green", "done": "green", "failed": "red", "error": "red", "skipped": "yellow"}


def event_cells(event: dict[str, Any]) -> list[Text]:
    """One event as table cells: Text objects, so markup in the event prints literally."""
    from rich.text import Text

    result = plain(event.get("result", ""))
    return [
        Text(local_time(float(event.get("time", 0.0))), style="dim"),
        Text(plain(event.get("kind", "")), style="bold"),
        Text(plain(event.get("subject", ""))),
        Text(result, style=RESULT_STYLES.get(result, "")),
        Text(plain(event.get("reason", ""))),
        Text(short_details(event.get("details", {})), style="dim"),
    ]


def events_table(events: list[dict[str, Any]], *, header: bool = True, details: bool = True) -> Table:
    """Events as a table of fixed column widths (for a given console width), so batches printed one after another
    line up; `details=False` leaves the details column out where space is short."""
    from rich import box
    from rich.table import Table

    table = Table(
        box=box.SIMPLE_HEAD, show_header=header, show_edge=False, pad_edge=False, collapse_padding=True, expand=True
    )
    table.add_column("time", no_wrap=True, width=14)
    table.add_column("kind", no_wrap=True, width=10)
    table.add_column("subject", overflow="fold", ratio=1, min_width=12)
    table.add_column("result", no_wrap=True, width=8)
    table.add_column("reason", overflow="fold", ratio=2)
    if details:
        table.add_column("details", overflow="fold", ratio=1)
    for event in events:
        cells = event_cells(event)
        table.add_row(*(cells if details else cells[:-1]))
    return table


class _Printer:
    """Prints batches of events as JSON Lines or as table rows (the header only before the first batch)."""

    def __init__(self, console: Console, as_json: bool) -> None:
        self.console = console
        self.as_json = as_json
        self.header = True

    def emit(self, events: list[dict[str, Any]]) -> None:
        if not events:
            return
        if self.as_json:
            for event in events:
                typer.echo(json.dumps(event))
            return
        self.console.print(events_table(events, header=self.header, details=self.console.width >= WIDE))
        self.header = False


def events(
    config_path: ConfigOpt = None,
    server: ServerOpt = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="keep printing new events until Ctrl-C")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line (JSON Lines)")] = False,
    kind: Annotated[str | None, typer.Option(help="only events of this kind (scale, hold, error, ...)")] = None,
    subject: Annotated[str | None, typer.Option(help="only events about this subject (a pool, a host, ...)")] = None,
    since: Annotated[str | None, typer.Option(help="only events newer than this: seconds, or 10m, 2h, 1d")] = None,
    limit: Annotated[int, typer.Option(min=1, max=PAGE, help="at most this many of the newest events")] = 50,
) -> None:
    """Print recent events (actions, decisions, errors) oldest to newest; --follow keeps printing new ones."""
    from rich.console import Console

    from loadpilot.cli import _load

    try:
        since_s = None if since is None else parse_since(since)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--since") from None
    config = _load(config_path)
    url = server_url(config, server)
    printer = _Printer(Console(), as_json)
    filters: dict[str, Any] = {"kind": kind, "subject": subject}
    start: dict[str, Any] = {"since": None if since_s is None else time.time() - since_s, "limit": limit}
    with read_client(config, url) as client:
        if not follow:
            try:
                found = fetch_events(client, **filters, **start)
            except ReadError as exc:
                typer.echo(str(exc), err=True)
                raise typer.Exit(EXIT_UNREACHABLE) from None
            printer.emit(found)
            if not found and not as_json:
                printer.console.print("no events")
            return
        try:
            _follow(client, printer, filters, start)
        except KeyboardInterrupt:
            return
        except BrokenPipeError:  # the reader went away (`| head`): stop quietly, as Unix tools do
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at interpreter exit
            return
        except ReadError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(EXIT_UNREACHABLE) from None


def _follow(client: httpx.Client, printer: _Printer, filters: dict[str, Any], start: dict[str, Any]) -> None:
    """Print the starting events, then every newer one as it arrives; retry while the server is away."""
    last_id: int | None = None
    down = False
    while True:
        try:
            if last_id is None:
                found = fetch_events(client, **filters, **start)
                newest = found or fetch_events(client, limit=1)  # nothing matched: start after the newest of all
                last_id = max((int(e["id"]) for e in newest), default=0)
            else:
                found = fetch_events(client, **filters, after_id=last_id, limit=PAGE)
                if len(found) >= PAGE:
                    typer.echo(f"more than {PAGE} new events in one poll: older ones were skipped", err=True)
                last_id = max([last_id, *(int(e["id"]) for e in found)])
        except ReadError as exc:
            if exc.permanent:
                raise
            if not down:
                typer.echo(f"{exc}; retrying every {POLL_S:g} s", err=True)
                down = True
        else:
            if down:
                typer.echo("the loadpilot server answers again", err=True)
                down = False
            printer.emit(found)
        time.sleep(POLL_S)
