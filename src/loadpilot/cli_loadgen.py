"""`loadpilot loadgen cpu`: hold the machine's total CPU inside a band (and optionally some memory) until stopped.

Bad arguments exit 2 with a message naming the option; a generator that cannot run (not Linux, a worker that
died) exits 1; a run stopped by --duration, Ctrl-C (SIGINT), SIGTERM or SIGHUP prints its summary and exits 0.
"""

from __future__ import annotations

import json
import re
import signal
import sys
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from loadpilot.cli_loadgen_http import http_command
from loadpilot.errors import LoadpilotError

if TYPE_CHECKING:
    from rich.live import Live
    from rich.table import Table

    from loadpilot.loadgen.summary import Band, Reading, Summary

loadgen_app = typer.Typer(help="Load generators, to exercise loadpilot's policies.", no_args_is_help=True)

EXIT_FAILED, EXIT_USAGE = 1, 2
TARGET_HALF_WIDTH = 1.0  # --target T means the band [T-1, T+1] %
LIVE_ROWS = 10  # seconds shown in the live table
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*(?:([kmgt])(?:i?b)?|b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


def parse_size(text: str) -> int:
    """Bytes from `1073741824`, `512M`, `1G`, `1.5GiB`, `64k`...: K, M, G, T are powers of 1024.

    Raises ValueError with a message fit for the user when the text is not a size.
    """
    match = _SIZE.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a size; use bytes or a number with K, M, G or T (powers of 1024): 512M")
    number, unit = match.group(1), (match.group(2) or "").lower()
    return int(float(number) * _UNITS[unit])


def _usage(message: str) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(EXIT_USAGE)


def _band(low: float | None, high: float | None, target: float | None) -> tuple[float, float]:
    """The band in percent from --low/--high or --target; exits 2 naming the option when they do not make one."""
    if target is not None:
        if low is not None or high is not None:
            _usage("--target excludes --low/--high: give either --target T or --low L --high H")
        if not 0.0 <= target <= 100.0:
            _usage(f"--target must be within 0..100 (% of the whole machine), got {target:g}")
        return max(0.0, target - TARGET_HALF_WIDTH), min(100.0, target + TARGET_HALF_WIDTH)
    if low is None and high is None:
        _usage("give --target T, or --low L and --high H (% of the whole machine's CPU)")
    if low is None or high is None:
        _usage(f"{'--low' if low is None else '--high'} is missing: --low and --high go together")
    if not 0.0 <= low <= 100.0:
        _usage(f"--low must be within 0..100 %, got {low:g}")
    if not 0.0 <= high <= 100.0:
        _usage(f"--high must be within 0..100 %, got {high:g}")
    if low >= high:
        _usage(f"--low ({low:g}) must be below --high ({high:g})")
    return low, high


def _memory(text: str | None) -> int:
    import psutil

    if text is None:
        return 0
    try:
        size = parse_size(text)
    except ValueError as exc:
        _usage(f"--memory: {exc}")
    available = psutil.virtual_memory().available
    if size > available:
        _usage(f"--memory: {size / 2**20:,.0f} MiB is more than the {available / 2**20:,.0f} MiB available")
    return size


@contextmanager
def _stop_on_signals(stop: Callable[[], None]) -> Iterator[None]:
    """While inside, SIGINT, SIGTERM and SIGHUP only ask the generator to stop (and print its summary)."""
    previous = {sig: signal.signal(sig, lambda _signum, _frame: stop()) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@loadgen_app.command("cpu")
def cpu(
    low: Annotated[float | None, typer.Option("--low", help="lower bound of the band, % of the whole machine")] = None,
    high: Annotated[float | None, typer.Option("--high", help="upper bound of the band, %")] = None,
    target: Annotated[
        float | None, typer.Option("--target", help="hold T %: the band [T-1, T+1] (excludes --low/--high)")
    ] = None,
    cores: Annotated[
        int | None, typer.Option("--cores", help="worker processes, one per core to load (default: all cores)")
    ] = None,
    duration: Annotated[float | None, typer.Option("--duration", help="seconds to run (default: until Ctrl-C)")] = None,
    memory: Annotated[
        str | None, typer.Option("--memory", help="also hold this much resident memory: bytes, or 512M, 1G...")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="print only one JSON document at the end: summary and per-second series")
    ] = False,
) -> None:
    """Keep the machine's total CPU utilisation inside [--low, --high] %, whatever else runs.

    Utilisation is the whole machine's, all cores together (0-100 %), read
    from /proc/stat as the host collector reads it, and counts everyone's
    work: the generator backs off when other work loads the machine and
    fills in when that work stops. --cores N worker processes run busy/sleep
    slices of ~20 ms at a duty set five times a second by a feedback loop
    (feed-forward on the other load, PI with anti-windup); with N below all
    cores the generator alone reaches at most N/cores of the machine.

    Once a second it shows total and own CPU, duty and the band status; at
    the end a summary of those per-second readings: mean, p5-p95, MAE from
    the band's centre after settling, share of time in the band, and the
    settling time (until the first 3 s in a row inside the band).
    """
    from loadpilot.loadgen.cpu import CpuLoad, machine_cores
    from loadpilot.loadgen.summary import Band

    band_pct = _band(low, high, target)
    available_cores = machine_cores()
    if cores is not None and not 1 <= cores <= available_cores:
        _usage(f"--cores must be within 1..{available_cores} (this machine's cores), got {cores}")
    if duration is not None and duration <= 0:
        _usage(f"--duration must be positive, got {duration:g}")
    memory_bytes = _memory(memory)
    band = Band(band_pct[0] / 100, band_pct[1] / 100)
    workers = cores or available_cores
    report = _Report(band, workers, available_cores, memory_bytes, as_json)
    try:
        with CpuLoad(band, workers, memory_bytes) as load, _stop_on_signals(load.request_stop), report.live():
            readings = load.run(duration, report.reading)
    except LoadpilotError as exc:
        if as_json:
            typer.echo(json.dumps({"ok": False, "error": str(exc)}))
        else:
            typer.echo(str(exc), err=True)
        raise typer.Exit(EXIT_FAILED) from None
    report.finish(readings)


class _Report:
    """What the user sees: a line (or a live table on a terminal) per second, then the summary."""

    def __init__(self, band: Band, workers: int, cores: int, memory_bytes: int, as_json: bool) -> None:
        self.band, self.workers, self.cores = band, workers, cores
        self.memory_bytes, self.as_json = memory_bytes, as_json
        self.recent: deque[Reading] = deque(maxlen=LIVE_ROWS)
        self._live: Live | None = None

    def _describe(self) -> str:
        held = f", holding {self.memory_bytes / 2**20:,.0f} MiB" if self.memory_bytes else ""
        return (
            f"loadgen cpu: total CPU in [{100 * self.band.low:g}, {100 * self.band.high:g}] % of {self.cores} cores, "
            f"{self.workers} workers{held}; Ctrl-C stops"
        )

    @contextmanager
    def live(self) -> Iterator[None]:
        """Show the per-second readings while inside: a live table on a terminal, lines otherwise."""
        if self.as_json:
            yield
        elif not sys.stdout.isatty():
            typer.echo(self._describe())
            yield
        else:
            from rich.console import Console
            from rich.live import Live

            with Live(self._table(), console=Console(highlight=False), refresh_per_second=4) as live:
                self._live = live
                yield
            self._live = None

    def _status(self, total: float) -> str:
        return "in band" if self.band.contains(total) else ("above" if total > self.band.high else "below")

    def reading(self, reading: Reading) -> None:
        """Show one per-second reading."""
        self.recent.append(reading)
        if self.as_json:
            return
        if self._live is not None:
            self._live.update(self._table())
            return
        typer.echo(
            f"{reading.t:6.1f} s  total {100 * reading.total:5.1f} %  own {100 * reading.own:5.1f} %  "
            f"duty {reading.duty:4.2f}  {self._status(reading.total)}"
        )

    def _table(self) -> Table:
        from rich.table import Table

        table = Table("elapsed", "total CPU", "own CPU", "duty", "band", title=self._describe(), title_justify="left")
        for r in self.recent:
            status = self._status(r.total)
            colour = "green" if status == "in band" else "yellow"
            table.add_row(
                f"{r.t:.0f} s",
                f"{100 * r.total:.1f} %",
                f"{100 * r.own:.1f} %",
                f"{r.duty:.2f}",
                f"[{colour}]{status}[/]",
            )
        return table

    def finish(self, readings: list[Reading]) -> None:
        """Print the summary (or the JSON document)."""
        from loadpilot.loadgen.summary import summarise

        summary = summarise(readings, self.band)
        if not self.as_json:
            for line in _summary_lines(summary, self.band):
                typer.echo(line)
            return
        series = [{**asdict(r), "in_band": self.band.contains(r.total)} for r in readings]
        document = {
            "ok": True,
            "band": {"low": self.band.low, "high": self.band.high},
            "workers": self.workers,
            "cores": self.cores,
            "memory_bytes": self.memory_bytes,
            "summary": summary.as_dict(),
            "series": series,
        }
        typer.echo(json.dumps(document))


def _pct(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{100 * value:.{digits}f}"


def _summary_lines(summary: Summary, band: Band) -> list[str]:
    """The summary for people: what `--json` reports under "summary", in percent and points."""
    if not summary.readings:
        return ["summary: no readings (stopped before the first second)"]
    if summary.settling_s is None:
        settled = "never held the band 3 s in a row"
        mae = f"{_pct(summary.mae, 2)} points (never settled)"
        in_band = f"{_pct(summary.in_band, 0)} % of the time"
    else:
        settled = f"settled after {summary.settling_s:.1f} s"
        mae = f"{_pct(summary.mae_settled, 2)} points after settling ({_pct(summary.mae, 2)} overall)"
        in_band = f"{_pct(summary.in_band, 0)} % of the time ({_pct(summary.in_band_settled, 0)} % after settling)"
    return [
        f"summary of {summary.readings} per-second readings over {summary.seconds:.1f} s, "
        f"band [{100 * band.low:g}, {100 * band.high:g}] %:",
        f"  total CPU   mean {_pct(summary.mean)} %, p5-p95 {_pct(summary.p5)}-{_pct(summary.p95)} %; "
        f"own CPU mean {_pct(summary.own_mean)} %",
        f"  MAE from {100 * band.centre:g} %: {mae}",
        f"  in band     {in_band}; {settled}",
    ]


loadgen_app.command("http")(http_command)
