"""`loadpilot pool start|stop|restart|status|scale NAME [N]`: service control for worker pools.

Exit codes follow the LSB init-script convention where it has one: `status` exits 0 when the pool runs and 3
when it is stopped; a bad config or argument exits 2; a failed action exits 1.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer

from loadpilot.errors import LoadpilotError

pool_app = typer.Typer(help="Start, stop, restart, scale and inspect worker pools.", no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(help="the pool's name (pools[].name in the config)")]
ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="loadpilot.toml")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print one JSON document on stdout")]
TimeoutOpt = Annotated[float, typer.Option("--timeout", help="seconds to wait for the pool to settle")]

EXIT_FAILED, EXIT_USAGE, EXIT_STOPPED = 1, 2, 3


def _emit(as_json: bool, data: dict[str, Any], text: str) -> None:
    typer.echo(json.dumps(data) if as_json else text)


def _error(exc: LoadpilotError, as_json: bool, code: int = EXIT_FAILED) -> typer.Exit:
    if as_json:
        typer.echo(json.dumps({"ok": False, "error": str(exc)}))
    else:
        typer.echo(str(exc), err=True)
    return typer.Exit(code)


def _pool(name: str, config_path: Path | None) -> tuple[Any, Any, Any]:
    from loadpilot.act.pool.state import PoolPaths
    from loadpilot.cli import _load

    config = _load(config_path)
    try:
        pool = config.pool(name)
    except LoadpilotError as exc:
        raise _error(exc, False, EXIT_USAGE) from None
    return config, pool, PoolPaths.of(config.state_path, pool.name)


@pool_app.command("start")
def start(
    name: NameArg,
    config_path: ConfigOpt = None,
    foreground: Annotated[bool, typer.Option("--foreground", help="supervise in this process until Ctrl-C")] = False,
    timeout: TimeoutOpt = 60.0,
    as_json: JsonOpt = False,
) -> None:
    """Start the pool's supervisor (in the background unless --foreground); refuses a second one."""
    from loadpilot.act.pool import control

    config, pool, _ = _pool(name, config_path)
    try:
        if foreground:
            from loadpilot.metrics_http import serve_metrics

            control.run_foreground(config, pool, serve_metrics)
            return
        state = control.start_background(config, pool, config_path, timeout)
    except LoadpilotError as exc:
        raise _error(exc, as_json) from None
    _emit(as_json, {"ok": True, "state": asdict(state)}, f"{name}: started, {state.ready} ready at {state.front}")
    if state.failed:
        typer.echo(f"{name}: {state.failed} worker(s) failed; see `loadpilot pool status {name}`", err=True)
        raise typer.Exit(EXIT_FAILED)


@pool_app.command("stop")
def stop(name: NameArg, config_path: ConfigOpt = None, timeout: TimeoutOpt = 120.0, as_json: JsonOpt = False) -> None:
    """Drain and stop every worker, then the supervisor; nothing is left running."""
    from loadpilot.act.pool import control

    _, _, paths = _pool(name, config_path)
    was_running = control.stop(paths, timeout)
    _emit(as_json, {"ok": True, "was_running": was_running}, f"{name}: {'stopped' if was_running else 'not running'}")


@pool_app.command("restart")
def restart(
    name: NameArg,
    config_path: ConfigOpt = None,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="wait until every worker is replaced")] = True,
    timeout: TimeoutOpt = 300.0,
    as_json: JsonOpt = False,
) -> None:
    """Replace the workers one by one (a new one must be ready before an old one leaves): no downtime."""
    from loadpilot.act.pool import control

    config, pool, paths = _pool(name, config_path)
    try:
        if not control.is_running(paths):
            state = control.start_background(config, pool, config_path, timeout)
            _emit(as_json, {"ok": True, "state": asdict(state)}, f"{name}: was not running; started")
            return
        desired = control.restart(paths, pool)
        if wait:
            control.wait_generation(paths, desired.generation, timeout)
    except LoadpilotError as exc:
        raise _error(exc, as_json) from None
    _emit(
        as_json, {"ok": True, "generation": desired.generation}, f"{name}: restarted (generation {desired.generation})"
    )


@pool_app.command("scale")
def scale(
    name: NameArg,
    size: Annotated[int, typer.Argument(help="the desired number of workers, within min..max")],
    config_path: ConfigOpt = None,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="wait until the pool has that many ready")] = False,
    timeout: TimeoutOpt = 120.0,
    as_json: JsonOpt = False,
) -> None:
    """Set the desired number of workers; the supervisor starts or drains workers to match."""
    from loadpilot.act.pool import control

    _, pool, paths = _pool(name, config_path)
    try:
        control.scale(paths, pool, size)
    except LoadpilotError as exc:
        raise _error(exc, as_json, EXIT_USAGE) from None
    if wait:
        try:
            control.wait_size(paths, size, timeout)
        except LoadpilotError as exc:
            raise _error(exc, as_json) from None
    note = "" if control.is_running(paths) else " (not running: applies at the next start only if started with it)"
    _emit(as_json, {"ok": True, "desired": size}, f"{name}: desired size {size}{note}")


@pool_app.command("status")
def status(name: NameArg, config_path: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """A row per worker: pid, port, state, uptime, restarts, CPU, RSS, requests. Exit 0 running, 3 stopped."""
    from loadpilot.act.pool import control
    from loadpilot.act.pool.state import read_state

    _, _, paths = _pool(name, config_path)
    running = control.is_running(paths)
    state = read_state(paths)
    if as_json:
        typer.echo(json.dumps({"running": running, "state": asdict(state) if state else None}))
    else:
        _print_status(name, running, state)
    raise typer.Exit(0 if running else EXIT_STOPPED)


def _print_status(name: str, running: bool, state: Any) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console() if sys.stdout.isatty() else Console(width=200)
    if state is None:
        console.print(f"{name}: [bold red]stopped[/] (never run here)")
        return
    now = time.time()
    console.print(
        f"{name}: [bold]{'running' if running else 'stopped'}[/] · front {state.front} ({state.balancer}) · "
        f"desired {state.desired} · ready {state.ready} · failed {state.failed} · generation {state.generation}",
        markup=True,
        highlight=False,
    )
    table = Table("worker", "pid", "port", "state", "uptime", "restarts", "CPU", "RSS", "requests", "p95", "reason")
    for w in state.workers:
        table.add_row(
            Text(w.id),
            str(w.pid or "-"),
            str(w.port or "-"),
            w.state,
            f"{now - w.started_at:.0f} s" if w.started_at and w.pid else "-",
            str(w.restarts),
            f"{100 * w.cpu:.0f} %" if w.cpu is not None else "-",
            f"{w.rss_bytes / 2**20:.0f} MiB" if w.rss_bytes else "-",
            str(w.requests) if w.requests is not None else "-",
            f"{1000 * w.latency_p95_s:.0f} ms" if w.latency_p95_s is not None else "-",
            Text(w.reason),
        )
    console.print(table, markup=False)
    for w in state.workers:
        if w.state == "failed":
            console.print(f"{w.id} failed: {w.reason}", markup=False, highlight=False)
    if state.routes:
        console.print(f"routed by {state.balancer}: {', '.join(state.routes)}", markup=False, highlight=False)
    if state.cpu_quota:
        console.print(f"CPU quota: {state.cpu_quota}", markup=False, highlight=False)
