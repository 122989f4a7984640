"""The embedded store: one SQLite file in WAL mode, one writer, many readers."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter
from pathlib import Path

from loadpilot.errors import PermanentError
from loadpilot.model import Batch, Event, Resource, Sample, slot_of
from loadpilot.store.base import (
    WriteResult,
    check_schema_version,
    dump_json,
    labels_match,
)
from loadpilot.store.sqlite_upgrade import upgrade_from_v2

SCHEMA_VERSION = 3

# Layout, chosen for ingest. Metric names and series (resource, metric) are named once and samples refer to them
# by small integers, so a sample row is six numbers. The samples' one tree is keyed by (t0, metric, series,
# interval), t0 = slot x interval being the start of the sample's slot: an agent's tick writes one slot of many
# series, and its rows land at the end of the tree, a run per metric, in the order they are sorted into. (A REAL
# with no fraction, as t0 and the interval usually are, is stored as a small integer.) A second index, on
# (metric, ts) in an earlier layout, grew at one point per metric in the middle of its tree: it cost two thirds of
# the pages each commit wrote and a third of the write time. A window of one metric instead visits each slot
# start in the window (one short run per slot, for each interval that metric is reported at, which `intervals`
# lists), and a window of all metrics is a range of the tree. A series' newest sample lives on its `series` row,
# so "now" never needs a scan. (resource, metric, slot) stays a sample's identity, at its interval: (t0, interval)
# is the slot, so a series that changes interval keeps the readings of both.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS resources (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, labels TEXT NOT NULL, first_seen REAL NOT NULL);
CREATE TABLE IF NOT EXISTS metrics (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS intervals (
    metric_id INTEGER NOT NULL, interval REAL NOT NULL, PRIMARY KEY (metric_id, interval)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY AUTOINCREMENT, resource_id TEXT NOT NULL, metric_id INTEGER NOT NULL,
    unit TEXT NOT NULL, source TEXT NOT NULL,
    last_t0 REAL NOT NULL, last_interval REAL NOT NULL, last_ts REAL NOT NULL, last_value REAL NOT NULL,
    UNIQUE (resource_id, metric_id));
CREATE TABLE IF NOT EXISTS samples (
    t0 REAL NOT NULL, metric_id INTEGER NOT NULL, series INTEGER NOT NULL, interval REAL NOT NULL,
    ts REAL NOT NULL, value REAL NOT NULL,
    PRIMARY KEY (t0, metric_id, series, interval)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS batches (
    batch_id TEXT PRIMARY KEY, agent TEXT NOT NULL, received REAL NOT NULL, samples INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS batches_received ON batches (received);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, kind TEXT NOT NULL, subject TEXT NOT NULL,
    reason TEXT NOT NULL, result TEXT NOT NULL, details TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_time ON events (time);
"""
_INSERT_SAMPLES = "INSERT OR IGNORE INTO samples VALUES (?, ?, ?, ?, ?, ?)"
# The no-op updates make RETURNING answer when another process created the row first.
_NEW_METRIC = "INSERT INTO metrics (name) VALUES (?) ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id"
_NEW_SERIES = (
    "INSERT INTO series (resource_id, metric_id, unit, source, last_t0, last_interval, last_ts, last_value) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (resource_id, metric_id) DO UPDATE SET unit = unit RETURNING id"
)
# The newest sample is the one with the latest timestamp, unless it is in the slot of the one kept (the store
# keeps the first sample of a slot, and so does the series row), and only if the store kept it: a sample whose
# slot was already taken (the same identity sent again, or a series back at an interval it had) was not stored.
_NEWER = (
    "last_ts < {ts} AND NOT (last_t0 = {t0} AND last_interval = {iv}) AND EXISTS (SELECT 1 FROM samples k "
    "WHERE k.t0 = {t0} AND k.metric_id = series.metric_id AND k.series = series.id AND k.interval = {iv} "
    "AND k.ts = {ts} AND k.value = {value})"
)
_UPDATE_LATEST = " ".join(
    (
        "UPDATE series SET last_t0 = ?1, last_interval = ?2, last_ts = ?3, last_value = ?4, unit = ?5, source = ?6",
        "WHERE id = ?7 AND",
        _NEWER.format(ts="?3", t0="?1", iv="?2", value="?4"),
    )
)
# Rows go in CHUNK at a time, one statement each: per row, executemany's binding and stepping cost more than the
# row's own work (2.5x the time of the chunked insert). The last rows of a batch, fewer than CHUNK, use executemany.
CHUNK = 100
_INSERT_CHUNK = " ".join(("INSERT OR IGNORE INTO samples VALUES", ", ".join(["(?, ?, ?, ?, ?, ?)"] * CHUNK)))
_UPDATE_CHUNK = " ".join(
    (
        "UPDATE series SET last_t0 = v.column1, last_interval = v.column2, last_ts = v.column3,",
        "last_value = v.column4, unit = v.column5, source = v.column6 FROM (VALUES",
        ", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * CHUNK),
        ") AS v WHERE series.id = v.column7 AND",
        _NEWER.format(ts="v.column3", t0="v.column1", iv="v.column2", value="v.column4"),
    )
)
# The slot starts of one metric's samples in [:start, :end), as `starts (metric_id, t0)`: for each interval it is
# reported at, k x interval for k from the slot of the start to the slot of the end, inside the samples' own first
# and last slot start (:lo, :hi), one slot more at each end (float division). Two intervals can share a slot start
# (10 s is one at 1 s and at 5 s), hence DISTINCT. Join it as `JOIN samples s ON s.t0 = starts.t0 AND
# s.metric_id = starts.metric_id`, and add `s.ts >= :start AND s.ts < :end`, which cuts the first and last slot.
_SLOT_STARTS = """
WITH RECURSIVE
    slots (metric_id, iv, k, last) AS (
        SELECT metric_id, interval, CAST(:lo / interval AS INTEGER) - 1, CAST(:hi / interval AS INTEGER) + 1
        FROM intervals WHERE metric_id = (SELECT id FROM metrics WHERE name = :metric)
        UNION ALL SELECT metric_id, iv, k + 1, last FROM slots WHERE k < last),
    starts (metric_id, t0) AS (SELECT DISTINCT metric_id, k * iv FROM slots)
"""
# The same from a range of the tree (every metric's rows in it read), when visiting each slot would take longer:
# a window far longer than the metric's interval.
_RANGE_STARTS = """
WITH starts (metric_id, t0) AS (
    SELECT DISTINCT metric_id, t0 FROM samples
    WHERE t0 >= :lo AND t0 <= :hi AND metric_id = (SELECT id FROM metrics WHERE name = :metric))
"""
MAX_SLOT_VISITS = 100_000  # a visit costs about as much as reading a few rows
_UPSERT_RESOURCE = (
    "INSERT INTO resources (id, kind, labels, first_seen) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, labels = excluded.labels"
)


_KEY = itemgetter(0, 1, 2)  # a sample row's key (the interval, its fourth column, is the batch's)
_Rows = tuple[list[tuple[float, int, int, float, float, float]], list[tuple[float, float, float, float, str, str, int]]]
"""A batch's sample rows (t0, metric id, series, interval, ts, value) in key order, and the updates that keep each
series' newest sample."""


@dataclass
class _Pending:
    """A batch waiting for its group to be written, and what became of it."""

    batch: Batch
    rows: _Rows | None
    forgets: int  # the store's count of retention passes that forgot series, when `rows` were made
    result: WriteResult | None = None
    error: BaseException | None = None


def _in_chunks(conn: sqlite3.Connection, chunk_sql: str, row_sql: str, rows: Sequence[tuple[object, ...]]) -> None:
    """Run `chunk_sql` (CHUNK rows' parameters in a row) on the rows CHUNK at a time, and `row_sql` on the rest."""
    full = len(rows) - len(rows) % CHUNK
    for i in range(0, full, CHUNK):
        conn.execute(chunk_sql, tuple(chain.from_iterable(rows[i : i + CHUNK])))
    if full < len(rows):
        conn.executemany(row_sql, rows[full:])


def _among_resources(resource_ids: Sequence[str] | None, args: dict[str, object]) -> str:
    """The condition `x.resource_id IN (...)` for a query's named arguments; nothing when all resources count."""
    if resource_ids is None:
        return ""
    names = [f"r{i}" for i in range(len(resource_ids))]
    args.update(zip(names, resource_ids, strict=True))
    return f" AND x.resource_id IN ({', '.join(':' + n for n in names)})"


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
        self._known: dict[str, tuple[str, Mapping[str, str]]] = {}  # resource -> (kind, labels) as stored
        self._series: dict[tuple[str, str], tuple[int, int]] = {}  # (resource, metric) -> (series, metric id)
        self._metric_ids: dict[str, int] = {}
        self._intervals: set[tuple[int, float]] = set()  # (metric id, interval) pairs stored
        self._forgets = 0  # retention passes that removed series (and their ids from `_series`)
        self._writer = self._connect()
        with self._write_lock:
            # auto_vacuum must be chosen before the first table exists; incremental lets retention give pages back.
            self._writer.execute("PRAGMA auto_vacuum=INCREMENTAL")
            has_meta = self._writer.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'").fetchone()
            if has_meta:
                row = self._writer.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
                if row and row[0] == "2":
                    upgrade_from_v2(self._writer, _SCHEMA)
                    row = self._writer.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
                check_schema_version(row and row[0], SCHEMA_VERSION, str(self.path))
            self._writer.executescript(_SCHEMA)
            self._writer.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
            self._writer.commit()
            for rid, kind, labels in self._writer.execute("SELECT id, kind, labels FROM resources"):
                self._known[rid] = (kind, json.loads(labels))
            self._metric_ids.update(self._writer.execute("SELECT name, id FROM metrics"))
            self._intervals.update(self._writer.execute("SELECT metric_id, interval FROM intervals"))
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

    @contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        """This thread's reader inside one read transaction: a query made of several statements sees one state of
        the store (WAL keeps the snapshot of the transaction's first read), never part of a batch committed
        between two of them."""
        conn = self._reader()
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    def write_batch(self, batch: Batch) -> WriteResult:
        """Store a batch once and durably; a batch id seen before stores nothing.

        Group commit: batches that arrive while another group is being written wait, then go in together in
        one transaction, so concurrent writers share one fsync instead of queueing for one each. A batch of
        series stored before has its rows made here, by its own thread, so the writer only writes them.
        """
        forgets = self._forgets  # read first: a retention pass while the rows are made voids them
        pending = _Pending(batch, self._series_rows(batch), forgets)
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
        """Write batches in one transaction. When that fails, each batch is written again alone, so one bad
        batch fails by itself and the others are stored; an error no batch alone causes (a full disk) then
        reaches every one of them."""
        conn = self._writer
        learned: dict[str, tuple[str, Mapping[str, str]]] = {}
        new_series: dict[tuple[str, str], tuple[int, int]] = {}
        new_intervals: set[tuple[int, float]] = set()
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
                rows = item.rows if item.forgets == self._forgets else None
                rows = rows or self._series_rows(batch, conn, new_series)
                assert rows is not None  # with the connection, every series is found or created
                samples, newest = rows
                intervals = {(mid, batch.interval) for mid in {row[1] for row in samples}}
                intervals.difference_update(self._intervals, new_intervals)
                if intervals:
                    conn.executemany("INSERT OR IGNORE INTO intervals VALUES (?, ?)", intervals)
                    new_intervals |= intervals
                before = conn.total_changes
                _in_chunks(conn, _INSERT_CHUNK, _INSERT_SAMPLES, samples)
                results.append(WriteResult(duplicate=False, stored=conn.total_changes - before, received=received))
                _in_chunks(conn, _UPDATE_CHUNK, _UPDATE_LATEST, newest)
                first_seen = batch.samples[0][3] if batch.samples else 0.0  # the first sample's timestamp
                changed = []
                for res in {r.id: r for r in batch.resources}.values():  # described twice: the last one wins
                    described = (res.kind, res.labels)
                    if learned.get(res.id, self._known.get(res.id)) != described:
                        changed.append((res.id, res.kind, dump_json(res.labels), first_seen))
                        learned[res.id] = described
                if changed:
                    conn.executemany(_UPSERT_RESOURCE, changed)
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if len(group) > 1 and isinstance(exc, Exception):
                for item in group:
                    self._write_group([item])
                return
            for item in group:
                item.error = exc
            return
        self._known.update(learned)
        self._series.update(new_series)
        self._intervals |= new_intervals
        self._metric_ids.update((metric, mid) for (_, metric), (_, mid) in new_series.items())
        for item, result in zip(group, results, strict=True):
            item.result = result

    def _series_rows(
        self,
        batch: Batch,
        conn: sqlite3.Connection | None = None,
        new_series: dict[tuple[str, str], tuple[int, int]] | None = None,
    ) -> _Rows | None:
        """A batch's rows; None, without a connection, when the batch names a series not stored yet.

        With the writer's connection, a series seen for the first time is created in its transaction;
        `new_series` collects it, and the cache learns it only once the transaction has committed.
        """
        known = self._series
        created = new_series if new_series is not None else {}
        samples = []
        newest: dict[int, tuple[float, float, float, float, str, str, int]] = {}  # series -> first of its last slot
        interval = batch.interval
        for rid, metric, value, ts, unit, source in batch.samples:
            t0 = slot_of(ts, interval) * interval
            key = (rid, metric)
            ids = known.get(key) or created.get(key)
            if ids is None:
                if conn is None:
                    return None
                mid = self._metric_ids.get(metric) or int(conn.execute(_NEW_METRIC, (metric,)).fetchone()[0])
                sid = int(conn.execute(_NEW_SERIES, (rid, mid, unit, source, t0, interval, ts, value)).fetchone()[0])
                ids = created[key] = (sid, mid)
            sid, mid = ids
            samples.append((t0, mid, sid, interval, ts, value))
            if sid not in newest or newest[sid][0] < t0:  # one update per series: a chunk's join keeps any one row
                newest[sid] = (t0, interval, ts, value, unit, source, sid)
        samples.sort(key=_KEY)  # appended runs, one per metric, fill the tree's pages; stable: a slot's first wins
        return samples, list(newest.values())

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

    def _window(self, conn: sqlite3.Connection, metric: str, start: float, end: float) -> tuple[str, dict[str, object]]:
        """`starts`, the slot starts of one metric's samples in [start, end), and its arguments (see _SLOT_STARTS)."""
        intervals = [
            iv
            for (iv,) in conn.execute(
                "SELECT interval FROM intervals WHERE metric_id = (SELECT id FROM metrics WHERE name = ?)", (metric,)
            )
        ]
        first = conn.execute("SELECT min(t0) FROM samples").fetchone()[0]
        last = conn.execute("SELECT max(t0) FROM samples").fetchone()[0]
        args: dict[str, object] = {"metric": metric, "start": start, "end": end}
        if not intervals or first is None:
            return _SLOT_STARTS, args | {"lo": 0.0, "hi": -1.0}  # nothing to visit
        lo, hi = max(start, first), min(end, last)
        if sum(max(hi - lo, 0.0) / iv for iv in intervals) <= MAX_SLOT_VISITS:
            return _SLOT_STARTS, args | {"lo": lo, "hi": hi}
        return _RANGE_STARTS, args | {"lo": max(start - max(intervals), first), "hi": hi}  # t0 > ts - interval

    def series(self, resource_id: str, metric: str, start: float, end: float, limit: int = 10_000) -> list[Sample]:
        """The samples of one resource's metric in [start, end), oldest first."""
        with self._snapshot() as conn:
            starts, args = self._window(conn, metric, start, end)
            rows = conn.execute(
                starts + "SELECT x.resource_id, :metric, s.value, s.ts, x.unit, x.source "
                "FROM starts JOIN series x ON x.resource_id = :resource AND x.metric_id = starts.metric_id "
                "JOIN samples s ON s.t0 = starts.t0 AND s.metric_id = x.metric_id AND s.series = x.id "
                "WHERE s.ts >= :start AND s.ts < :end ORDER BY s.ts LIMIT :limit",
                args | {"resource": resource_id, "limit": limit},
            )
            return [Sample(*row) for row in rows]

    def window_values(
        self, metric: str, start: float, end: float, resource_ids: Sequence[str] | None = None
    ) -> list[tuple[str, float, float]]:
        """(resource_id, timestamp, value) of one metric in [start, end), oldest first."""
        with self._snapshot() as conn:
            starts, args = self._window(conn, metric, start, end)
            sql = (
                starts + "SELECT x.resource_id, s.ts, s.value FROM starts "  # noqa: S608 (fixed text)
                "JOIN samples s ON s.t0 = starts.t0 AND s.metric_id = starts.metric_id "
                "JOIN series x ON x.id = s.series WHERE s.ts >= :start AND s.ts < :end"
            )
            sql += _among_resources(resource_ids, args)
            return list(conn.execute(sql + " ORDER BY s.ts", args))

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

        One grouped pass over the metric's slots in the window; timestamps are >= start, so truncation is the floor.
        """
        with self._snapshot() as conn:
            starts, args = self._window(conn, metric, start, end)
            sql = (
                starts  # noqa: S608 (fixed text)
                + "SELECT x.resource_id, CAST((s.ts - :start) / :step AS INTEGER) AS b, avg(s.value) FROM starts "
                "JOIN samples s ON s.t0 = starts.t0 AND s.metric_id = starts.metric_id "
                "JOIN series x ON x.id = s.series"
            )
            args["step"] = step_s
            if kind is not None:
                sql += " JOIN resources r ON r.id = x.resource_id AND r.kind = :kind"
                args["kind"] = kind
            sql += " WHERE s.ts >= :start AND s.ts < :end" + _among_resources(resource_ids, args)
            rows = conn.execute(sql + " GROUP BY x.resource_id, b ORDER BY x.resource_id, b", args)
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

        A range at the start of the samples' tree (t0 <= ts); a series with nothing newer goes too.
        """
        with self._write_lock:
            conn = self._writer
            try:
                conn.execute("BEGIN IMMEDIATE")
                removed = conn.execute("DELETE FROM samples WHERE t0 < ? AND ts < ?", (cutoff, cutoff)).rowcount
                forgotten = conn.execute(
                    "DELETE FROM series WHERE last_ts < ? "
                    "RETURNING resource_id, (SELECT name FROM metrics WHERE id = metric_id)",
                    (cutoff,),
                ).fetchall()
                conn.execute("DELETE FROM batches WHERE received < ?", (cutoff,))
                conn.execute("COMMIT")
                for rid, metric in forgotten:
                    self._series.pop((rid, metric), None)
                if forgotten:
                    self._forgets += 1  # rows made with the forgotten series' ids are made again
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("PRAGMA incremental_vacuum")
        return int(removed)

    def counts(self) -> dict[str, int]:
        """Row counts per table."""
        with self._snapshot() as conn:
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
