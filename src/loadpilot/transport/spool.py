"""The agent's durable spool: batches wait on disk (SQLite) until the server acknowledges them.

A batch enters the spool before anyone tries to send it and leaves only once acknowledged, so a crash of the
agent or an outage of the server loses nothing. (WAL with synchronous=NORMAL: safe from crashes of the agent; a
power cut of its machine may lose the newest batches, which no server had acknowledged yet. An fsync per tick
would double the agent's CPU time.) The spool is bounded in bytes: when a new batch does not fit,
the oldest batches are dropped, and every drop is counted.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from loadpilot.errors import PermanentError

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, batch_id TEXT NOT NULL UNIQUE, created REAL NOT NULL,
    samples INTEGER NOT NULL, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class SpooledBatch:
    """A batch waiting to be sent."""

    seq: int
    batch_id: str
    created: float
    samples: int
    body: bytes


@dataclass(frozen=True, slots=True)
class SpoolStats:
    """How full the spool is and what it has had to drop since it was created."""

    batches: int
    bytes: int
    dropped_batches: int
    dropped_samples: int


class Spool:
    """A bounded, durable FIFO of encoded batches."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        except sqlite3.Error as exc:
            raise PermanentError(f"agent.spool_path: cannot open {path}: {exc}") from exc
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def put(self, batch_id: str, body: bytes, samples: int) -> int:
        """Keep a batch until acknowledged; returns how many old batches were dropped to make room."""
        if len(body) > self.max_bytes:
            raise PermanentError(
                f"agent.spool_max_bytes: one batch is {len(body)} bytes, more than the whole spool "
                f"({self.max_bytes}); lower agent.max_batch_samples or raise the limit"
            )
        dropped = 0
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                used = int(self._db.execute("SELECT COALESCE(SUM(LENGTH(body)), 0) FROM batches").fetchone()[0])
                while used + len(body) > self.max_bytes:
                    seq, size, n = self._db.execute(
                        "SELECT seq, LENGTH(body), samples FROM batches ORDER BY seq LIMIT 1"
                    ).fetchone()
                    self._db.execute("DELETE FROM batches WHERE seq = ?", (seq,))
                    self._count("dropped_batches", 1)
                    self._count("dropped_samples", n)
                    used -= size
                    dropped += 1
                self._db.execute(
                    "INSERT INTO batches (batch_id, created, samples, body) VALUES (?, ?, ?, ?)",
                    (batch_id, time.time(), samples, body),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        if dropped:
            log.warning("spool full (%d bytes): dropped the %d oldest batch(es)", self.max_bytes, dropped)
        return dropped

    def _count(self, name: str, n: int) -> None:
        self._db.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
            (name, n),
        )

    def oldest(self, limit: int = 16) -> list[SpooledBatch]:
        """The oldest waiting batches, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, batch_id, created, samples, body FROM batches ORDER BY seq LIMIT ?", (limit,)
            ).fetchall()
        return [SpooledBatch(seq, bid, created, n, bytes(body)) for seq, bid, created, n, body in rows]

    def ack(self, seq: int) -> None:
        """The server has the batch: forget it."""
        with self._lock:
            self._db.execute("DELETE FROM batches WHERE seq = ?", (seq,))

    def split(self, seq: int, parts: list[tuple[str, bytes, int]]) -> None:
        """Replace a batch by its parts (batch id, body, samples), in one transaction: the first keeps the batch's
        place in the queue, the others go at its end."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                (first_id, first_body, first_n), *rest = parts
                self._db.execute(
                    "UPDATE batches SET batch_id = ?, body = ?, samples = ? WHERE seq = ?",
                    (first_id, first_body, first_n, seq),
                )
                created = time.time()
                self._db.executemany(
                    "INSERT INTO batches (batch_id, created, samples, body) VALUES (?, ?, ?, ?)",
                    [(bid, created, n, body) for bid, body, n in rest],
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def reject(self, seq: int, samples: int) -> None:
        """The server refused the batch for good (malformed): forget it, and count it as dropped."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("DELETE FROM batches WHERE seq = ?", (seq,))
            self._count("rejected_batches", 1)
            self._count("dropped_samples", samples)
            self._db.execute("COMMIT")

    def stats(self) -> SpoolStats:
        """Depth and drops, for logs and the agent's own metrics."""
        with self._lock:
            n, size = self._db.execute("SELECT COUNT(*), COALESCE(SUM(LENGTH(body)), 0) FROM batches").fetchone()
            counters = dict(self._db.execute("SELECT name, value FROM counters").fetchall())
        return SpoolStats(
            batches=int(n),
            bytes=int(size),
            dropped_batches=int(counters.get("dropped_batches", 0)) + int(counters.get("rejected_batches", 0)),
            dropped_samples=int(counters.get("dropped_samples", 0)),
        )

    def close(self) -> None:
        """Close the file; waiting batches stay for the next start."""
        with self._lock:
            self._db.close()
