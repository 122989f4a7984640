"""The `loadpilot` command."""

from __future__ import annotations

import json
import logging
import re
import signal
import sys
import time
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from pydantic import ValidationError

from loadpilot import __version__
from loadpilot.cli_controller import controller
from loadpilot.cli_events import events
from loadpilot.cli_loadgen import loadgen_app
from loadpilot.cli_pool import pool_app
from loadpilot.cli_simulate import simulate_app
from loadpilot.cli_status import status
from loadpilot.cli_top import top
from loadpilot.cli_up import up
from loadpilot.config import Config, load_config, problems_from
from loadpilot.errors import ConfigError, LoadpilotError

app = typer.Typer(
    help="loadpilot keeps a fleet of servers evenly loaded and right-sized.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Check or show a configuration file.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(pool_app, name="pool")
app.add_typer(loadgen_app, name="loadgen")
app.add_typer(simulate_app, name="simulate")
app.command("status")(status)
app.command("controller")(controller)
app.command("up")(up)
app.command("events")(events)
app.command("top")(top)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="loadpilot.toml (default: ./loadpilot.toml when present, else defaults)"),
]
JsonOption = Annotated[bool, typer.Option("--json", help="print one JSON document on stdout")]

EXIT_CONFIG = 2


def _fail(lines: list[str], code: int = EXIT_CONFIG) -> NoReturn:
    for line in lines:
        typer.echo(line, err=True)
    raise typer.Exit(code)


def _load(path: Path | None) -> Config:
    """Load and fully check a config (collectors included); exit 2 naming each bad field."""
    from loadpilot.sense.collectors import check_collectors

    try:
        config = load_config(path)
    except ConfigError as exc:
        _fail(exc.problems)
    problems = check_collectors(config)
    if problems:
        _fail(problems)
    logging.basicConfig(
        level=config.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request is noise at info
    return config


def _version(value: bool) -> None:
    if value:
        typer.echo(f"loadpilot {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="print the version and exit")
    ] = False,
) -> None:
    """loadpilot: sense, coordinate, decide, act."""


@config_app.command("check")
def config_check(file: Annotated[Path, typer.Argument(help="the file to check")], as_json: JsonOption = False) -> None:
    """Print `ok` and exit 0, or one line per problem naming the field and exit 2."""
    from loadpilot.sense.collectors import check_collectors

    try:
        problems = check_collectors(load_config(file))
    except ConfigError as exc:
        problems = exc.problems
    if as_json:
        typer.echo(json.dumps({"ok": not problems, "problems": problems}))
    elif not problems:
        typer.echo("ok")
    else:
        _fail(problems)
    if problems:
        raise typer.Exit(EXIT_CONFIG)


def effective_config(config: Config) -> dict[str, Any]:
    """The config with defaults filled in and derived paths resolved; secrets masked."""
    data = config.model_dump(mode="json", exclude_none=True)
    data["state_dir"] = str(config.state_path)
    data["store"]["url"] = config.store_url
    data["agent"]["id"] = config.agent_id
    data["agent"]["spool_path"] = str(config.spool_file)
    data["auth"]["signing_key_file"] = str(config.signing_key_path)
    return data


@config_app.command("show")
def config_show(
    file: Annotated[Path | None, typer.Argument(help="the file (default: --config)")] = None,
    config_path: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Print the effective configuration, defaults filled in (TOML, or JSON with --json)."""
    import tomli_w

    data = effective_config(_load(file or config_path))
    typer.echo(json.dumps(data, indent=2) if as_json else tomli_w.dumps(data))


@app.command()
def server(
    config_path: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="address to listen on (default: server.host)")] = None,
    port: Annotated[int | None, typer.Option(help="port to listen on (default: server.port)")] = None,
) -> None:
    """Run the HTTP API that stores signed sample batches and answers queries."""
    import uvicorn

    from loadpilot.server.app import create_app
    from loadpilot.store import open_store
    from loadpilot.transport.signing import resolve_signing_key

    config = _load(config_path)
    overrides = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    if overrides:
        try:
            config.server = config.server.model_validate({**config.server.model_dump(), **overrides})
        except ValidationError as exc:
            _fail([re.sub(r"^server\.(host|port):", r"--\1:", line) for line in problems_from(exc, "server")])
    try:
        key = resolve_signing_key(config.signing_key_value(), config.signing_key_path, create=True)
        store = open_store(config.store_url, config.store.sqlite_synchronous)
    except LoadpilotError as exc:
        _fail([str(exc)])
    api = create_app(config, store, key)
    where = f"http://{config.server.host}:{config.server.port}"
    logging.getLogger("loadpilot").info(
        "loadpilot server on %s (dashboard %s/, API %s/api/v1, docs %s/docs, metrics %s/metrics); store %s",
        where,
        where,
        where,
        where,
        where,
        config.store_url.split("@")[-1],
    )
    try:
        uvicorn.run(
            api,
            host=config.server.host,
            port=config.server.port,
            log_level=config.log_level,
            access_log=config.log_level == "debug",
            server_header=False,
        )
    finally:
        store.close()


@app.command()
def agent(
    config_path: ConfigOption = None,
    once: Annotated[bool, typer.Option("--once", help="collect once, print the samples, ship nothing")] = False,
    as_json: JsonOption = False,
) -> None:
    """Sample this machine (and its processes and VMs) every interval and ship signed batches to the server."""
    from loadpilot.sense.agent import Agent
    from loadpilot.sense.collectors import build_collectors

    config = _load(config_path)
    if once:
        _collect_once(config, as_json)
        return
    try:
        runner = Agent(config, build_collectors(config))
    except LoadpilotError as exc:
        _fail([str(exc)])

    def _stop(signum: int, _frame: object) -> None:
        runner.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        runner.run()
    except LoadpilotError as exc:  # e.g. agent.metrics_listen's port is taken
        _fail([str(exc)], code=1)


def _collect_once(config: Config, as_json: bool) -> None:
    """Collect twice a short moment apart (rates need two readings) and print the second reading."""
    from rich.console import Console
    from rich.table import Table

    from loadpilot.sense.collectors import build_collectors

    collectors = build_collectors(config)
    for c in collectors:
        c.collect(time.time())
    time.sleep(0.5)
    now = time.time()
    samples = [s for c in collectors for s in c.collect(now).samples]
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        "resource_id": s.resource_id,
                        "metric": s.metric,
                        "value": s.value,
                        "timestamp": s.timestamp,
                        "unit": s.unit,
                    }
                    for s in samples
                ]
            )
        )
        return
    table = Table("resource", "metric", "value", "unit")
    for s in samples:
        table.add_row(s.resource_id, s.metric, f"{s.value:.4g}", s.unit)
    Console().print(table)


def main() -> None:
    """Entry point of the `loadpilot` console script."""
    app()


if __name__ == "__main__":
    main()
