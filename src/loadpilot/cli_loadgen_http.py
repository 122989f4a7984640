"""`loadpilot loadgen http URL`: open-loop HTTP load on a schedule, with a progress bar and a summary.

Exit codes: 0 the schedule ran (failed requests are results, not errors: see the report), 1 the run could not
start (e.g. the host name does not resolve), 2 a bad option (the message names it), 130 stopped by Ctrl-C (the
report of what ran is still printed). Also runnable alone: `python -m loadpilot.cli_loadgen_http URL ...`.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from loadpilot.errors import LoadpilotError

if TYPE_CHECKING:
    from loadpilot.loadgen.http_report import HttpReport, Progress
    from loadpilot.loadgen.schedule import Schedule

EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130
DEFAULT_DURATION_S = 10.0

Url = Annotated[str, typer.Argument(help="the http:// URL to load (https is not supported)", show_default=False)]
Rate = Annotated[float | None, typer.Option("--rate", help="requests per second, constant (or the ramp's start)")]
RateTo = Annotated[float | None, typer.Option("--rate-to", help="ramp linearly from --rate to this rate")]
Ramp = Annotated[str | None, typer.Option("--ramp", help="ramp linearly from R1 to R2 req/s: R1:R2")]
Trace = Annotated[Path | None, typer.Option("--trace", help="replay a file of `period,count` lines (seconds,requests)")]
Speedup = Annotated[float, typer.Option("--speedup", help="play the trace this many times faster")]
Duration = Annotated[
    float | None,
    typer.Option("--duration", "-d", help=f"seconds of load (default {DEFAULT_DURATION_S:g}; a trace: all of it)"),
]
Concurrency = Annotated[int, typer.Option("--concurrency", help="at most this many requests in flight")]
Timeout = Annotated[float, typer.Option("--timeout", help="seconds a request may wait for a connection, and then run")]
Method = Annotated[str | None, typer.Option("--method", "-X", help="HTTP method (default GET, or POST with --body)")]
Header = Annotated[list[str] | None, typer.Option("--header", "-H", help="'Name: value', repeatable")]
Body = Annotated[Path | None, typer.Option("--body", help="send this file's bytes as the request body")]
ShowProgress = Annotated[
    bool | None,
    typer.Option("--progress/--no-progress", help="a progress bar on stderr (default: when it is a terminal)"),
]
AsJson = Annotated[bool, typer.Option("--json", help="print one JSON document on stdout")]


def http_command(
    url: Url,
    rate: Rate = None,
    rate_to: RateTo = None,
    ramp: Ramp = None,
    trace: Trace = None,
    speedup: Speedup = 1.0,
    duration: Duration = None,
    concurrency: Concurrency = 64,
    timeout: Timeout = 10.0,
    method: Method = None,
    header: Header = None,
    body: Body = None,
    progress: ShowProgress = None,
    as_json: AsJson = False,
) -> None:
    """Send requests on a schedule (open loop) and report latency percentiles, failures and the achieved rate.

    Requests leave at their scheduled times whether or not earlier ones were answered, and latency counts from
    the scheduled time, so a slow server shows as latency instead of as a slower generator.
    """
    from loadpilot.loadgen.http import HttpLoadSpec, run_load
    from loadpilot.loadgen.httpclient import parse_header

    try:
        schedule = _schedule(rate, rate_to, ramp, trace, speedup, duration)
        headers = tuple(parse_header(h) for h in header or [])
        payload = _read_body(body)
        spec = HttpLoadSpec(url, method or ("POST" if body else "GET"), headers, payload, concurrency, timeout)
        spec.checked()
    except LoadpilotError as exc:
        _fail(str(exc), as_json, EXIT_USAGE)
    show = sys.stderr.isatty() if progress is None else progress
    try:
        with _ProgressBar(schedule, show) as on_progress:
            report = run_load(spec, schedule, on_progress, fast_loop_factory())
    except LoadpilotError as exc:
        _fail(str(exc), as_json, EXIT_FAILED)
    if as_json:
        typer.echo(json.dumps({"ok": True, **report.to_dict()}))
    else:
        _print_report(report)
    if report.interrupted:
        raise typer.Exit(EXIT_INTERRUPTED)


def _fail(message: str, as_json: bool, code: int) -> NoReturn:
    if as_json:
        typer.echo(json.dumps({"ok": False, "error": message}))
    else:
        typer.echo(message, err=True)
    raise typer.Exit(code)


def _schedule(
    rate: float | None,
    rate_to: float | None,
    ramp: str | None,
    trace: Path | None,
    speedup: float,
    duration: float | None,
) -> Schedule:
    """The one schedule the options ask for; LoadpilotError naming the options when they do not say exactly one."""
    from loadpilot.loadgen import schedule as schedules

    if rate_to is not None and rate is None:
        raise schedules.ScheduleError("--rate-to: needs --rate (the ramp's start)")
    chosen = [name for name, value in (("--rate", rate), ("--ramp", ramp), ("--trace", trace)) if value is not None]
    if len(chosen) != 1:
        said = f"got {' and '.join(chosen)}" if chosen else "got none"
        raise schedules.ScheduleError(f"say how fast: exactly one of --rate, --ramp or --trace ({said})")
    if speedup != 1.0 and trace is None:
        raise schedules.ScheduleError("--speedup: applies to --trace only")
    if trace is not None:
        return schedules.trace(trace, speedup, duration)
    seconds = DEFAULT_DURATION_S if duration is None else duration
    if ramp is not None:
        low, colon, high = ramp.partition(":")
        try:
            if not colon:
                raise ValueError
            return schedules.ramp(float(low), float(high), seconds)
        except ValueError:
            raise schedules.ScheduleError(f"--ramp {ramp!r}: expected R1:R2, two rates in req/s") from None
    assert rate is not None
    return schedules.ramp(rate, rate if rate_to is None else rate_to, seconds)


def _read_body(path: Path | None) -> bytes:
    from loadpilot.loadgen.httpclient import HttpSetupError

    if path is None:
        return b""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise HttpSetupError(f"--body: cannot read {path}: {exc.strerror or exc}") from None


def fast_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when it is installed (about a third less CPU per request), else asyncio's own."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


class _ProgressBar:
    """A rich progress bar on stderr fed by the generator's snapshots; does nothing when not shown."""

    def __init__(self, schedule: Schedule, show: bool) -> None:
        self._schedule = schedule
        self._show = show
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> Callable[[Progress], None] | None:
        if not self._show:
            return None
        from rich.console import Console
        from rich.progress import BarColumn, TextColumn
        from rich.progress import Progress as RichProgress

        self._bar = RichProgress(
            TextColumn("[bold]{task.description}"),
            BarColumn(bar_width=30),
            TextColumn("{task.fields[clock]}"),
            TextColumn("{task.fields[counts]}"),
            console=Console(stderr=True),
            transient=True,
        )
        self._task = self._bar.add_task(
            "load", total=self._schedule.duration, clock=f"0/{self._schedule.duration:.0f} s", counts=""
        )
        self._bar.start()
        return self._update

    def _update(self, p: Progress) -> None:
        counts = (
            f"sent {p.sent:,} · ok {p.succeeded:,} · failed {p.failed:,} · in flight {p.in_flight:,} · "
            f"{p.rate:,.0f}/s (want {p.intended_rate:,.0f}/s)"
        )
        self._bar.update(
            self._task,
            completed=min(p.elapsed, p.duration),
            clock=f"{p.elapsed:.0f}/{p.duration:.0f} s",
            counts=counts,
        )

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()


def _ms(seconds: float) -> str:
    return f"{1000 * seconds:,.2f} ms" if seconds < 1 else f"{seconds:,.3f} s"


def _print_report(r: HttpReport) -> None:
    """The summary: what was sent and how it went, latency percentiles, failures by reason, warnings."""
    from rich.console import Console
    from rich.table import Table

    console = Console() if sys.stdout.isatty() else Console(width=120)
    console.print(
        f"{r.method} {r.url} · {r.schedule} · concurrency {r.concurrency} · timeout {r.timeout_s:g} s",
        markup=False,
        highlight=False,
    )
    table = Table("", "", show_header=False, box=None, pad_edge=False)
    table.add_row("requests", f"scheduled {r.scheduled:,} · sent {r.sent:,} · answered {r.completed:,}")
    table.add_row("outcome", f"ok {r.succeeded:,} · failed {r.failed_total:,}")
    table.add_row("rate", f"sent {r.send_rate:,.1f}/s · achieved {r.achieved_rate:,.1f}/s ok over {r.elapsed_s:.1f} s")
    lat = r.latency
    table.add_row(
        "latency",
        f"p50 {_ms(lat.p50)} · p95 {_ms(lat.p95)} · p99 {_ms(lat.p99)} · max {_ms(lat.max)}"
        if lat.count
        else "- (no successful answer)",
    )
    table.add_row(
        "start delay",
        f"p99 {_ms(r.start_delay.p99)} · max {_ms(r.start_delay.max)} · late starts {r.late_starts:,} · "
        f"sender lag max {_ms(r.sender_lag_max_s)}",
    )
    cpu_share = r.cpu_s / r.elapsed_s if r.elapsed_s else 0.0
    table.add_row(
        "generator",
        f"CPU {r.cpu_s:.2f} s ({cpu_share:.0%} of a core) · {r.connections:,} connections · "
        f"{r.reconnects:,} resent on a new one",
    )
    if r.statuses:
        table.add_row("statuses", " · ".join(f"{code}: {n:,}" for code, n in r.statuses.items()))
    console.print(table, markup=False, highlight=False)
    if r.failed:
        failures = Table("failed because", "requests", "share")
        for reason, n in r.failed.items():
            failures.add_row(reason, f"{n:,}", f"{n / max(1, r.scheduled):.1%}")
        console.print(failures, markup=False)
    notes = ["latency counts from each request's intended send time, so waiting for a connection counts too"]
    for note in notes + r.warnings():
        console.print(f"note: {note}", markup=False, highlight=False)
