"""The embedded store: one SQLite file in WAL mode, one writer, many readers."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from loadpilot.errors import PermanentError
from loadpilot.model import Batch, Event, Resource, Sample, slot_of
from loadpilot.store.base import (
    WriteResult,
    check_schema_version,
    dump_json,
    labels_match,
)

SCHEMA_VERSION = 2

# Layout, chosen for ingest. Metric names and series (resource, metric) are named once and samples refer to them
# by small integers, so a sample row is five numbers. The slot leads the samples' primary key: an agent's tick
# writes one slot of many series, and those rows land side by side at the end of the tree. The one index,
# (metric, ts), grows at one point per metric, however many resources report it: windows of a metric (what the
# controller asks) read it directly, ranges of one series read it and keep that series' entries. An index per
# series instead dirties a page per series per commit and halves ingest at 1,000 series. A series' newest sample
# lives on its `series` row, so "now" never needs a scan.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS resources (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, labels TEXT NOT NULL, first_seen REAL NOT NULL);
CREATE TABLE IF NOT EXISTS metrics (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY AUTOINCREMENT, resource_id TEXT NOT NULL, metric_id INTEGER NOT NULL,
    unit TEXT NOT NULL, source TEXT NOT NULL,
    last_slot INTEGER NOT NULL, last_ts REAL NOT NULL, last_value REAL NOT NULL,
    UNIQUE (resource_id, metric_id));
CREATE TABLE IF NOT EXISTS samples (
    slot INTEGER NOT NULL, series INTEGER NOT NULL, metric_id INTEGER NOT NULL, ts REAL NOT NULL, value REAL NOT NULL,
    PRIMARY KEY (slot, series)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS samples_metric_ts ON samples (metric_id, ts);
CREATE TABLE IF NOT EXISTS batches (
    batch_id TEXT PRIMARY KEY, agent TEXT NOT NULL, received REAL NOT NULL, samples INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS batches_received ON batches (received);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, kind TEXT NOT NULL, subject TEXT NOT NULL,
    reason TEXT NOT NULL, result TEXT NOT NULL, details TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_time ON events (time);
"""
_INSERT_SAMPLES = "INSERT OR IGNORE INTO samples VALUES (?, ?, ?, ?, ?)"
# The no-op updates make RETURNING answer when another process created the row first.
_NEW_METRIC = "INSERT INTO metrics (name) VALUES (?) ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id"
_NEW_SERIES = (
    "INSERT INTO series (resource_id, metric_id, unit, source, last_slot, last_ts, last_value) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (resource_id, metric_id) DO UPDATE SET unit = unit RETURNING id"
)
_UPDATE_LATEST = (
    "UPDATE series SET last_slot = ?, last_ts = ?, last_value = ?, unit = ?, source = ? WHERE id = ? AND last_slot < ?"
)
_UPSERT_RESOURCE = (
    "INSERT INTO resources (id, kind, labels, first_seen) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, labels = excluded.labels"
)


@dataclass
class _Pending:
    """A batch waiting for its group to be written, and what became of it."""

    batch: Batch
    result: WriteResult | None = None
    error: BaseException | None = None


def path_from_url(url: str) -> Path:
    """`sqlite:///relative/or//absolute/path.db` -> a Path (three slashes, then the path)."""
    if not url.startswith("sqlite:///"):
        raise PermanentError(f"store.url: {url!r} is not a sqlite:/// URL")
    return Path(url.removeprefix("sqlite:///"))


class SQLiteStore:
    """Samples, resources and events in one SQLite file (WAL)."""

    def __init__(self, url: str, synchronous: str = "full") -> None:
        self.url = url
        self.path = path_from_url(url)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._synchronous = "FULL" if synchronous == "full" else "NORMAL"
        self._write_lock = threading.Lock()
        self._queue_lock = threading.Lock()
        self._queue: list[_Pending] = []
        self._local = threading.local()
        self._known: dict[str, tuple[str, str]] = {}
        self._series: dict[tuple[str, str], tuple[int, int]] = {}  # (resource, metric) -> (series, metric id)
        self._metric_ids: dict[str, int] = {}
        self._writer = self._connect()
        with self._write_lock:
            # auto_vacuum must be chosen before the first table exists; incremental lets retention give pages back.
            self._writer.execute("PRAGMA auto_vacuum=INCREMENTAL")
            has_meta = self._writer.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'").fetchone()
            if has_meta:
                row = self._writer.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
                check_schema_version(row and row[0], SCHEMA_VERSION, str(self.path))
            self._writer.executescript(_SCHEMA)
            self._writer.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
            self._writer.commit()
            for rid, kind, labels in self._writer.execute("SELECT id, kind, labels FROM resources"):
                self._known[rid] = (kind, labels)
            self._metric_ids.update(self._writer.execute("SELECT name, id FROM metrics"))
            for sid, rid, metric, mid in self._writer.execute(
                "SELECT x.id, x.resource_id, m.name, m.id FROM series x JOIN metrics m ON m.id = x.metric_id"
            ):
                self._series[(rid, metric)] = (sid, mid)

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
        except sqlite3.Error as exc:
            raise PermanentError(f"store.url: cannot open SQLite file {self.path}: {exc}") from exc
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self._synchronous}")
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
        return conn

    def write_batch(self, batch: Batch) -> WriteResult:
        """Store a batch once and durably; a batch id seen before stores nothing.

        Group commit: batches that arrive while another group is being written wait, then go in together in
        one transaction, so concurrent writers share one fsync instead of queueing for one each.
        """
        pending = _Pending(batch)
        with self._queue_lock:
            self._queue.append(pending)
        with self._write_lock:
            if pending.result is None and pending.error is None:
                with self._queue_lock:
                    group, self._queue = self._queue, []
                self._write_group(group)
        if pending.error is not None:
            raise pending.error
        assert pending.result is not None
        return pending.result

    def _write_group(self, group: list[_Pending]) -> None:
        """Write batches in one transaction; on failure every batch of the group gets the error."""
        conn = self._writer
        learned: dict[str, tuple[str, str]] = {}
        new_series: dict[tuple[str, str], tuple[int, int]] = {}
        results = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for item in group:
                batch = item.batch
                received = len(batch.samples)
                cur = conn.execute(
                    "INSERT OR IGNORE INTO batches (batch_id, agent, received, samples) VALUES (?, ?, ?, ?)",
                    (batch.batch_id, batch.agent, time.time(), received),
                )
                if cur.rowcount == 0:
                    results.append(WriteResult(duplicate=True, stored=0, received=received))
                    continue
                samples, newest = self._series_rows(conn, batch, new_series)
                before = conn.total_changes
                conn.executemany(_INSERT_SAMPLES, samples)
                results.append(WriteResult(duplicate=False, stored=conn.total_changes - before, received=received))
                conn.executemany(_UPDATE_LATEST, newest)
                first_seen = batch.samples[0].timestamp if batch.samples else 0.0
                changed = []
                for res in {r.id: r for r in batch.resources}.values():  # described twice: the last one wins
                    key = (res.kind, dump_json(res.labels))
                    if learned.get(res.id, self._known.get(res.id)) != key:
                        changed.append((res.id, key[0], key[1], first_seen))
                        learned[res.id] = key
                if changed:
                    conn.executemany(_UPSERT_RESOURCE, changed)
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            for item in group:
                item.error = exc
            return
        self._known.update(learned)
        self._series.update(new_series)
        self._metric_ids.update((metric, mid) for (_, metric), (_, mid) in new_series.items())
        for item, result in zip(group, results, strict=True):
            item.result = result

    def _series_rows(
        self, conn: sqlite3.Connection, batch: Batch, new_series: dict[tuple[str, str], tuple[int, int]]
    ) -> tuple[list[tuple[int, int, int, float, float]], list[tuple[int, float, float, str, str, int, int]]]:
        """A batch's samples as rows (slot, series, metric id, ts, value), and the updates that keep each series'
        newest sample.

        A series seen for the first time is created in this transaction; `new_series` collects it, and the cache
        learns it only once the transaction has committed.
        """
        known = self._series
        samples = []
        newest = []
        interval = batch.interval
        for rid, metric, value, ts, unit, source in batch.samples:
            slot = slot_of(ts, interval)
            key = (rid, metric)
            ids = known.get(key) or new_series.get(key)
            if ids is None:
                mid = self._metric_ids.get(metric) or int(conn.execute(_NEW_METRIC, (metric,)).fetchone()[0])
                sid = int(conn.execute(_NEW_SERIES, (rid, mid, unit, source, slot, ts, value)).fetchone()[0])
                ids = new_series[key] = (sid, mid)
            samples.append((slot, ids[0], ids[1], ts, value))
            newest.append((slot, ts, value, unit, source, ids[0], slot))
        return samples, newest

    def latest(self, metric: str | None = None, resource_ids: Sequence[str] | None = None) -> list[Sample]:
        """The newest sample of each (resource, metric)."""
        sql = (
            "SELECT x.resource_id, m.name, x.last_value, x.last_ts, x.unit, x.source "
            "FROM series x JOIN metrics m ON m.id = x.metric_id WHERE 1"
        )
        args: list[object] = []
        if metric is not None:
            sql += " AND m.name = ?"
            args.append(metric)
        if resource_ids is not None:
            sql += f" AND x.resource_id IN ({','.join('?' * len(resource_ids))})"
            args.extend(resource_ids)
        return [Sample(*row) for row in self._reader().execute(sql + " ORDER BY x.resource_id, m.name", args)]

    def series(self, resource_id: str, metric: str, start: float, end: float, limit: int = 10_000) -> list[Sample]:
        """The samples of one resource's metric in [start, end), oldest first."""
        rows = self._reader().execute(
            "SELECT x.resource_id, m.name, s.value, s.ts, x.unit, x.source "
            "FROM series x JOIN metrics m ON m.id = x.metric_id "
            "JOIN samples s ON s.metric_id = x.metric_id AND s.series = x.id "
            "WHERE x.resource_id = ? AND m.name = ? AND s.ts >= ? AND s.ts < ? ORDER BY s.ts LIMIT ?",
            (resource_id, metric, start, end, limit),
        )
        return [Sample(*row) for row in rows]

    def window_values(
        self, metric: str, start: float, end: float, resource_ids: Sequence[str] | None = None
    ) -> list[tuple[str, float, float]]:
        """(resource_id, timestamp, value) of one metric in [start, end), oldest first."""
        sql = (
            "SELECT x.resource_id, s.ts, s.value FROM samples s JOIN series x ON x.id = s.series "
            "WHERE s.metric_id = (SELECT id FROM metrics WHERE name = ?) AND s.ts >= ? AND s.ts < ?"
        )
        args: list[object] = [metric, start, end]
        if resource_ids is not None:
            sql += f" AND x.resource_id IN ({','.join('?' * len(resource_ids))})"
            args.extend(resource_ids)
        return list(self._reader().execute(sql + " ORDER BY s.ts", args))

    def buckets(
        self,
        metric: str,
        start: float,
        end: float,
        step_s: float,
        kind: str | None = None,
        resource_ids: Sequence[str] | None = None,
    ) -> list[tuple[str, int, float]]:
        """(resource_id, bucket, mean) of one metric in [start, end), bucket = floor((timestamp - start) / step_s).

        One grouped pass over the (metric, ts) index; timestamps are >= start, so truncation is the floor.
        """
        sql = (
            "SELECT x.resource_id, CAST((s.ts - ?) / ? AS INTEGER) AS b, avg(s.value) "
            "FROM samples s JOIN series x ON x.id = s.series"
        )
        args: list[object] = [start, step_s]
        if kind is not None:
            sql += " JOIN resources r ON r.id = x.resource_id AND r.kind = ?"
            args.append(kind)
        sql += " WHERE s.metric_id = (SELECT id FROM metrics WHERE name = ?) AND s.ts >= ? AND s.ts < ?"
        args += [metric, start, end]
        if resource_ids is not None:
            sql += f" AND x.resource_id IN ({','.join('?' * len(resource_ids))})"
            args.extend(resource_ids)
        rows = self._reader().execute(sql + " GROUP BY x.resource_id, b ORDER BY x.resource_id, b", args)
        return [(rid, int(b), float(mean)) for rid, b, mean in rows]

    def resources(self, kind: str | None = None, labels: Mapping[str, str] | None = None) -> list[Resource]:
        """The resources seen so far, filtered by kind and labels."""
        sql, args = "SELECT id, kind, labels FROM resources", []
        if kind is not None:
            sql += " WHERE kind = ?"
            args.append(kind)
        out = []
        for rid, rkind, raw in self._reader().execute(sql + " ORDER BY id", args):
            res_labels = json.loads(raw)
            if labels_match(res_labels, labels):
                out.append(Resource(rid, rkind, res_labels))
        return out

    def add_event(self, event: Event) -> int:
        """Record an event; returns its id."""
        with self._write_lock:
            cur = self._writer.execute(
                "INSERT INTO events (time, kind, subject, reason, result, details) VALUES (?, ?, ?, ?, ?, ?)",
                (event.time, event.kind, event.subject, event.reason, event.result, dump_json(event.details)),
            )
            return int(cur.lastrowid or 0)

    def events(
        self,
        since: float | None = None,
        kind: str | None = None,
        subject: str | None = None,
        after_id: int | None = None,
        limit: int = 100,
        *,
        result: str | None = None,
        subject_prefix: str | None = None,
    ) -> list[Event]:
        """Events, newest first."""
        where: list[str] = []
        args: list[object] = []
        for cond, values in (
            ("time >= ?", (since,)),
            ("kind = ?", (kind,)),
            ("subject = ?", (subject,)),
            ("id > ?", (after_id,)),
            ("result = ?", (result,)),
            ("substr(subject, 1, ?) = ?", (None if subject_prefix is None else len(subject_prefix), subject_prefix)),
        ):
            if values[-1] is not None:
                where.append(cond)
                args.extend(values)
        sql = "SELECT id, time, kind, subject, reason, result, details FROM events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = self._reader().execute(sql + " ORDER BY id DESC LIMIT ?", [*args, limit])
        return [
            Event(time=t, kind=k, subject=s, reason=r, result=res, details=json.loads(d), id=i)
            for i, t, k, s, r, res, d in rows
        ]

    def delete_before(self, cutoff: float) -> int:
        """Remove samples and remembered batch ids older than `cutoff`, and give the freed pages back.

        Metric by metric, so each delete walks the (metric, ts) index; a series with nothing newer goes too.
        """
        with self._write_lock:
            conn = self._writer
            try:
                conn.execute("BEGIN IMMEDIATE")
                ids = [(mid, cutoff) for (mid,) in conn.execute("SELECT id FROM metrics")]
                removed = conn.executemany("DELETE FROM samples WHERE metric_id = ? AND ts < ?", ids).rowcount
                forgotten = conn.execute(
                    "DELETE FROM series WHERE last_ts < ? "
                    "RETURNING resource_id, (SELECT name FROM metrics WHERE id = metric_id)",
                    (cutoff,),
                ).fetchall()
                conn.execute("DELETE FROM batches WHERE received < ?", (cutoff,))
                conn.execute("COMMIT")
                for rid, metric in forgotten:
                    self._series.pop((rid, metric), None)
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("PRAGMA incremental_vacuum")
        return int(removed)

    def counts(self) -> dict[str, int]:
        """Row counts per table."""
        conn = self._reader()
        return {
            table: int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])  # noqa: S608 (fixed names)
            for table in ("resources", "samples", "batches", "events")
        }

    def close(self) -> None:
        """Close the writer (readers close with their threads)."""
        with self._write_lock:
            self._writer.close()
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
