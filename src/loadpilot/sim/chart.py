"""A self-contained HTML page of inline SVG charts: per policy, demand against supply, and p95 latency.

No script, no external asset: the page opens anywhere, and every text shown is escaped.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from loadpilot.sim.autoscale import SimRun

FloatArray = npt.NDArray[np.float64]
WIDTH, HEIGHT, PAD = 960, 180, 44
MAX_POINTS = 1200


def _buckets(values: FloatArray, how: str) -> FloatArray:
    """At most MAX_POINTS values: each the mean (or max) of a run of neighbours."""
    if len(values) <= MAX_POINTS:
        return values
    edges = np.linspace(0, len(values), MAX_POINTS + 1).astype(int)
    reduce = np.maximum if how == "max" else np.add
    sums = reduce.reduceat(values, edges[:-1])
    return sums if how == "max" else sums / np.diff(edges)


def _path(values: FloatArray, top: float, log: bool = False) -> str:
    if len(values) == 0:
        return ""
    xs = PAD + np.arange(len(values)) * (WIDTH - 2 * PAD) / max(1, len(values) - 1)
    shown = np.log10(np.maximum(values, 1e-3)) - np.log10(1e-3) if log else values
    scale = (np.log10(top) - np.log10(1e-3)) if log else top
    ys = HEIGHT - PAD / 2 - np.clip(shown / (scale or 1), 0, 1) * (HEIGHT - PAD)
    return "M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True))


def _panel(
    title: str, lines: Sequence[tuple[str, FloatArray, str]], top: float, unit: str, log: bool, hours: float
) -> str:
    bottom = HEIGHT - PAD / 2
    parts = [
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img">',
        f"<title>{html.escape(title)}</title>",
        f'<text x="{PAD}" y="14" class="t">{html.escape(title)}</text>',
        f'<text x="4" y="{PAD}" class="a">{html.escape(f"{top:,.3g} {unit}")}</text>',
        f'<line x1="{PAD}" y1="{bottom}" x2="{WIDTH - PAD}" y2="{bottom}" class="x"/>',
        f'<text x="{PAD}" y="{HEIGHT - 4}" class="a">0 h</text>',
        f'<text x="{WIDTH - PAD - 30}" y="{HEIGHT - 4}" class="a">{hours:.1f} h</text>',
    ]
    for i, (name, values, color) in enumerate(lines):
        parts.append(f'<path d="{_path(values, top, log)}" stroke="{color}" fill="none" stroke-width="1.2"/>')
        parts.append(f'<text x="{WIDTH - PAD - 100 * (len(lines) - i)}" y="14" fill="{color}" class="a">')
        parts.append(f"{html.escape(name)}</text>")
    parts.append("</svg>")
    return "".join(parts)


def render(title: str, runs: Sequence[SimRun], demand: FloatArray, slo_s: float, notes: Sequence[str] = ()) -> str:
    """The page: a heading, notes, and for each run a workers panel and a latency panel over the same time."""
    top_workers = float(max([1.0, np.max(demand), *(np.max(r.running) for r in runs)]))
    demand_shown = _buckets(np.asarray(demand, dtype=np.float64), "mean")
    body = [f"<h1>{html.escape(title)}</h1>", *(f"<p>{html.escape(n)}</p>" for n in notes)]
    for run in runs:
        hours = len(run.rate) * run.step_s / 3600
        body.append(f"<h2>{html.escape(run.policy)} ({hours:.1f} h)</h2>")
        body.append(
            _panel(
                "workers: demand (fewest meeting the objective), ready, running",
                [
                    ("demand", demand_shown, "#888"),
                    ("ready", _buckets(run.ready, "mean"), "#1f77b4"),
                    ("running", _buckets(run.running, "mean"), "#9ecae1"),
                ],
                top_workers,
                "workers",
                log=False,
                hours=hours,
            )
        )
        slo_line = np.full(len(_buckets(run.p95_s, "max")), slo_s)
        body.append(
            _panel(
                "p95 latency (log scale; highest in each bucket) and the objective",
                [("p95", _buckets(run.p95_s, "max"), "#d62728"), ("objective", slo_line, "#2ca02c")],
                max(float(np.max(run.p95_s)) if len(run.p95_s) else 1.0, 10 * slo_s),
                "s",
                log=True,
                hours=hours,
            )
        )
    style = (
        "body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}.t{font-size:12px}"
        ".a{font-size:11px}.x{stroke:#ccc}h2{margin:1.2em 0 .2em;font-size:16px}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n"
    )
