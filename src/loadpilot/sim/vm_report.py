"""An HTML report of VM cluster runs: a table per strategy and inline SVG charts (host utilisation heat map,
active hosts, migrations, hosts in SLA violation). One self-contained file: no scripts, no external assets,
every text escaped.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np

from loadpilot.sim.vm_metrics import RunResult

COLUMNS = [
    ("energy_kwh", "energy (kWh)", "{:.2f}"),
    ("slatah", "SLATAH", "{:.4%}"),
    ("pdm", "PDM", "{:.4%}"),
    ("slav", "SLAV", "{:.3e}"),
    ("esv", "ESV", "{:.3e}"),
    ("migrations", "migrations", "{:,}"),
    ("host_shutdowns", "host shutdowns", "{:,}"),
    ("over_threshold_s", "time with a host over threshold (s)", "{:,.0f}"),
    ("under_allocation", "CPU not given (share)", "{:.4%}"),
    ("mean_active_hosts", "mean active hosts", "{:.1f}"),
    ("run_time_s", "run time (s)", "{:.2f}"),
]
PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]


def table_rows(results: Sequence[RunResult]) -> list[dict[str, str]]:
    """The figures formatted for people, one dict per run."""
    rows = []
    for r in results:
        values = r.summary()
        row = {"strategy": r.strategy, "model": r.model}
        for key, _, fmt in COLUMNS:
            row[key] = fmt.format(values[key])
        rows.append(row)
    return rows


def render(title: str, results: Sequence[RunResult]) -> str:
    """The whole report as one HTML document."""
    e = html.escape
    head = "".join(f"<th>{e(label)}</th>" for _, label, _ in COLUMNS)
    body = "".join(
        "<tr><td>"
        + e(row["strategy"])
        + "</td><td>"
        + e(row["model"])
        + "</td>"
        + "".join(f"<td>{e(row[k])}</td>" for k, _, _ in COLUMNS)
        + "</tr>"
        for row in table_rows(results)
    )
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>" + e(title) + "</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}h2{margin-top:2em}</style></head><body>",
        f"<h1>{e(title)}</h1><table><tr><th>strategy</th><th>model</th>{head}</tr>{body}</table>",
        "<h2>Active hosts</h2>" + _lines(results, "active_hosts"),
        "<h2>Migrations per decision</h2>" + _lines(results, "migrations"),
        "<h2>Hosts in SLA violation</h2>" + _lines(results, "violation_hosts"),
    ]
    for r in results:
        parts.append(f"<h2>Host utilisation: {e(r.strategy)} ({e(r.model)})</h2>" + _heat(r))
    parts.append("</body></html>")
    return "\n".join(parts)


def _lines(results: Sequence[RunResult], key: str, width: int = 900, height: int = 220) -> str:
    series = [(r, np.asarray(r.series.get(key, []), dtype=float)) for r in results]
    peak = max((float(s.max()) for _, s in series if s.size), default=1.0) or 1.0
    longest = max((s.size for _, s in series), default=1)
    out = [f"<svg width='{width}' height='{height + 20}' xmlns='http://www.w3.org/2000/svg'>"]
    out.append(f"<text x='4' y='12' font-size='11'>max {peak:,.0f}</text>")
    for i, (r, s) in enumerate(series):
        if s.size == 0:
            continue
        xs = np.arange(s.size) * (width - 10) / max(longest - 1, 1) + 5
        ys = height - s / peak * (height - 20) + 10
        points = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True))
        color = PALETTE[i % len(PALETTE)]
        out.append(f"<polyline fill='none' stroke='{color}' stroke-width='1.2' points='{points}'/>")
        out.append(
            f"<text x='{width - 220}' y='{14 + 13 * i}' font-size='11' fill='{color}'>"
            f"{html.escape(r.strategy)} ({html.escape(r.model)})</text>"
        )
    out.append("</svg>")
    return "".join(out)


def _heat(r: RunResult, rows: int = 80, cols: int = 144, cell: int = 6) -> str:
    """Hosts that were ever busy (grouped into at most `rows` bands, the busiest of each band shown) over time."""
    if not r.heat:
        return "<p>no data</p>"
    matrix = np.array(r.heat).T  # hosts x steps
    busy = matrix[(matrix > 0).any(axis=1)]
    if busy.size == 0:
        return "<p>no host was busy</p>"
    bands = np.array_split(busy, min(rows, len(busy)))
    grid = np.array([band.max(axis=0) for band in bands])
    chunks = np.array_split(np.arange(grid.shape[1]), min(cols, grid.shape[1]))
    grid = np.array([grid[:, c].max(axis=1) for c in chunks]).T
    h, w = grid.shape
    out = [f"<svg width='{w * cell + 120}' height='{h * cell + 20}' xmlns='http://www.w3.org/2000/svg'>"]
    for y in range(h):
        for x in range(w):
            u = float(grid[y, x])
            if u <= 0:
                continue
            out.append(f"<rect x='{x * cell}' y='{y * cell}' width='{cell}' height='{cell}' fill='{_colour(u)}'/>")
    out.append(
        f"<text x='{w * cell + 8}' y='12' font-size='11'>{len(busy)} hosts, {r.steps} decisions</text>"
        f"<text x='{w * cell + 8}' y='28' font-size='11' fill='{_colour(1.0)}'>&#9632; &gt;= 100 %</text>"
        f"<text x='{w * cell + 8}' y='44' font-size='11' fill='{_colour(0.5)}'>&#9632; 50 %</text>"
    )
    out.append("</svg>")
    return "".join(out)


def _colour(u: float) -> str:
    """Light blue (idle) to dark red (at or over capacity)."""
    t = min(max(u, 0.0), 1.0)
    red = int(230 * t + 20)
    green = int(200 * (1 - t) + 20)
    blue = int(240 * (1 - t) + 10)
    return f"#{red:02x}{green:02x}{blue:02x}"
