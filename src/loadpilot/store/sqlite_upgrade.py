"""Upgrades of the SQLite store's layout, in place and in one transaction: all of it, or none of it."""

from __future__ import annotations

import math
import sqlite3

# Layout 2 kept a sample's slot, floor(ts / interval), but not its interval, which layout 3 keys samples by. An
# interval lies in (ts / (slot + 1), ts / slot]: agents use round ones, so the roundest value in there is it.
_ROUNDINGS = range(5, -4, -1)  # to 100,000 s down to 1 ms (the longest and the shortest interval allowed)
_INSERT = "INSERT OR IGNORE INTO samples VALUES (?, ?, ?, ?, ?, ?)"
_COPY_ROWS = 10_000


def interval_of(ts: float, slot: int, guess: float | None = None) -> float | None:
    """The interval a layout-2 sample was taken at: the roundest one that puts `ts` in `slot`, `guess` (the
    interval found for the same series) when it does. None for slot 0, which every interval longer than ts fits."""
    if slot <= 0:
        return None
    if guess is not None and math.floor(ts / guess) == slot:
        return guess
    exact = ts / slot
    for digits in _ROUNDINGS:
        candidate = round(exact, -digits)
        if candidate > 0 and math.floor(ts / candidate) == slot:
            return candidate
    return exact


def upgrade_from_v2(conn: sqlite3.Connection, schema: str) -> None:
    """Rewrite a layout-2 store in layout 3 (`schema`); nothing when another process did it first.

    Samples of slot 0 (timestamps within one interval of 1970) have no interval to recover and are left out.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        if conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() != ("2",):
            conn.execute("ROLLBACK")
            return
        conn.execute("ALTER TABLE samples RENAME TO samples_v2")
        conn.execute("DROP INDEX samples_metric_ts")
        conn.execute("ALTER TABLE series RENAME TO series_v2")
        for statement in schema.split(";"):
            if statement.strip():
                conn.execute(statement)
        guesses: dict[int, float] = {}  # series -> its interval
        intervals: set[tuple[int, float]] = set()
        rows = []
        for slot, sid, mid, ts, value in conn.execute("SELECT slot, series, metric_id, ts, value FROM samples_v2"):
            interval = interval_of(ts, slot, guesses.get(sid))
            if interval is None:
                continue
            guesses[sid] = interval
            intervals.add((mid, interval))
            rows.append((slot * interval, mid, sid, interval, ts, value))
            if len(rows) == _COPY_ROWS:
                conn.executemany(_INSERT, rows)
                rows.clear()
        conn.executemany(_INSERT, rows)
        conn.executemany("INSERT OR IGNORE INTO intervals VALUES (?, ?)", sorted(intervals))
        series = []
        for sid, rid, mid, unit, source, slot, ts, value in conn.execute(
            "SELECT id, resource_id, metric_id, unit, source, last_slot, last_ts, last_value FROM series_v2"
        ):
            interval = interval_of(ts, slot, guesses.get(sid)) or 0.0
            series.append((sid, rid, mid, unit, source, slot * interval, interval, ts, value))
        conn.executemany("INSERT INTO series VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", series)
        conn.execute("DROP TABLE samples_v2")
        conn.execute("DROP TABLE series_v2")
        conn.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
