"""The SQLite store's own layout and write path: windows read the samples' key, a store of the previous layout is
upgraded, and rows made outside the write lock are made again when retention forgot their series meanwhile."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import pytest

from loadpilot.model import Batch, Sample
from loadpilot.store.sqlite import _RANGE_STARTS, _SLOT_STARTS, SQLiteStore

T0 = 1_700_000_000.0

# Layout 2, as loadpilot 0.x before layout 3 wrote it (the tables an upgrade rewrites).
_V2 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE resources (id TEXT PRIMARY KEY, kind TEXT NOT NULL, labels TEXT NOT NULL, first_seen REAL NOT NULL);
CREATE TABLE metrics (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE series (
    id INTEGER PRIMARY KEY AUTOINCREMENT, resource_id TEXT NOT NULL, metric_id INTEGER NOT NULL,
    unit TEXT NOT NULL, source TEXT NOT NULL,
    last_slot INTEGER NOT NULL, last_ts REAL NOT NULL, last_value REAL NOT NULL,
    UNIQUE (resource_id, metric_id));
CREATE TABLE samples (
    slot INTEGER NOT NULL, series INTEGER NOT NULL, metric_id INTEGER NOT NULL, ts REAL NOT NULL, value REAL NOT NULL,
    PRIMARY KEY (slot, series)) WITHOUT ROWID;
CREATE INDEX samples_metric_ts ON samples (metric_id, ts);
CREATE TABLE batches (batch_id TEXT PRIMARY KEY, agent TEXT NOT NULL, received REAL NOT NULL, samples INTEGER NOT NULL);
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, kind TEXT NOT NULL, subject TEXT NOT NULL,
    reason TEXT NOT NULL, result TEXT NOT NULL, details TEXT NOT NULL);
INSERT INTO meta VALUES ('schema_version', '2');
"""


def _batch(samples: list[Sample], interval: float) -> Batch:
    return Batch(uuid.uuid4().hex, "agent-1", interval, tuple(samples))


def test_a_window_visits_the_metric_slots_through_the_key(tmp_path: Path) -> None:
    store = SQLiteStore(f"sqlite:///{tmp_path / 'store.db'}")
    store.write_batch(_batch([Sample(f"h{i}", m, 0.5, T0) for i in range(3) for m in ("cpu", "mem")], 5.0))
    conn = store._reader()
    starts, args = store._window(conn, "cpu", T0, T0 + 60)
    assert starts == _SLOT_STARTS
    sql = "EXPLAIN QUERY PLAN " + starts + "SELECT s.value FROM starts "  # noqa: S608 (fixed text)
    plan = conn.execute(sql + "JOIN samples s ON s.t0 = starts.t0 AND s.metric_id = starts.metric_id", args)
    details = [row[3] for row in plan]
    assert any("SEARCH s USING PRIMARY KEY (t0=? AND metric_id=?)" in d for d in details), details
    assert not [d for d in details if d.split()[:2] in (["SCAN", "s"], ["SCAN", "samples"])], details
    store.close()


def test_a_window_with_too_many_slots_to_visit_reads_a_range(tmp_path: Path) -> None:
    # One reading at a millisecond interval, then a day at 5 s: a day's window would visit 86 million slots.
    store = SQLiteStore(f"sqlite:///{tmp_path / 'store.db'}")
    store.write_batch(_batch([Sample("odd", "cpu", 0.25, T0 + 0.0015)], 0.001))
    store.write_batch(_batch([Sample("h1", "cpu", i / 10, T0 + i * 5) for i in range(17_280)], 5.0))
    starts, _ = store._window(store._reader(), "cpu", T0, T0 + 86_400)
    assert starts == _RANGE_STARTS
    got = store.window_values("cpu", T0, T0 + 86_400)
    assert len(got) == 17_281 and got[:2] == [("h1", T0, 0.0), ("odd", T0 + 0.0015, 0.25)]
    assert store.buckets("cpu", T0, T0 + 86_400, 43_200, resource_ids=["odd"]) == [("odd", 0, 0.25)]
    assert store._window(store._reader(), "cpu", T0 + 50, T0 + 60)[0] == _SLOT_STARTS  # 10,000 visits
    assert [s.value for s in store.series("h1", "cpu", T0 + 50, T0 + 60)] == [1.0, 1.1]
    store.close()


def test_a_layout_2_store_is_upgraded_with_every_sample(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(_V2)
        conn.executemany("INSERT INTO metrics VALUES (?, ?)", [(1, "cpu"), (2, "mem"), (3, "disk")])
        conn.executemany(
            "INSERT INTO series VALUES (?, ?, ?, '', 'host', ?, ?, ?)",
            [
                (1, "h1", 1, int((T0 + 10) // 5), T0 + 10, 0.3),
                (2, "h2", 2, int((T0 + 9) // 1), T0 + 9, 9.0),
                (3, "h3", 3, int((T0 + 7300) // 3600), T0 + 7300, 2.0),
            ],
        )
        rows = [(int((T0 + i) // 5), 1, 1, T0 + i, i / 10) for i in (0, 5, 10)]  # h1 cpu every 5 s
        rows += [(int((T0 + i) // 1), 2, 2, T0 + i, float(i)) for i in range(10)]  # h2 mem every second
        rows += [(int((T0 + i) // 3600), 3, 3, T0 + i, i / 3650) for i in (100, 3650, 7300)]  # h3 disk hourly
        conn.executemany("INSERT INTO samples VALUES (?, ?, ?, ?, ?)", rows)
    conn.close()

    store = SQLiteStore(f"sqlite:///{path}")
    assert [s.value for s in store.series("h1", "cpu", T0, T0 + 60)] == [0.0, 0.5, 1.0]
    assert [v for _, _, v in store.window_values("mem", T0 + 2.5, T0 + 6)] == [3.0, 4.0, 5.0]
    assert {(s.resource_id, s.value) for s in store.latest()} == {("h1", 0.3), ("h2", 9.0), ("h3", 2.0)}
    assert [s.value for s in store.series("h3", "disk", T0, T0 + 8000)] == [100 / 3650, 1.0, 2.0]
    # The identity survives: h1's slot at T0 + 10 is taken, so a late sample in it stores nothing.
    assert store.write_batch(_batch([Sample("h1", "cpu", 0.9, T0 + 12)], 5.0)).stored == 0
    assert store.write_batch(_batch([Sample("h1", "cpu", 0.9, T0 + 15)], 5.0)).stored == 1
    assert [s.value for s in store.latest(resource_ids=["h1"])] == [0.9]
    # An hour's slot holds one sample, and retention keeps what is newer than its cutoff.
    assert store.write_batch(_batch([Sample("h3", "disk", 9.0, T0 + 3700)], 3600.0)).stored == 0
    assert store.delete_before(T0 + 3650) == 4 + 10 + 1  # h1, h2 and the first hour of h3
    assert [s.value for s in store.series("h3", "disk", T0, T0 + 8000)] == [1.0, 2.0]
    store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("3",)
        intervals = conn.execute("SELECT metric_id, interval FROM intervals ORDER BY 1").fetchall()
        assert intervals == [(1, 5.0), (2, 1.0), (3, 3600.0)]
        assert conn.execute("SELECT count(*) FROM samples WHERE t0 > ts OR ts >= t0 + interval").fetchone() == (0,)
    conn.close()


def test_rows_made_before_a_retention_pass_forgot_their_series_are_made_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SQLiteStore(f"sqlite:///{tmp_path / 'store.db'}")
    store.write_batch(_batch([Sample("h1", "cpu", 0.1, T0)], 5.0))
    made_alone = store._series_rows

    def retention_meanwhile(batch: Batch, *args: object) -> object:
        rows = made_alone(batch, *args)
        if not args:  # made outside the write lock, with h1's series id: now retention forgets h1
            assert store.delete_before(T0 + 1) == 1
        return rows

    monkeypatch.setattr(store, "_series_rows", retention_meanwhile)
    assert store.write_batch(_batch([Sample("h1", "cpu", 0.7, T0 + 3600)], 5.0)).stored == 1
    assert [s.value for s in store.series("h1", "cpu", T0, T0 + 7200)] == [0.7]
    assert [s.value for s in store.latest(resource_ids=["h1"])] == [0.7]
    store.close()


@pytest.mark.parametrize("interval", [0.0625, 0.0015, 1.0625, 0.1111, 7.0, 86_400.0])
def test_an_upgrade_gives_back_the_interval_agents_send(tmp_path: Path, interval: float) -> None:
    path = tmp_path / "old.db"
    k0 = int(T0 // interval)
    stamps = [(k0 + i + f) * interval for i, f in zip(range(40), [0.05, 0.5, 0.95, 0.2] * 10, strict=True)]
    with sqlite3.connect(path) as conn:
        conn.executescript(_V2)
        conn.execute("INSERT INTO metrics VALUES (1, 'cpu')")
        conn.execute(
            "INSERT INTO series VALUES (1, 'h', 1, '', 'host', ?, ?, 0.5)", (int(stamps[-1] // interval), stamps[-1])
        )
        conn.executemany(
            "INSERT INTO samples VALUES (?, 1, 1, ?, ?)", [(int(ts // interval), ts, i) for i, ts in enumerate(stamps)]
        )
    conn.close()
    store = SQLiteStore(f"sqlite:///{path}")
    assert len(store.series("h", "cpu", T0 - 1e7, T0 + 1e7)) == len(stamps)
    # Every sample sent again under a new batch id keeps its identity: nothing is stored twice.
    assert store.write_batch(_batch([Sample("h", "cpu", 9.0, ts) for ts in stamps], interval)).stored == 0
    store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT DISTINCT interval FROM samples").fetchall() == [(interval,)]
    conn.close()


def test_an_upgrade_hands_out_no_id_of_a_deleted_series_and_leaves_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(_V2)
        conn.execute("INSERT INTO metrics VALUES (1, 'cpu')")
        conn.execute("INSERT INTO series VALUES (1, 'a', 1, '', '', ?, ?, 0.1)", (int(T0 // 5), T0))
        conn.execute("INSERT INTO series VALUES (2, 'gone', 1, '', '', ?, ?, 0.1)", (int(T0 // 10), T0))
        conn.execute("INSERT INTO samples VALUES (?, 1, 1, ?, 0.1)", (int(T0 // 5), T0))
        conn.execute("INSERT INTO samples VALUES (?, 2, 1, ?, 0.9)", (int((T0 + 20) // 10), T0 + 20))
        conn.execute("DELETE FROM series WHERE id = 2")  # layout 2's retention could leave its samples behind
    conn.close()
    store = SQLiteStore(f"sqlite:///{path}")
    store.write_batch(_batch([Sample("new", "cpu", 0.5, T0 + 100)], 5.0))
    assert [(s.timestamp, s.value) for s in store.series("new", "cpu", T0 - 100, T0 + 200)] == [(T0 + 100, 0.5)]
    assert store.counts()["samples"] == 2
    store.close()


def test_a_window_read_sees_a_batch_whole_or_not_at_all(tmp_path: Path) -> None:
    store = SQLiteStore(f"sqlite:///{tmp_path / 'store.db'}")
    store.write_batch(_batch([Sample("h1", "cpu", 0.1, T0)], 5.0))
    late = _batch([Sample("h2", "cpu", 0.2, T0), Sample("h2", "cpu", 0.3, T0 + 20)], 5.0)  # one atomic batch
    committed = []

    def commit_meanwhile(sql: str) -> None:  # another writer commits between the read's statements
        if sql.lstrip().startswith("WITH RECURSIVE") and not committed:
            committed.append(store.write_batch(late))

    store._reader().set_trace_callback(commit_meanwhile)
    seen = store.window_values("cpu", T0 - 60, T0 + 60)
    store._reader().set_trace_callback(None)
    assert committed and committed[0].stored == 2
    assert seen == [("h1", T0, 0.1)]  # the state the read began with
    assert len(store.window_values("cpu", T0 - 60, T0 + 60)) == 3
    store.close()
