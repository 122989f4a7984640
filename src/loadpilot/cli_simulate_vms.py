"""`loadpilot simulate vms`: replay per-VM CPU traces through VM strategies on a simulated cluster."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from loadpilot.errors import LoadpilotError

EXIT_USAGE = 2
MODELS = ("honest", "cloudsim")


def _usage(option: str, message: str) -> NoReturn:
    typer.echo(f"{option}: {message}", err=True)
    raise typer.Exit(EXIT_USAGE)


def vms_command(
    trace: Annotated[Path, typer.Option("--trace", help="a PlanetLab day folder, or a CSV of time and per-VM CPU")],
    strategy: Annotated[str, typer.Option("--strategy", help="the strategy to run (e.g. lr-mmt-1.2, ours)")] = "ours",
    compare: Annotated[list[str] | None, typer.Option("--compare", help="another strategy to run beside it")] = None,
    model: Annotated[str, typer.Option("--model", help="honest (default) or cloudsim (CloudSim 3.0.3's)")] = "honest",
    hosts: Annotated[int, typer.Option("--hosts", help="hosts in the cluster (half G4, half G5)")] = 800,
    host_ram_mb: Annotated[float, typer.Option("--host-ram-mb", help="memory per host (honest model)")] = 4096.0,
    threshold: Annotated[float, typer.Option("--threshold", help="a host over this CPU share is over threshold")] = 0.8,
    max_migrations: Annotated[
        int | None, typer.Option("--max-migrations", help="at most this many migrations per decision")
    ] = None,
    max_per_host: Annotated[
        int | None, typer.Option("--max-per-host", help="at most this many migrations per host and decision")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="seed for strategies that draw at random")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON document on stdout")] = False,
    report: Annotated[Path | None, typer.Option("--report", help="write an HTML report with charts here")] = None,
) -> None:
    """Run each strategy over the whole trace; print energy, SLATAH, PDM, SLAV, ESV, migrations and more."""
    from loadpilot.decide.vms.strategies import StrategyError, StrategySettings, strategy_for
    from loadpilot.sim.planetlab import load_traces
    from loadpilot.sim.vm_cloudsim import CloudSimSetup, run_cloudsim
    from loadpilot.sim.vm_model import HonestSetup, PlacementError, run_honest
    from loadpilot.sim.vm_report import COLUMNS, render, table_rows

    if model not in MODELS:
        _usage("--model", f"unknown model {model!r} (known: {', '.join(MODELS)})")
    if hosts <= 0:
        _usage("--hosts", f"must be > 0, got {hosts}")
    if not host_ram_mb > 0 or not math.isfinite(host_ram_mb):
        _usage("--host-ram-mb", f"must be > 0, got {host_ram_mb:g}")
    if not 0 < threshold <= 1:
        _usage("--threshold", f"must be in (0, 1], got {threshold:g}")
    for option, value in (("--max-migrations", max_migrations), ("--max-per-host", max_per_host)):
        if value is not None and value <= 0:
            _usage(option, f"must be > 0, got {value}")
    if not trace.exists():
        _usage("--trace", f"{trace}: no such folder or file")
    if report is not None and not report.parent.is_dir():
        _usage("--report", f"{report.parent}: no such folder to write the report in")
    names = list(dict.fromkeys([strategy, *(compare or [])]))
    settings = {
        name: StrategySettings(name, max_migrations=max_migrations, max_per_host=max_per_host, seed=seed)
        for name in names
    }
    for option, name in [("--strategy", strategy), *(("--compare", n) for n in compare or [])]:
        try:
            strategy_for(settings[name])
        except StrategyError as e:
            _usage(option, str(e))
    try:
        traces = load_traces(trace)
    except LoadpilotError as e:
        _usage("--trace", str(e))
    results = []
    for name in names:
        if model == "cloudsim":
            results.append(run_cloudsim(traces, settings[name], CloudSimSetup(hosts=hosts, threshold=threshold)))
            continue
        setup = HonestSetup(hosts=hosts, threshold=threshold, host_ram_mb=host_ram_mb)
        try:
            results.append(run_honest(traces, settings[name], setup))
        except PlacementError as e:
            _usage("--hosts", f"{e} (more hosts or --host-ram-mb)")
    if report is not None:
        report.write_text(render(f"VM strategies on {trace.name} ({model} model, {hosts} hosts)", results))
    if as_json:
        main = results[0].summary()
        typer.echo(json.dumps({**main, "trace": str(trace), "results": [r.summary() for r in results]}, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{trace.name}: {traces.vms} VMs, {hosts} hosts, {model} model")
    table.add_column("strategy")
    for _, label, _ in COLUMNS:
        table.add_column(label, justify="right")
    for row in table_rows(results):
        table.add_row(row["strategy"], *(row[k] for k, _, _ in COLUMNS))
    console = Console()
    if not console.is_terminal:
        console = Console(width=220)  # a pipe or a file: keep each row on one line
    console.print(table)
    if report is not None:
        console.print(f"report: {report}")
