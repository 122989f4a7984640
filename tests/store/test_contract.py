"""The store contract: what the controller and the server rely on, for every backend."""

from __future__ import annotations

import random
import sqlite3
import threading
import uuid

import psycopg
import pytest

from loadpilot.errors import PermanentError
from loadpilot.model import Batch, Event, Resource, Sample
from loadpilot.store import Store, group_stats, open_store, window_stats
from loadpilot.store.sqlite import path_from_url

T0 = 1_700_000_000.0


def batch(samples: list[Sample], resources: tuple[Resource, ...] = (), interval: float = 1.0) -> Batch:
    return Batch(uuid.uuid4().hex, "agent-1", interval, tuple(samples), resources)


def test_same_identity_twice_keeps_one_row(store: Store) -> None:
    first = store.write_batch(batch([Sample("h1", "cpu", 0.5, T0 + 0.2)]))
    # Another batch, same resource and metric, same 1 s slot: the identity is (resource, metric, slot).
    second = store.write_batch(batch([Sample("h1", "cpu", 0.9, T0 + 0.7)]))
    assert (first.stored, second.stored) == (1, 0)
    assert store.counts()["samples"] == 1
    assert [s.value for s in store.series("h1", "cpu", T0, T0 + 10)] == [0.5]


def test_a_batch_id_seen_before_stores_nothing(store: Store) -> None:
    b = batch([Sample("h1", "cpu", 0.5, T0), Sample("h1", "cpu", 0.6, T0 + 1)])
    assert store.write_batch(b).duplicate is False
    again = store.write_batch(b)
    assert again.duplicate is True and again.stored == 0
    assert store.counts() | {"events": 0} == {"resources": 0, "samples": 2, "batches": 1, "events": 0}


def test_slots_follow_the_batch_interval(store: Store) -> None:
    samples = [Sample("h1", "cpu", float(i), T0 + i) for i in range(10)]
    result = store.write_batch(batch(samples, interval=5.0))
    assert result.stored == 2  # 10 seconds at a 5 s interval are two slots
    assert [s.value for s in store.series("h1", "cpu", T0, T0 + 10)] == [0.0, 5.0]


def test_latest_per_resource_and_metric(store: Store) -> None:
    store.write_batch(
        batch(
            [
                Sample("h1", "cpu", 0.1, T0),
                Sample("h1", "cpu", 0.2, T0 + 1),
                Sample("h1", "mem", 7.0, T0),
                Sample("h2", "cpu", 0.3, T0 + 5, unit="ratio", source="host"),
            ]
        )
    )
    got = {(s.resource_id, s.metric): (s.value, s.timestamp) for s in store.latest()}
    assert got == {("h1", "cpu"): (0.2, T0 + 1), ("h1", "mem"): (7.0, T0), ("h2", "cpu"): (0.3, T0 + 5)}
    only = store.latest(metric="cpu", resource_ids=["h2"])
    assert only == [Sample("h2", "cpu", 0.3, T0 + 5, "ratio", "host")]


def test_series_is_a_half_open_range_oldest_first(store: Store) -> None:
    store.write_batch(batch([Sample("h1", "cpu", float(i), T0 + i) for i in range(10)][::-1]))
    got = store.series("h1", "cpu", T0 + 2, T0 + 5)
    assert [s.value for s in got] == [2.0, 3.0, 4.0]
    assert len(store.series("h1", "cpu", T0, T0 + 100, limit=4)) == 4


def test_window_stats_per_resource(store: Store) -> None:
    store.write_batch(batch([Sample("w1", "cpu", float(v), T0 + i) for i, v in enumerate(range(1, 21))]))
    store.write_batch(batch([Sample("w2", "cpu", 0.5, T0 + i) for i in range(20)]))
    stats = {s.key: s for s in window_stats(store, "cpu", window_s=10, now=T0 + 20)}
    w1 = stats["w1"]
    assert (w1.count, w1.mean, w1.max, w1.latest) == (10, 15.5, 20.0, 20.0)  # values 11..20
    assert w1.p95 == pytest.approx(19.55)
    assert stats["w2"].mean == 0.5 and stats["w2"].p95 == 0.5


def test_group_stats_aggregate_every_member(store: Store) -> None:
    resources = (
        Resource("w1", "worker", {"pool": "web"}),
        Resource("w2", "worker", {"pool": "web"}),
        Resource("w3", "worker", {"pool": "api"}),
    )
    samples = [Sample(f"w{n}", "cpu", n / 10, T0 + i) for n in (1, 2, 3) for i in range(5)]
    store.write_batch(batch(samples, resources))
    stats = {s.key: s for s in group_stats(store, "cpu", window_s=60, now=T0 + 30, label="pool")}
    assert set(stats) == {"web", "api"}
    assert stats["web"].count == 10 and stats["web"].mean == pytest.approx(0.15)
    assert stats["web"].max == pytest.approx(0.2)
    assert stats["api"].count == 5


def test_resources_with_kind_and_labels(store: Store) -> None:
    res = (Resource("h1", "host", {"rack": "a"}), Resource("p1", "process", {"host": "h1", "group": "web"}))
    store.write_batch(batch([Sample("h1", "cpu", 0.1, T0)], res))
    assert store.resources() == list(res)
    assert store.resources(kind="process") == [res[1]]
    assert store.resources(labels={"group": "web"}) == [res[1]]
    assert store.resources(labels={"group": "db"}) == []
    # Labels change: the newest description wins.
    store.write_batch(batch([], (Resource("h1", "host", {"rack": "b"}),)))
    assert store.resources(kind="host") == [Resource("h1", "host", {"rack": "b"})]


def test_events_newest_first_and_filtered(store: Store) -> None:
    ids = [
        store.add_event(Event(T0 + i, "scale" if i % 2 else "restart", f"pool/{i}", "why", "ok", {"n": i}))
        for i in range(6)
    ]
    assert ids == sorted(ids) and len(set(ids)) == 6
    got = store.events()
    assert [e.id for e in got] == ids[::-1]
    assert got[0].details == {"n": 5} and got[0].reason == "why"
    assert [e.subject for e in store.events(kind="scale")] == ["pool/5", "pool/3", "pool/1"]
    assert [e.subject for e in store.events(since=T0 + 4)] == ["pool/5", "pool/4"]
    assert [e.subject for e in store.events(after_id=ids[3])] == ["pool/5", "pool/4"]
    assert len(store.events(limit=2)) == 2
    assert [e.id for e in store.events(subject="pool/2")] == [ids[2]]


def test_events_filtered_by_result_and_subject_prefix(store: Store) -> None:
    subjects = ["pool/web", "pool/web/w1", "pool/webby", "web", "host h1 is hot", "controller/c1"]
    for i, subject in enumerate(subjects):
        store.add_event(Event(T0 + i, "scale", subject, "why", "ok" if i % 2 else "error"))
    assert [e.subject for e in store.events(result="error")] == ["host h1 is hot", "pool/webby", "pool/web"]
    assert [e.subject for e in store.events(subject_prefix="pool/web/")] == ["pool/web/w1"]
    assert [e.subject for e in store.events(subject_prefix="pool/web")] == ["pool/webby", "pool/web/w1", "pool/web"]
    assert [e.subject for e in store.events(subject="web", result="ok", limit=1)] == ["web"]
    assert store.events(subject_prefix="%") == []


def test_buckets_are_means_per_resource_and_step(store: Store) -> None:
    resources = (Resource("h1", "host", {}), Resource("h2", "host", {}), Resource("v1", "vm", {"host": "h1"}))
    samples = [Sample(r.id, "cpu", n * 10.0 + i, T0 + i * 5) for n, r in enumerate(resources) for i in range(12)]
    samples.append(Sample("h1", "mem", 99.0, T0))
    store.write_batch(batch(samples, resources, interval=5.0))
    # [T0 + 5, T0 + 55) in 20 s steps: buckets 0 (i = 1..4), 1 (i = 5..8), 2 (i = 9, 10); i = 11 is at the end.
    got = store.buckets("cpu", T0 + 5, T0 + 55, 20, kind="host")
    assert got == [("h1", 0, 2.5), ("h1", 1, 6.5), ("h1", 2, 9.5), ("h2", 0, 12.5), ("h2", 1, 16.5), ("h2", 2, 19.5)]
    assert store.buckets("cpu", T0, T0 + 60, 30, resource_ids=["v1"]) == [("v1", 0, 22.5), ("v1", 1, 28.5)]
    assert store.buckets("cpu", T0, T0 + 60, 60, kind="vm", resource_ids=["h1"]) == []
    assert store.buckets("cpu", T0, T0 + 60, 60, resource_ids=[]) == []
    assert store.buckets("nothing", T0, T0 + 60, 60) == []
    assert [b for _, b, _ in store.buckets("cpu", T0 + 0.5, T0 + 60, 7.5, resource_ids=["h1"])] == list(range(8))


def test_a_metric_reported_at_several_intervals_reads_as_one(store: Store) -> None:
    # h1 every 5 s, h2 every second, v1 every 60 s: one metric, three intervals, one window.
    store.write_batch(batch([Sample("h1", "cpu", float(i), T0 + i + 0.5) for i in range(0, 30, 5)], interval=5.0))
    store.write_batch(batch([Sample("h2", "cpu", float(i), T0 + i + 0.5) for i in range(30)], interval=1.0))
    store.write_batch(batch([Sample("v1", "cpu", 7.0, T0 + 59.0)], interval=60.0))
    got = store.window_values("cpu", T0 + 9, T0 + 21)
    assert sorted((r, v) for r, _, v in got) == sorted(
        [("h1", 10.0), ("h1", 15.0), ("h1", 20.0)] + [("h2", float(i)) for i in range(9, 21)]
    )
    assert [ts for _, ts, _ in got] == sorted(ts for _, ts, _ in got)
    assert [s.value for s in store.series("h1", "cpu", T0 + 4, T0 + 16)] == [5.0, 10.0, 15.0]
    assert store.window_values("cpu", T0 + 58, T0 + 60) == [("v1", T0 + 59.0, 7.0)]
    assert store.buckets("cpu", T0, T0 + 30, 30, resource_ids=["h1", "h2"]) == [("h1", 0, 12.5), ("h2", 0, 14.5)]


def test_retention_removes_old_samples_only(store: Store) -> None:
    store.write_batch(batch([Sample("h1", "cpu", float(i), T0 + i) for i in range(100)]))
    removed = store.delete_before(T0 + 60)
    assert removed == 60
    left = store.series("h1", "cpu", 0, T0 + 1000)
    assert [s.value for s in left][:1] == [60.0] and len(left) == 40


def test_large_batch_round_trips(store: Store) -> None:
    samples = [Sample(f"r{i % 50}", f"m{i // 50}", i * 0.5, T0 + 3) for i in range(5000)]
    assert store.write_batch(batch(samples)).stored == 5000
    assert len(store.latest()) == 5000
    assert sum(s.value for s in store.latest(metric="m0")) == pytest.approx(sum(i * 0.5 for i in range(50)))


def test_concurrent_writers_store_everything_once(store: Store) -> None:
    """Many threads at once (the server's thread pool): every batch lands once, resends are duplicates."""

    batches = [batch([Sample(f"r{t}", "m", float(i), T0 + i) for i in range(50)]) for t in range(16)]
    results: list[bool] = []
    lock = threading.Lock()

    def send(b: Batch) -> None:
        for _ in range(2):  # the second send of the same batch id must be a duplicate
            r = store.write_batch(b)
            with lock:
                results.append(r.duplicate)

    threads = [threading.Thread(target=send, args=(b,)) for b in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 16 + [True] * 16
    assert store.counts()["samples"] == 16 * 50


def test_latest_after_concurrent_writes_to_one_series_is_the_newest(store: Store) -> None:
    """Batches written together in one group (SQLite) or side by side: the newest slot wins, whatever the order."""
    slots = [7, 3, 15, 0, 11, 15, 2, 9] * 2
    batches = [
        batch([Sample("h1", "cpu", float(n), T0 + s), Sample("h1", "cpu", -1.0, T0 + s - 0.5)])
        for n, s in enumerate(slots)
    ]
    threads = [threading.Thread(target=store.write_batch, args=(b,)) for b in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    [latest] = store.latest()
    assert latest.timestamp == T0 + 15
    assert latest.value in {2.0, 5.0, 10.0, 13.0}  # whichever batch of slot 15 was stored first


def test_latest_is_not_overwritten_by_an_older_resend(store: Store) -> None:
    store.write_batch(batch([Sample("h1", "cpu", 0.9, T0 + 10)]))
    store.write_batch(batch([Sample("h1", "cpu", 0.1, T0 + 5)]))  # late arrival of an older slot
    assert [(s.value, s.timestamp) for s in store.latest()] == [(0.9, T0 + 10)]
    store.delete_before(T0 + 20)
    assert store.latest() == []


def test_latest_of_many_series_in_one_batch_is_each_ones_newest_slot(store: Store) -> None:
    # 250 series, three slots each, in no order, twice in the newest slot: the first sample of the newest slot wins.
    rng = random.Random(7)
    samples = [Sample(f"r{i}", "cpu", float(i * 10 + k), T0 + k * 5, "ratio") for i in range(250) for k in range(3)]
    samples += [Sample(f"r{i}", "cpu", -1.0, T0 + 11) for i in range(250)]  # slot of k = 2, later: not stored
    rng.shuffle(samples)
    samples.sort(key=lambda s: s.value == -1.0)  # the late ones after the first of their slot
    assert store.write_batch(batch(samples, interval=5.0)).stored == 750
    latest = {s.resource_id: s for s in store.latest("cpu")}
    assert {rid: s.value for rid, s in latest.items()} == {f"r{i}": float(i * 10 + 2) for i in range(250)}
    assert {s.timestamp for s in latest.values()} == {T0 + 10} and {s.unit for s in latest.values()} == {"ratio"}
    store.write_batch(batch([Sample(f"r{i}", "cpu", 5.0, T0) for i in range(250)], interval=5.0))  # older again
    assert {s.value for s in store.latest("cpu")} == {float(i * 10 + 2) for i in range(250)}


def test_a_slot_keeps_its_first_sample_in_series_and_latest(store: Store) -> None:
    result = store.write_batch(batch([Sample("h1", "cpu", 0.9, T0 + 5), Sample("h1", "cpu", 0.1, T0 + 3)], interval=10))
    assert result.stored == 1
    assert [(s.value, s.timestamp) for s in store.series("h1", "cpu", T0, T0 + 10)] == [(0.9, T0 + 5)]
    assert [(s.value, s.timestamp) for s in store.latest("cpu")] == [(0.9, T0 + 5)]


def test_a_series_that_changes_interval_keeps_both_and_its_newest(store: Store) -> None:
    t = 1_699_999_980.0  # a multiple of 60: the minute's slot starts where a 10 s slot does
    store.write_batch(batch([Sample("h1", "cpu", float(i), t + 1 + i * 10) for i in range(3)], interval=10))
    assert store.write_batch(batch([Sample("h1", "cpu", 9.0, t + 55)], interval=60)).stored == 1
    assert store.write_batch(batch([Sample("h1", "cpu", 8.0, t + 50)], interval=60)).stored == 0  # its minute
    assert [s.value for s in store.series("h1", "cpu", t, t + 60)] == [0.0, 1.0, 2.0, 9.0]
    assert [(s.value, s.timestamp) for s in store.latest("cpu")] == [(9.0, t + 55)]
    assert [v for _, _, v in store.window_values("cpu", t + 30, t + 60)] == [9.0]


def test_latest_never_names_a_sample_the_store_did_not_keep(store: Store) -> None:
    t = 1_700_000_000.0  # a 10 s and a 5 s slot start
    assert store.write_batch(batch([Sample("h1", "cpu", 0.1, t + 1)], interval=10)).stored == 1
    assert store.write_batch(batch([Sample("h1", "cpu", 0.2, t + 3)], interval=5)).stored == 1  # back to 5 s
    # Back at 10 s, in the slot of the first sample: that slot keeps its first sample, so this one is not stored.
    assert store.write_batch(batch([Sample("h1", "cpu", 0.3, t + 7)], interval=10)).stored == 0
    assert [(s.value, s.timestamp) for s in store.series("h1", "cpu", t, t + 10)] == [(0.1, t + 1), (0.2, t + 3)]
    assert [(s.value, s.timestamp) for s in store.latest("cpu")] == [(0.2, t + 3)]
    # Retention past every stored sample forgets the series: nothing of it is left to be seen or stored twice.
    store.delete_before(t + 5)
    assert store.latest("cpu") == []
    assert store.write_batch(batch([Sample("h1", "cpu", 0.4, t + 8)], interval=10)).stored == 1
    assert store.write_batch(batch([Sample("h1", "cpu", 0.4, t + 8)], interval=10)).stored == 0
    assert [(s.value, s.timestamp) for s in store.series("h1", "cpu", t, t + 10)] == [(0.4, t + 8)]
    assert [(s.value, s.timestamp) for s in store.latest("cpu")] == [(0.4, t + 8)]


def test_a_reopened_store_stores_nothing_twice(store: Store) -> None:
    store.write_batch(batch([Sample("h1", "cpu", 0.5, T0)]))
    again = open_store(store.url)
    try:
        assert again.write_batch(batch([Sample("h1", "cpu", 0.7, T0)])).stored == 0
        assert again.write_batch(batch([Sample("h1", "cpu", 0.7, T0 + 1)])).stored == 1
        assert [(s.value, s.timestamp) for s in again.latest()] == [(0.7, T0 + 1)]
    finally:
        again.close()


def test_a_store_of_another_layout_version_is_refused(store: Store) -> None:
    update = "UPDATE meta SET value = '999' WHERE key = 'schema_version'"
    if store.url.startswith("sqlite:"):
        with sqlite3.connect(path_from_url(store.url)) as conn:
            conn.execute(update)
    else:
        with psycopg.connect(store.url) as pg:
            pg.execute(update)
    with pytest.raises(PermanentError, match=r"store\.url: .* layout version 999"):
        open_store(store.url)
