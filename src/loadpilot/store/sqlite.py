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
from loadpilot.model import Batch, Event, Resource, Sample
from loadpilot.store.base import SCHEMA_VERSION, WriteResult, dump_json, labels_match, sample_rows

# Layout, chosen for ingest: an agent's tick writes one slot of many series. With the slot first in the primary
# key those rows land side by side at the end of the tree, and the two indexes grow at one point per resource and
# one per metric. A series-first key instead dirties one page per series per tick: 4x slower at 1,000 series.
# `latest` holds the newest sample of every series, so "now" never needs a scan.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS resources (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, labels TEXT NOT NULL, first_seen REAL NOT NULL);
CREATE TABLE IF NOT EXISTS samples (
    slot INTEGER NOT NULL, resource_id TEXT NOT NULL, metric TEXT NOT NULL,
    ts REAL NOT NULL, value REAL NOT NULL, unit TEXT NOT NULL, source TEXT NOT NULL,
    PRIMARY KEY (slot, resource_id, metric)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS samples_resource_ts ON samples (resource_id, ts);
CREATE INDEX IF NOT EXISTS samples_metric_ts ON samples (metric, ts);
CREATE TABLE IF NOT EXISTS latest (
    slot INTEGER NOT NULL, resource_id TEXT NOT NULL, metric TEXT NOT NULL,
    ts REAL NOT NULL, value REAL NOT NULL, unit TEXT NOT NULL, source TEXT NOT NULL,
    PRIMARY KEY (resource_id, metric)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS batches (
    batch_id TEXT PRIMARY KEY, agent TEXT NOT NULL, received REAL NOT NULL, samples INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS batches_received ON batches (received);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, kind TEXT NOT NULL, subject TEXT NOT NULL,
    reason TEXT NOT NULL, result TEXT NOT NULL, details TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_time ON events (time);
"""
_INSERT_SAMPLES = "INSERT OR IGNORE INTO samples VALUES (?, ?, ?, ?, ?, ?, ?)"
_UPSERT_LATEST = (
    "INSERT INTO latest VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (resource_id, metric) DO UPDATE SET "
    "slot = excluded.slot, ts = excluded.ts, value = excluded.value, unit = excluded.unit, source = excluded.source "
    "WHERE excluded.slot > latest.slot"
)

# A loose index scan: one index lookup per distinct metric instead of a scan of every sample.
_DISTINCT_METRICS = """
WITH RECURSIVE m(name) AS (
    SELECT MIN(metric) FROM samples
    UNION ALL SELECT (SELECT MIN(metric) FROM samples WHERE metric > m.name) FROM m WHERE m.name IS NOT NULL)
SELECT name FROM m WHERE name IS NOT NULL
"""

_UPSERT_RESOURCE = (
    "INSERT INTO resources (id, kind, labels, first_seen) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, labels = excluded.labels"
)


@dataclass
class _Pending:
    """A batch waiting for its group to be written, and what became of it."""

    batch: Batch
    rows: list[tuple[int, str, str, float, float, str, str]]
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
        self._writer = self._connect()
        with self._write_lock:
            # auto_vacuum must be chosen before the first table exists; incremental lets retention give pages back.
            self._writer.execute("PRAGMA auto_vacuum=INCREMENTAL")
            self._writer.executescript(_SCHEMA)
            self._writer.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
            self._writer.commit()
            for rid, kind, labels in self._writer.execute("SELECT id, kind, labels FROM resources"):
                self._known[rid] = (kind, labels)

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
        pending = _Pending(batch, sample_rows(batch))
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
        results = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for item in group:
                batch, rows = item.batch, item.rows
                cur = conn.execute(
                    "INSERT OR IGNORE INTO batches (batch_id, agent, received, samples) VALUES (?, ?, ?, ?)",
                    (batch.batch_id, batch.agent, time.time(), len(rows)),
                )
                if cur.rowcount == 0:
                    results.append(WriteResult(duplicate=True, stored=0, received=len(rows)))
                    continue
                before = conn.total_changes
                conn.executemany(_INSERT_SAMPLES, rows)
                results.append(WriteResult(duplicate=False, stored=conn.total_changes - before, received=len(rows)))
                conn.executemany(_UPSERT_LATEST, rows)
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
        for item, result in zip(group, results, strict=True):
            item.result = result

    def latest(self, metric: str | None = None, resource_ids: Sequence[str] | None = None) -> list[Sample]:
        """The newest sample of each (resource, metric)."""
        sql, args = "SELECT resource_id, metric, value, ts, unit, source FROM latest WHERE 1", []
        if metric is not None:
            sql += " AND metric = ?"
            args.append(metric)
        if resource_ids is not None:
            sql += f" AND resource_id IN ({','.join('?' * len(resource_ids))})"
            args.extend(resource_ids)
        return [Sample(*row) for row in self._reader().execute(sql + " ORDER BY resource_id, metric", args)]

    def series(self, resource_id: str, metric: str, start: float, end: float, limit: int = 10_000) -> list[Sample]:
        """The samples of one resource's metric in [start, end), oldest first."""
        rows = self._reader().execute(
            "SELECT resource_id, metric, value, ts, unit, source FROM samples "
            "WHERE resource_id = ? AND metric = ? AND ts >= ? AND ts < ? ORDER BY ts LIMIT ?",
            (resource_id, metric, start, end, limit),
        )
        return [Sample(*row) for row in rows]

    def window_values(
        self, metric: str, start: float, end: float, resource_ids: Sequence[str] | None = None
    ) -> list[tuple[str, float, float]]:
        """(resource_id, timestamp, value) of one metric in [start, end), oldest first."""
        sql = "SELECT resource_id, ts, value FROM samples WHERE metric = ? AND ts >= ? AND ts < ?"
        args: list[object] = [metric, start, end]
        if resource_ids is not None:
            sql += f" AND resource_id IN ({','.join('?' * len(resource_ids))})"
            args.extend(resource_ids)
        return list(self._reader().execute(sql + " ORDER BY ts", args))

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
    ) -> list[Event]:
        """Events, newest first."""
        where, args = [], []
        for cond, value in (
            ("time >= ?", since),
            ("kind = ?", kind),
            ("subject = ?", subject),
            ("id > ?", after_id),
        ):
            if value is not None:
                where.append(cond)
                args.append(value)
        sql = "SELECT id, time, kind, subject, reason, result, details FROM events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = self._reader().execute(sql + " ORDER BY id DESC LIMIT ?", [*args, limit])
        return [
            Event(time=t, kind=k, subject=s, reason=r, result=res, details=json.loads(d), id=i)
            for i, t, k, s, r, res, d in rows
        ]

    def delete_before(self, cutoff: float) -> int:
        """Remove samples and remembered batch ids older than `cutoff`, and give the freed pages back."""
        # Per metric, so each delete walks the (metric, ts) index: a third index only for retention would slow
        # every insert down by a fifth.
        metrics = [m for (m,) in self._reader().execute(_DISTINCT_METRICS)]
        removed = 0
        with self._write_lock:
            for metric in metrics:
                removed += self._writer.execute(
                    "DELETE FROM samples WHERE metric = ? AND ts < ?", (metric, cutoff)
                ).rowcount
            self._writer.execute("DELETE FROM latest WHERE ts < ?", (cutoff,))
            self._writer.execute("DELETE FROM batches WHERE received < ?", (cutoff,))
            self._writer.execute("PRAGMA incremental_vacuum")
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
