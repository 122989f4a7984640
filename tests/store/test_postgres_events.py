"""PostgreSQL-only: event ids become visible in order, so polling with after_id misses nothing."""

from __future__ import annotations

import threading

import psycopg

from loadpilot.model import Event
from loadpilot.store import open_store


def test_an_event_waits_for_an_earlier_uncommitted_one(postgres_db: str) -> None:
    store = open_store(postgres_db)
    try:
        store.add_event(Event(1.0, "decision", "pool/a", "first", "ok"))
        done: list[int] = []
        with psycopg.connect(postgres_db) as other:
            # Another writer took an id and has not committed yet.
            other.execute(
                "INSERT INTO events (time, kind, subject, reason, result, details)"
                " VALUES (2.0, 'decision', 'pool/b', 'slow', 'ok', '{}')"
            )
            writer = threading.Thread(
                target=lambda: done.append(store.add_event(Event(3.0, "decision", "pool/c", "x", "ok")))
            )
            writer.start()
            writer.join(0.5)
            # Were this event committed now, a reader would see its id and, later, the smaller one appear.
            assert not done, "an event was committed past an earlier one still in flight"
            other.commit()
        writer.join(10)
        assert done
        seen = store.events(after_id=1)
        assert [e.subject for e in seen] == ["pool/c", "pool/b"]  # newest first, in id order
        assert seen[0].id == done[0] and seen[0].id > (seen[1].id or 0)
    finally:
        store.close()
