"""Upgrades of the SQLite store's layout, in place and in one transaction: all of it, or none of it."""

from __future__ import annotations

import math
import sqlite3

# Layout 2 kept a sample's slot, floor(ts / interval), but not its interval, which layout 3 keys samples by. An
# interval lies in (ts / (slot + 1), ts / slot] for every sample of its series, and agents use intervals written
# as short decimals (a config's 5, 0.25 or 1.0625), so the roundest value in the series' range is it.
_ROUNDINGS = range(5, -13, -1)  # to 100,000 s down to 1e-12 s
_INSERT = "INSERT OR IGNORE INTO samples VALUES (?, ?, ?, ?, ?, ?)"
_COPY_ROWS = 10_000
_SLACK = 1e-12


def interval_of(
    ts: float, slot: int, guess: float | None = None, bounds: tuple[float, float] | None = None
) -> float | None:
    """The interval a layout-2 sample was taken at: `guess` (its series' interval) when it puts `ts` in `slot`, else
    the roundest one that does and lies within `bounds` (its series' range, see above), or else the roundest one that
    does. Intervals of more than 12 decimals (1/3) come back rounded. None for slot 0, which every interval longer
    than ts fits."""
    if slot <= 0:
        return None
    if guess is not None and math.floor(ts / guess) == slot:
        return guess
    exact = ts / slot
    # A series that changed interval has no common range: then the sample's own one decides.
    for low, high in ([bounds] if bounds is not None else []) + [(0.0, math.inf)]:
        low, high = low * (1 - _SLACK), high * (1 + _SLACK)  # the bounds are divisions, rounded
        for digits in _ROUNDINGS:
            candidate = round(exact, -digits)
            if low < candidate <= high and math.floor(ts / candidate) == slot:
                return candidate
    return exact


def upgrade_from_v2(conn: sqlite3.Connection, schema: str) -> None:
    """Rewrite a layout-2 store in layout 3 (`schema`); nothing when another process did it first.

    Samples of slot 0 (timestamps within one interval of 1970) have no interval to recover and are left out, and so
    are samples of series that no longer exist (no query could see them).
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
        bounds = {
            sid: (low, high)
            for sid, low, high in conn.execute(
                "SELECT series, max(ts / (slot + 1)), min(ts / slot) FROM samples_v2 WHERE slot > 0 GROUP BY series"
            )
        }
        guesses: dict[int, float] = {}  # series -> its interval
        intervals: set[tuple[int, float]] = set()
        rows = []
        # Rows of a series id that no longer exists (layout 2's retention could leave some) would be taken over by
        # a new series given that id: they are left behind.
        for slot, sid, mid, ts, value in conn.execute(
            "SELECT slot, series, metric_id, ts, value FROM samples_v2 WHERE series IN (SELECT id FROM series_v2)"
        ):
            interval = interval_of(ts, slot, guesses.get(sid), bounds.get(sid))
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
            interval = interval_of(ts, slot, guesses.get(sid), bounds.get(sid)) or 0.0
            series.append((sid, rid, mid, unit, source, slot * interval, interval, ts, value))
        conn.executemany("INSERT INTO series VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", series)
        # Ids of deleted series are never handed out again: the new table's counter goes on from the old one's.
        conn.execute(
            "UPDATE sqlite_sequence SET seq = max(seq, (SELECT seq FROM sqlite_sequence WHERE name = 'series_v2')) "
            "WHERE name = 'series'"
        )
        conn.execute(
            "INSERT INTO sqlite_sequence (name, seq) SELECT 'series', seq FROM sqlite_sequence "
            "WHERE name = 'series_v2' AND NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'series')"
        )
        conn.execute("DROP TABLE samples_v2")
        conn.execute("DROP TABLE series_v2")
        conn.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
