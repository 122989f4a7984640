"""`loadpilot simulate`: replay real traces through the decision code with a simulated clock."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from loadpilot.errors import LoadpilotError

if TYPE_CHECKING:
    from rich.progress import TaskID

    from loadpilot.sim.autoscale_setup import SimSetup

simulate_app = typer.Typer(
    help="Replay traces through the same decision code, with a simulated clock.", no_args_is_help=True
)

EXIT_USAGE = 2


def _usage(option: str, message: str) -> NoReturn:
    typer.echo(f"{option}: {message}", err=True)
    raise typer.Exit(EXIT_USAGE)


def _positive(**options: float | None) -> None:
    for name, value in options.items():
        if value is not None and not value > 0:
            _usage("--" + name.replace("_", "-"), f"must be > 0, got {value:g}")


@simulate_app.command("autoscale")
def autoscale(
    trace: Annotated[Path, typer.Option("--trace", help="CSV of `period,count`, per second or per minute")],
    policy: Annotated[str, typer.Option("--policy", help="the policy to run")] = "predictive",
    compare: Annotated[list[str] | None, typer.Option("--compare", help="another policy to run beside it")] = None,
    speedup: Annotated[float, typer.Option("--speedup", help="replay K times faster, at the same rates")] = 1.0,
    start: Annotated[str | None, typer.Option("--start", help="from this time of the trace (ISO, UTC)")] = None,
    duration: Annotated[float | None, typer.Option("--duration", help="seconds of trace time to replay")] = None,
    slo_ms: Annotated[float, typer.Option("--slo-ms", help="p95 latency objective")] = 250.0,
    capacity: Annotated[float, typer.Option("--capacity", help="requests/s one worker completes")] = 100.0,
    service_ms: Annotated[float, typer.Option("--service-ms", help="time one request takes alone")] = 20.0,
    startup_s: Annotated[float, typer.Option("--startup-s", help="from asking for a worker to it serving")] = 30.0,
    sample_s: Annotated[float, typer.Option("--sample-s", help="the collector's sampling interval")] = 5.0,
    target: Annotated[float, typer.Option("--target", help="CPU per worker the policies aim for")] = 0.7,
    burst_memory_s: Annotated[
        float, typer.Option("--burst-memory-s", help="target and predictive keep a burst's size this long; 0: off")
    ] = 1800.0,
    chart: Annotated[Path | None, typer.Option("--chart", help="write an HTML chart here")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON document on stdout")] = False,
) -> None:
    """Replay a request-rate trace into a simulated pool scaled by each policy; compare SLO, cost, elasticity."""
    from loadpilot.sim.autoscale_setup import POLICY_NAMES

    names = list(dict.fromkeys([policy, *(compare or [])]))
    for option, name in [("--policy", policy), *(("--compare", n) for n in compare or [])]:
        if name not in POLICY_NAMES:
            _usage(option, f"unknown policy {name!r} (known: {', '.join(POLICY_NAMES)})")
    _positive(speedup=speedup, duration=duration, slo_ms=slo_ms, capacity=capacity, service_ms=service_ms)
    _positive(sample_s=sample_s, target=target)
    if startup_s < 0:
        _usage("--startup-s", f"must be >= 0, got {startup_s:g}")
    if burst_memory_s < 0:
        _usage("--burst-memory-s", f"must be >= 0, got {burst_memory_s:g}")
    if slo_ms <= service_ms:
        _usage("--slo-ms", f"must exceed --service-ms ({service_ms:g})")
    if target > 1:
        _usage("--target", f"a CPU utilisation within (0, 1], got {target:g}")
    if sample_s < 1:
        _usage("--sample-s", "must be >= 1 (the simulation's step)")
    from loadpilot.sim.autoscale_setup import SimSetup
    from loadpilot.sim.pool_model import PoolParams

    params = PoolParams(capacity=capacity, service_s=service_ms / 1000, startup_s=startup_s)
    setup = SimSetup(params, slo_s=slo_ms / 1000, sample_s=sample_s, target=target, burst_memory_s=burst_memory_s)
    try:
        _run(trace, names, setup, speedup, start, duration, chart, as_json)
    except LoadpilotError as exc:
        _usage("--trace", str(exc))


def _load_rates(trace_path: Path, speedup: float, start: str | None, duration: float | None) -> tuple[Any, Any]:
    """The trace (sliced as asked) and its requests/s per simulated second."""
    from loadpilot.sim.traces import load_trace, parse_time

    trace = load_trace(trace_path)
    begin = None
    if start is not None:
        try:
            begin = parse_time(start)
        except ValueError:
            _usage("--start", f"not a time or a number: {start!r}")
    if begin is not None or duration is not None:
        trace = trace.slice(begin, duration)
    return trace, trace.replay(speedup)


def _run(
    trace_path: Path,
    names: list[str],
    setup: SimSetup,
    speedup: float,
    start: str | None,
    duration: float | None,
    chart: Path | None,
    as_json: bool,
) -> None:
    from rich.console import Console
    from rich.progress import Progress

    from loadpilot.sim.autoscale import SimRun, simulate, summarize
    from loadpilot.sim.report import document

    trace, rates = _load_rates(trace_path, speedup, start, duration)
    runs: list[SimRun] = []
    with Progress(console=Console(stderr=True), transient=True, disable=as_json) as progress:
        for name in names:
            task = progress.add_task(name, total=1.0)

            def advance(fraction: float, task: TaskID = task) -> None:
                """Show how far this policy's run has got."""
                progress.update(task, completed=fraction)

            runs.append(simulate(name, rates, setup, trace.start, progress=advance))
    summaries = [summarize(r, setup) for r in runs]
    info = _trace_info(trace_path, trace, speedup, len(rates))
    if chart is not None:
        _write_chart(chart, trace_path, runs, rates, setup)
    if as_json:
        typer.echo(json.dumps(document(info, setup, summaries), indent=2))
        return
    console = Console()
    if not console.is_terminal:
        console = Console(width=140)  # piped: one row per policy, whatever the default width
    _print_table(console, info, setup, summaries)


def _trace_info(path: Path, trace: Any, speedup: float, steps: int) -> dict[str, Any]:
    return {
        "file": str(path),
        "period_s": trace.period_s,
        "start": dt.datetime.fromtimestamp(trace.start, dt.UTC).isoformat(),
        "duration_s": trace.duration_s,
        "filled_periods": trace.filled,
        "speedup": speedup,
        "simulated_s": steps,
    }


def _write_chart(path: Path, trace_path: Path, runs: list[Any], rates: Any, setup: SimSetup) -> None:
    from loadpilot.sim.chart import render
    from loadpilot.sim.elasticity import demand_workers

    demand = demand_workers(rates, setup.per_worker_at_slo, round(setup.demand_window_s / setup.step_s))
    notes = [f"trace {trace_path.name}; {_pool_line(setup)}"]
    try:
        path.write_text(render(f"autoscaling: {trace_path.name}", runs, demand, setup.slo_s, notes), encoding="utf-8")
    except OSError as exc:
        _usage("--chart", f"cannot write {path} ({exc.strerror})")


def _pool_line(setup: SimSetup) -> str:
    p = setup.params
    return (
        f"worker: {p.capacity:g} req/s, {p.service_s * 1000:g} ms per request ({p.slots} at once), "
        f"start-up {p.startup_s:g} s; p95 objective {setup.slo_s * 1000:g} ms "
        f"(met up to {setup.per_worker_at_slo:.0f} req/s per worker); CPU target {setup.target:g}; "
        f"readings every {setup.sample_s:g} s"
    )


def _print_table(console: Any, info: dict[str, Any], setup: SimSetup, summaries: list[dict[str, Any]]) -> None:
    from rich.table import Table

    from loadpilot.sim.report import COLUMNS, cells, describe_check, target_check

    table = Table(*(title for _, title, _ in COLUMNS), title=f"{Path(info['file']).name}: {info['simulated_s']:,} s")
    for summary in summaries:
        table.add_row(*cells(summary))
    console.print(table)
    console.print(_pool_line(setup), markup=False, highlight=False)
    console.print(describe_check(target_check(summaries)), markup=False, highlight=False)


from loadpilot.cli_simulate_vms import vms_command  # noqa: E402 (registered last: VM simulation)

simulate_app.command("vms")(vms_command)
