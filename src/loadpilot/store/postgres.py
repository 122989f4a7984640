"""The production store: PostgreSQL through a psycopg 3 connection pool, safe to share between threads.

It answers exactly as the SQLite store does: text columns use the "C" collation so ordering is by code point,
labels and details are stored as the same JSON text, and aggregates are computed in `store.base`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, LiteralString
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from loadpilot.errors import MissingDependencyError, PermanentError, TemporaryError
from loadpilot.model import Batch, Event, Resource, Sample, slot_of
from loadpilot.store.base import WriteResult, check_schema_version, dump_json, labels_match

try:
    import psycopg
    import psycopg_pool
    from psycopg.conninfo import conninfo_to_dict
except ImportError:  # pragma: no cover - exercised only without the `postgres` extra
    _DRIVER = False
else:
    _DRIVER = True

# Text keys use the "C" collation: rows come back ordered by code point, as SQLite's BINARY collation does.
_SCHEMA: LiteralString = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS resources (
    id TEXT COLLATE "C" PRIMARY KEY, kind TEXT COLLATE "C" NOT NULL, labels TEXT NOT NULL,
    first_seen DOUBLE PRECISION NOT NULL);
CREATE TABLE IF NOT EXISTS samples (
    slot BIGINT NOT NULL, resource_id TEXT COLLATE "C" NOT NULL, metric TEXT COLLATE "C" NOT NULL,
    ts DOUBLE PRECISION NOT NULL, value DOUBLE PRECISION NOT NULL, unit TEXT NOT NULL, source TEXT NOT NULL,
    PRIMARY KEY (slot, resource_id, metric));
CREATE INDEX IF NOT EXISTS samples_resource_ts ON samples (resource_id, ts);
CREATE INDEX IF NOT EXISTS samples_metric_ts ON samples (metric, ts);
CREATE TABLE IF NOT EXISTS latest (
    slot BIGINT NOT NULL, resource_id TEXT COLLATE "C" NOT NULL, metric TEXT COLLATE "C" NOT NULL,
    ts DOUBLE PRECISION NOT NULL, value DOUBLE PRECISION NOT NULL, unit TEXT NOT NULL, source TEXT NOT NULL,
    PRIMARY KEY (resource_id, metric));
CREATE TABLE IF NOT EXISTS batches (
    batch_id TEXT PRIMARY KEY, agent TEXT NOT NULL, received DOUBLE PRECISION NOT NULL,
    samples INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS batches_received ON batches (received);
CREATE TABLE IF NOT EXISTS events (
    id BIGSERIAL PRIMARY KEY, time DOUBLE PRECISION NOT NULL, kind TEXT NOT NULL, subject TEXT NOT NULL,
    reason TEXT NOT NULL, result TEXT NOT NULL, details TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_time ON events (time);
"""
SampleRow = tuple[int, str, str, float, float, str, str]
"""A sample as it is written: (slot, resource, metric, timestamp, value, unit, source)."""


def sample_rows(batch: Batch) -> list[SampleRow]:
    """The rows a batch's samples become."""
    interval = batch.interval
    return [
        (slot_of(ts, interval), rid, metric, ts, value, unit, source)
        for rid, metric, value, ts, unit, source in batch.samples
    ]


SCHEMA_VERSION = 1
# Errors that retrying cannot fix: bad password or role, no such database, no permission. A refused login has no
# SQLSTATE in libpq (no result), only the server's message, so its usual (English) phrases are recognised too.
_WONT_HEAL = {"28P01", "28000", "3D000", "42501"}
_WONT_HEAL_PHRASES = (
    "password authentication failed",
    "no password supplied",
    "does not exist",
    "no pg_hba.conf entry",
    "permission denied",
)
_SCHEMA_LOCK = 0x6C70_7374  # advisory lock id: two processes creating the schema at once would collide

# Arrays go in binary (%b): psycopg dumps them about a third faster than as text literals.
# Slot first in the key, so a tick's rows are inserted side by side.
_UNNEST_ROWS: LiteralString = (
    "SELECT * FROM unnest(%b::bigint[], %b::text[], %b::text[], %b::float8[], %b::float8[], %b::text[], %b::text[])"
)
_INSERT_SAMPLES: LiteralString = "INSERT INTO samples " + _UNNEST_ROWS + " ON CONFLICT DO NOTHING"
# Newer, not in the kept one's slot, and stored (a slot already taken keeps its first sample).
_UPSERT_LATEST: LiteralString = (
    "INSERT INTO latest " + _UNNEST_ROWS + " ON CONFLICT (resource_id, metric) DO UPDATE SET "  # noqa: S608 (fixed)
    "slot = excluded.slot, ts = excluded.ts, value = excluded.value, unit = excluded.unit, source = excluded.source "
    "WHERE excluded.ts > latest.ts AND excluded.slot <> latest.slot AND EXISTS (SELECT 1 FROM samples k "
    "WHERE k.slot = excluded.slot AND k.resource_id = excluded.resource_id AND k.metric = excluded.metric "
    "AND k.ts = excluded.ts AND k.value = excluded.value)"
)
_UPSERT_RESOURCES: LiteralString = (
    "INSERT INTO resources (id, kind, labels, first_seen) "
    "SELECT * FROM unnest(%b::text[], %b::text[], %b::text[], %b::float8[]) "
    "ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, labels = excluded.labels"
)
_SAMPLE_COLUMNS: LiteralString = "SELECT resource_id, metric, value, ts, unit, source FROM samples"


def redact(url: str) -> str:
    """The URL with any password replaced, fit for messages and logs."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        creds, _, hosts = netloc.rpartition("@")
        netloc = f"{creds.split(':', 1)[0]}:***@{hosts}" if ":" in creds else netloc
    query = urlencode([(k, "***" if k == "password" else v) for k, v in parse_qsl(parts.query)], safe="*")
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def conninfo_from_url(url: str) -> str:
    """`postgresql://`, `postgres://` or `postgresql+driver://` -> a URL libpq accepts; nothing else."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.split("+", 1)[0] not in ("postgresql", "postgres"):
        raise PermanentError(f"store.url: {redact(url)!r} is not a postgresql:// URL")
    conninfo = "postgresql://" + rest
    try:
        params = conninfo_to_dict(conninfo)
    except psycopg.Error as exc:
        reason = str(exc).strip()
        raise PermanentError(f"store.url: {redact(url)!r} is not a valid PostgreSQL URL: {reason}") from exc
    for port in str(params.get("port") or "5432").split(","):
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise PermanentError(f"store.url: {redact(url)!r} has an invalid port {port!r}")
    return conninfo


class PostgresStore:
    """Samples, resources and events in a PostgreSQL database, shared by threads through a connection pool."""

    def __init__(self, url: str, min_connections: int = 1, max_connections: int = 10, timeout_s: float = 10.0) -> None:
        if not _DRIVER:
            raise MissingDependencyError("the PostgreSQL store", "postgres")
        self.url = url
        self.display_url = redact(url)
        self._conninfo = conninfo_from_url(url)
        self._known: dict[str, tuple[str, str]] = {}
        self._known_lock = threading.Lock()
        with self._errors(), psycopg.connect(self._conninfo, connect_timeout=int(timeout_s)) as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            if conn.execute("SELECT to_regclass('meta')").fetchone() != (None,):
                row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
                check_schema_version(None if row is None else str(row[0]), SCHEMA_VERSION, self.display_url)
            conn.execute(_SCHEMA)
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', %s) ON CONFLICT DO NOTHING",
                (str(SCHEMA_VERSION),),
            )
            for rid, kind, labels in conn.execute("SELECT id, kind, labels FROM resources"):
                self._known[rid] = (kind, labels)
        self._pool = psycopg_pool.ConnectionPool(
            self._conninfo,
            min_size=min_connections,
            max_size=max_connections,
            open=False,
            timeout=timeout_s,
            kwargs={"autocommit": True, "connect_timeout": int(timeout_s)},
            name="loadpilot-store",
        )
        with self._errors():
            self._pool.open(wait=False)

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Translate driver errors: lost or refused connections may heal; refused logins, missing databases and
        anything else will fail again."""
        try:
            yield
        except psycopg.OperationalError as exc:
            if exc.sqlstate in _WONT_HEAL or any(phrase in str(exc) for phrase in _WONT_HEAL_PHRASES):
                raise PermanentError(f"PostgreSQL store at {self.display_url}: {exc}".strip()) from exc
            raise TemporaryError(f"PostgreSQL store at {self.display_url}: {exc}".strip()) from exc
        except psycopg.Error as exc:
            raise PermanentError(f"PostgreSQL store at {self.display_url}: {exc}".strip()) from exc

    @contextmanager
    def _conn(self) -> Iterator[psycopg.Connection[Any]]:
        with self._errors(), self._pool.connection() as conn:
            yield conn

    def _rows(self, query: LiteralString, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._conn() as conn:
            # Binary results carry float8 bit for bit, whatever the server's extra_float_digits.
            return conn.execute(query, args, binary=True).fetchall()

    def write_batch(self, batch: Batch) -> WriteResult:
        """Store a batch in one transaction; a batch id seen before stores nothing."""
        # A stable sort keeps the first of two equal identities (as SQLite does) and makes every writer take
        # row locks in the same order, so concurrent batches with overlapping samples cannot deadlock.
        rows = sorted(sample_rows(batch), key=lambda r: (r[0], r[1], r[2]))
        # When a batch describes a resource twice, the last description wins.
        described = {res.id: (res.kind, dump_json(res.labels)) for res in batch.resources}
        if not self._changed(described):
            return self._write(batch, rows, [])
        # Writers that change resources take turns, so the cache is updated in commit order and always agrees
        # with the table. The lock is taken before the transaction starts: no writer waits for rows under it.
        with self._known_lock:
            changed = self._changed(described)
            result = self._write(batch, rows, changed)
            if not result.duplicate:
                self._known.update(changed)
        return result

    def _changed(self, described: dict[str, tuple[str, str]]) -> list[tuple[str, tuple[str, str]]]:
        return sorted((rid, key) for rid, key in described.items() if self._known.get(rid) != key)

    def _write(
        self,
        batch: Batch,
        rows: list[SampleRow],
        changed: list[tuple[str, tuple[str, str]]],
    ) -> WriteResult:
        first_seen = batch.samples[0][3] if batch.samples else 0.0  # the first sample's timestamp
        stored = -1
        with self._conn() as conn, conn.transaction() as tx:
            inserted = conn.execute(
                "INSERT INTO batches (batch_id, agent, received, samples) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT DO NOTHING",
                (batch.batch_id, batch.agent, time.time(), len(rows)),
            ).rowcount
            if inserted == 0:
                raise psycopg.Rollback(tx)
            stored = conn.execute(_INSERT_SAMPLES, _columns(rows)).rowcount if rows else 0
            if rows:
                conn.execute(_UPSERT_LATEST, _columns(_newest_per_series(rows)))
            if changed:
                conn.execute(
                    _UPSERT_RESOURCES,
                    (
                        [rid for rid, _ in changed],
                        [kind for _, (kind, _) in changed],
                        [labels for _, (_, labels) in changed],
                        [first_seen] * len(changed),
                    ),
                )
        if stored < 0:
            return WriteResult(duplicate=True, stored=0, received=len(rows))
        return WriteResult(duplicate=False, stored=stored, received=len(rows))

    def latest(self, metric: str | None = None, resource_ids: Sequence[str] | None = None) -> list[Sample]:
        """The newest sample of each (resource, metric)."""
        query: LiteralString = "SELECT resource_id, metric, value, ts, unit, source FROM latest WHERE TRUE"
        args: list[Any] = []
        if metric is not None:
            query += " AND metric = %s"
            args.append(metric)
        if resource_ids is not None:
            query += " AND resource_id = ANY(%s::text[])"
            args.append(list(resource_ids))
        return [Sample(*row) for row in self._rows(query + " ORDER BY resource_id, metric", args)]

    def series(self, resource_id: str, metric: str, start: float, end: float, limit: int = 10_000) -> list[Sample]:
        """The samples of one resource's metric in [start, end), oldest first."""
        rows = self._rows(
            _SAMPLE_COLUMNS + " WHERE resource_id = %s AND metric = %s AND ts >= %s AND ts < %s ORDER BY ts LIMIT %s",
            (resource_id, metric, float(start), float(end), _limit(limit)),
        )
        return [Sample(*row) for row in rows]

    def window_values(
        self, metric: str, start: float, end: float, resource_ids: Sequence[str] | None = None
    ) -> list[tuple[str, float, float]]:
        """(resource_id, timestamp, value) of one metric in [start, end), oldest first."""
        query: LiteralString = "SELECT resource_id, ts, value FROM samples WHERE metric = %s AND ts >= %s AND ts < %s"
        args: list[Any] = [metric, float(start), float(end)]
        if resource_ids is not None:
            query += " AND resource_id = ANY(%s::text[])"
            args.append(list(resource_ids))
        return [(rid, ts, value) for rid, ts, value in self._rows(query + " ORDER BY ts, resource_id, slot", args)]

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

        One grouped pass over the (metric, ts) index.
        """
        query: LiteralString = "SELECT s.resource_id, floor((s.ts - %s) / %s)::bigint AS b, avg(s.value) FROM samples s"
        args: list[Any] = [float(start), float(step_s)]
        if kind is not None:
            query += " JOIN resources r ON r.id = s.resource_id AND r.kind = %s"
            args.append(kind)
        query += " WHERE s.metric = %s AND s.ts >= %s AND s.ts < %s"
        args += [metric, float(start), float(end)]
        if resource_ids is not None:
            query += " AND s.resource_id = ANY(%s::text[])"
            args.append(list(resource_ids))
        rows = self._rows(query + " GROUP BY s.resource_id, b ORDER BY s.resource_id, b", args)
        return [(rid, int(b), float(mean)) for rid, b, mean in rows]

    def resources(self, kind: str | None = None, labels: Mapping[str, str] | None = None) -> list[Resource]:
        """The resources seen so far, filtered by kind and labels."""
        query: LiteralString = "SELECT id, kind, labels FROM resources"
        rows = (
            self._rows(query + " ORDER BY id")
            if kind is None
            else self._rows(query + " WHERE kind = %s ORDER BY id", (kind,))
        )
        out = []
        for rid, rkind, raw in rows:
            res_labels = json.loads(raw)
            if labels_match(res_labels, labels):
                out.append(Resource(rid, rkind, res_labels))
        return out

    def add_event(self, event: Event) -> int:
        """Record an event; returns its id.

        Writers of events take turns (a table lock that readers do not wait for), so ids become visible in
        order: a reader that saw id n never finds a smaller id committed later, and `events(after_id=n)`
        misses nothing. Events are few (decisions and actions), so the turns cost nothing noticeable.
        """
        with self._conn() as conn, conn.transaction():
            conn.execute("LOCK TABLE events IN SHARE ROW EXCLUSIVE MODE")
            row = conn.execute(
                "INSERT INTO events (time, kind, subject, reason, result, details)"
                " VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
                (event.time, event.kind, event.subject, event.reason, event.result, dump_json(event.details)),
            ).fetchone()
        assert row is not None
        return int(row[0])

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
        query: LiteralString = "SELECT id, time, kind, subject, reason, result, details FROM events WHERE TRUE"
        args: list[Any] = []
        conditions: tuple[tuple[LiteralString, tuple[Any, ...]], ...] = (
            (" AND time >= %s", (None if since is None else float(since),)),
            (" AND kind = %s", (kind,)),
            (" AND subject = %s", (subject,)),
            (" AND id > %s", (after_id,)),
            (" AND result = %s", (result,)),
            (" AND left(subject, %s) = %s", (None if subject_prefix is None else len(subject_prefix), subject_prefix)),
        )
        for cond, values in conditions:
            if values[-1] is not None:
                query += cond
                args.extend(values)
        rows = self._rows(query + " ORDER BY id DESC LIMIT %s", [*args, _limit(limit)])
        return [
            Event(time=t, kind=k, subject=s, reason=r, result=res, details=json.loads(d), id=i)
            for i, t, k, s, r, res, d in rows
        ]

    def delete_before(self, cutoff: float) -> int:
        """Remove samples and remembered batch ids older than `cutoff` (autovacuum reclaims the space)."""
        with self._conn() as conn, conn.transaction():
            metrics = [m for (m,) in conn.execute(_DISTINCT_METRICS).fetchall()]
            removed = sum(
                conn.execute("DELETE FROM samples WHERE metric = %s AND ts < %s", (m, float(cutoff))).rowcount
                for m in metrics
            )
            conn.execute("DELETE FROM latest WHERE ts < %s", (float(cutoff),))
            conn.execute("DELETE FROM batches WHERE received < %s", (float(cutoff),))
        return int(removed)

    def counts(self) -> dict[str, int]:
        """Row counts per table, read in one statement so they are consistent with each other."""
        tables = ("resources", "samples", "batches", "events")
        row = self._rows(
            "SELECT (SELECT count(*) FROM resources), (SELECT count(*) FROM samples), "
            "(SELECT count(*) FROM batches), (SELECT count(*) FROM events)"
        )[0]
        return {table: int(n) for table, n in zip(tables, row, strict=True)}

    def close(self) -> None:
        """Close every pooled connection; the store cannot be used afterwards."""
        self._pool.close()


# One index lookup per distinct metric (a loose index scan), so retention walks (metric, ts) and needs no index of
# its own on ts, which would slow every insert.
_DISTINCT_METRICS: LiteralString = """
WITH RECURSIVE m(name) AS (
    SELECT min(metric) FROM samples
    UNION ALL SELECT (SELECT min(metric) FROM samples WHERE metric > m.name) FROM m WHERE m.name IS NOT NULL)
SELECT name FROM m WHERE name IS NOT NULL
"""


def _columns(rows: Sequence[tuple[Any, ...]]) -> list[list[Any]]:
    """Rows as one list per column, for unnest."""
    return [list(c) for c in zip(*rows, strict=True)]


def _newest_per_series(
    rows: list[SampleRow],
) -> list[SampleRow]:
    """One row per (resource, metric), the newest slot, in key order (an upsert may touch a row only once)."""
    newest: dict[tuple[str, str], SampleRow] = {}
    for row in rows:
        key = (row[1], row[2])
        if key not in newest or row[0] > newest[key][0]:
            newest[key] = row
    return [newest[k] for k in sorted(newest)]


def _limit(limit: int) -> int | None:
    """SQLite reads a negative LIMIT as no limit; PostgreSQL spells that NULL."""
    return None if limit < 0 else limit
