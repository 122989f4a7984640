"""SQLite's group commit: batches that queued while another group was written go in together, and a bad one
fails alone."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

from loadpilot.model import Batch, Sample
from loadpilot.store.sqlite import SQLiteStore

T0 = 1_700_000_000.0


def _batch(resource: str, value: object) -> Batch:
    return Batch(uuid.uuid4().hex, "agent-1", 1.0, (Sample(resource, "cpu", value, T0),))  # type: ignore[arg-type]


def test_a_bad_batch_in_a_group_fails_alone(tmp_path: Path) -> None:
    store = SQLiteStore(f"sqlite:///{tmp_path / 'store.db'}")
    good = [_batch(f"h{i}", 0.5) for i in range(6)]
    bad = _batch("h-bad", object())  # a value SQLite cannot bind: the insert raises inside the transaction
    outcomes: dict[str, object] = {}

    def send(b: Batch) -> None:
        try:
            outcomes[b.batch_id] = store.write_batch(b).stored
        except Exception as exc:  # the writer's error, raised in this batch's own thread
            outcomes[b.batch_id] = exc

    try:
        # Hold the writer while every batch queues, so they are written as one group, as under load.
        with store._write_lock:
            threads = [threading.Thread(target=send, args=(b,)) for b in [*good[:3], bad, *good[3:]]]
            for t in threads:
                t.start()
            deadline = time.monotonic() + 10
            while len(store._queue) < len(threads) and time.monotonic() < deadline:
                time.sleep(0.01)
            assert len(store._queue) == len(threads)
        for t in threads:
            t.join(10)
        assert all(outcomes[b.batch_id] == 1 for b in good), outcomes
        assert isinstance(outcomes[bad.batch_id], Exception)
        assert store.counts()["samples"] == 6 and store.counts()["batches"] == 6  # nothing of the bad batch
    finally:
        store.close()
