"""Template counts kept across requests: in this worker's memory, or in a SQLite file several workers share.

Each request mines from nothing; only its result (template -> lines) is added here, so /api/templates can show
what was seen over time. With a shared file, the counts of every worker writing to it add up.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

MAX_TEMPLATES_IN_MEMORY = 10_000
"""A worker remembers at most this many templates; lines of templates beyond it are counted as `dropped`."""


@dataclass(frozen=True)
class TemplateCount:
    """A template, how many lines it has grouped so far, and one line it grouped."""

    template: str
    count: int
    example: str


@dataclass(frozen=True)
class Totals:
    """The templates seen so far (the biggest first, at most `limit`), and how many lines were not kept."""

    templates: list[TemplateCount]
    dropped: int = 0


class TemplateCounts(Protocol):
    """Where the counts live: `add` one request's templates, `top` reads the biggest."""

    def add(self, found: Iterable[TemplateCount]) -> None:
        """Add one analysis' templates to the totals."""

    def top(self, limit: int) -> Totals:
        """The `limit` biggest templates seen so far."""

    def close(self) -> None:
        """Release what the counts hold open."""


class MemoryCounts:
    """This worker's counts, in memory, bounded; lost when the worker stops."""

    def __init__(self, max_templates: int = MAX_TEMPLATES_IN_MEMORY) -> None:
        self._max = max_templates
        self._counts: dict[str, int] = {}
        self._examples: dict[str, str] = {}
        self._dropped = 0
        self._lock = threading.Lock()

    def add(self, found: Iterable[TemplateCount]) -> None:
        """Add one analysis' templates; once full, new templates only add to `dropped`, known ones still count."""
        with self._lock:
            for t in found:
                if t.template in self._counts:
                    self._counts[t.template] += t.count
                elif len(self._counts) < self._max:
                    self._counts[t.template] = t.count
                    self._examples[t.template] = t.example
                else:
                    self._dropped += t.count

    def top(self, limit: int) -> Totals:
        """The `limit` biggest templates, ties ordered by template."""
        with self._lock:
            items = [TemplateCount(k, n, self._examples[k]) for k, n in self._counts.items()]
            dropped = self._dropped
        items.sort(key=lambda t: (-t.count, t.template))
        return Totals(items[:limit], dropped)

    def close(self) -> None:
        """Nothing to release."""


_SCHEMA = """
CREATE TABLE IF NOT EXISTS templates (
    template TEXT PRIMARY KEY,
    count INTEGER NOT NULL,
    example TEXT NOT NULL
) WITHOUT ROWID
"""
_ADD = """
INSERT INTO templates (template, count, example) VALUES (?, ?, ?)
ON CONFLICT (template) DO UPDATE SET count = count + excluded.count
"""


class SQLiteCounts:
    """Counts in a SQLite file that several worker processes may write at once; their counts add up.

    WAL lets readers run beside a writer; busy_timeout makes a writer wait for another's lock instead of failing;
    each request's templates go in as one short transaction taken for writing at once (BEGIN IMMEDIATE), so two
    writers never deadlock upgrading a read lock.
    """

    def __init__(self, path: Path, busy_timeout_ms: int = 10_000) -> None:
        try:
            self._db = sqlite3.connect(
                path, timeout=busy_timeout_ms / 1000, isolation_level=None, check_same_thread=False
            )
            self._db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.execute(_SCHEMA)
        except sqlite3.Error as exc:
            raise OSError(f"cannot use {path} for template counts: {exc} (is the folder there and writable?)") from exc
        self._lock = threading.Lock()

    def add(self, found: Iterable[TemplateCount]) -> None:
        """Add one analysis' templates in one transaction; raises sqlite3.Error when the file stays locked."""
        rows = [(t.template, t.count, t.example) for t in found]
        if not rows:
            return
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(_ADD, rows)
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    def top(self, limit: int) -> Totals:
        """The `limit` biggest templates in the file, from every worker, ties ordered by template."""
        with self._lock:
            rows = self._db.execute(
                "SELECT template, count, example FROM templates ORDER BY count DESC, template LIMIT ?", (limit,)
            ).fetchall()
        return Totals([TemplateCount(str(t), int(c), str(e)) for t, c, e in rows])

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()
