"""The controller's event log on a real SQLite store: written at once, kept while the store refuses, in order."""

from __future__ import annotations

from pathlib import Path

from loadpilot.control.events import PENDING_MAX, EventLog, reason_kind
from loadpilot.store import open_store


def test_reasons_of_one_kind_compare_equal_whatever_their_numbers() -> None:
    assert reason_kind("target: cpu 0.31 per worker within 10% of 0.7; keep 3") == reason_kind(
        "target: cpu 0.52 per worker within 10% of 0.7; keep 4"
    )
    assert reason_kind("held: a scale is in progress") != reason_kind("cooldown: last scale-out 3 s ago")


def test_an_event_is_in_the_store_at_once_with_its_details(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    try:
        log = EventLog(store)
        log.add(100.0, "scale", "pool/web", "target: 2.0x the target -> 4", "ok", {"from": 2, "to": 4, "epoch": 3})
        [event] = store.events(kind="scale")
        assert (event.time, event.subject, event.reason, event.result) == (
            100.0,
            "pool/web",
            "target: 2.0x the target -> 4",
            "ok",
        )
        assert event.details == {"from": 2, "to": 4, "epoch": 3}
        assert not log.pending
    finally:
        store.close()


def test_events_wait_while_the_store_refuses_and_are_written_in_order_later(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    store = open_store(url)
    log = EventLog(store)
    log.add(1.0, "scale", "pool/web", "first", "ok")
    store.close()  # the store refuses every write from now on
    log.add(2.0, "hold", "pool/web", "second", "kept")
    log.add(3.0, "scale", "pool/web", "third", "ok")
    assert [e.reason for e in log.pending] == ["second", "third"]
    reopened = open_store(url)
    try:
        log.store = reopened
        log.flush()
        assert not log.pending
        found = sorted(reopened.events(), key=lambda e: e.id or 0)
        assert [(e.time, e.reason) for e in found] == [(1.0, "first"), (2.0, "second"), (3.0, "third")]
    finally:
        reopened.close()


def test_the_queue_is_bounded_oldest_dropped_and_counted(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    store.close()
    log = EventLog(store)
    for i in range(PENDING_MAX + 5):
        log.add(float(i), "hold", "pool/web", f"r{i}", "kept")
    assert len(log.pending) == PENDING_MAX
    assert log.dropped == 5
    assert log.pending[0].reason == "r5"
