"""The dashboard's JSON reads over a real SQLite store: numbers computed from the samples written, 404s, read auth,
the coordination view over a real file backend, and the overview's weight for 1,000 hosts."""

from __future__ import annotations

import asyncio
import gzip
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from loadpilot.config import parse_config
from loadpilot.coord import CoordSettings, SharedWork
from loadpilot.model import Batch, Event, Resource, Sample
from loadpilot.server.dashboard_api import CoordinationView
from loadpilot.server.dashboard_data import Window
from loadpilot.store import Store
from tests.helpers import free_port
from tests.server.conftest import NOW, Api
from tests.server.fleet import XSS_NAME, write_fleet

DASH = "/api/v1/dash"
TOKEN = "dash-token"
# window_s = 60: twelve 5 s buckets, the last one [NOW, NOW + 5); a sample at NOW - 10 or NOW - 8 is in bucket 9.
WINDOW = "?window_s=60"
EMPTY = [None] * 12


def at(bucket_values: dict[int, Any]) -> list[Any]:
    """A 12-bucket series with the given values, null elsewhere."""
    return [bucket_values.get(i) for i in range(12)]


RESOURCES = (
    Resource("h1", "host", {"host": "h1", "cores": "4"}),
    Resource("h2", "host", {"host": "h2"}),
    Resource("rack/1/h3", "host", {"host": "h3"}),
    Resource("vm/a", "vm", {"host": "h1", "name": "a"}),
    Resource("vm/b", "vm", {"host": "h1", "name": "b"}),
    Resource("vm/c", "vm", {"host": "h2", "name": "c"}),
    Resource("pool/web", "pool", {"pool": "web", "host": "h1", "mode": "ports"}),
    Resource("pool/web/w0", "pool_worker", {"pool": "web", "host": "h1", "worker": "w0", "port": "8481"}),
    Resource("pool/web/w1", "pool_worker", {"pool": "web", "host": "h1", "worker": "w1", "port": "8482"}),
    Resource("pool/web/w2", "pool_worker", {"pool": "web", "host": "h1", "worker": "w2", "port": "8483"}),
)


def _samples() -> list[Sample]:
    s = []
    for rid, metric, points in (
        ("h1", "cpu.util", {-10: 0.2, -8: 0.3, 0: 0.55}),
        ("h1", "mem.util", {0: 0.5}),
        ("h1", "net.rx_bytes_per_s", {-30: 1000.0, -28: 3000.0}),
        ("h2", "cpu.util", {0: 0.9}),
        ("rack/1/h3", "cpu.util", {-1: 0.125}),
        ("vm/a", "cpu.util", {0: 0.7}),
        ("vm/a", "mem.util", {0: 0.25}),
        ("vm/c", "cpu.util", {0: 0.1}),
        ("pool/web", "pool.desired", {-10: 2.0, 0: 3.0}),
        ("pool/web", "pool.size", {0: 2.0}),
        ("pool/web", "pool.ready", {0: 2.0}),
        ("pool/web", "pool.failed", {0: 0.0}),
        ("pool/web/w0", "cpu.util", {-10: 0.4, 0: 0.6}),
        ("pool/web/w0", "http.requests_rate", {-10: 10.0, 0: 12.0}),
        ("pool/web/w0", "http.requests_total", {0: 500.0}),
        ("pool/web/w0", "http.latency_p95", {0: 0.1}),
        ("pool/web/w0", "http.in_flight", {0: 2.0}),
        ("pool/web/w0", "worker.ready", {0: 1.0}),
        ("pool/web/w0", "worker.restarts", {0: 2.0}),
        ("pool/web/w0", "mem.rss_bytes", {0: 5e7}),
        ("pool/web/w1", "cpu.util", {0: 0.2}),
        ("pool/web/w1", "http.requests_rate", {0: 5.0}),
        ("pool/web/w1", "http.latency_p95", {0: 0.3}),
        ("pool/web/w1", "http.in_flight", {0: 4.0}),
        ("pool/web/w1", "worker.ready", {0: 0.0}),
        ("pool/web/w2", "cpu.util", {-40: 0.9}),  # gone: nothing for 3 agent intervals, and 30 s
        ("pool/web/w2", "worker.ready", {-40: 1.0}),
    ):
        s += [Sample(rid, metric, value, NOW + dt) for dt, value in points.items()]
    return s


EVENT_SUBJECTS = ["web", "web/w0", "pool/web", "pool/web/w0", "pool/webby", "webby", "api", "vm/a", "h2", "h1"]


@pytest.fixture
def cluster(store: Store) -> list[int]:
    """The cluster above in the store; returns the events' ids, in EVENT_SUBJECTS' order."""
    store.write_batch(Batch(uuid.uuid4().hex, "a1", 1.0, tuple(_samples()), RESOURCES))
    return [
        store.add_event(Event(NOW - 100 + i, "scale", subject, f"reason {i}", "ok" if i % 2 else "error"))
        for i, subject in enumerate(EVENT_SUBJECTS)
    ]


def _pools(metric: str = "cpu", target: float = 0.5) -> list[dict[str, Any]]:
    autoscale = {"metric": metric, "target": target, "policy": "target"}
    return [{"name": "web", "command": "app --port {port}", "mode": "ports", "autoscale": autoscale}]


def _ok(api: Api, path: str) -> dict[str, Any]:
    r = api.get(path)
    assert r.status_code == 200, r.text
    doc: dict[str, Any] = r.json()
    return doc


# --- the buckets ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("window_s", "step_s", "count"), [(60, 5, 12), (300, 5, 60), (900, 15, 60), (3601, 61, 60), (86400, 1440, 60)]
)
def test_window_has_at_most_60_aligned_buckets_ending_after_now(window_s: int, step_s: int, count: int) -> None:
    w = Window.ending_at(NOW + 2.5, window_s)
    assert (w.step_s, w.count) == (step_s, count)
    assert w.start % step_s == 0 and w.end - step_s <= NOW + 2.5 < w.end
    assert w.times() == list(range(w.start, w.end, step_s))


# --- overview -------------------------------------------------------------------------------------------------------


def test_overview_counts_hosts_heat_and_pools(api: Api, cluster: list[int]) -> None:
    doc = _ok(api, f"{DASH}/overview{WINDOW}")
    assert (doc["now"], doc["window_s"], doc["step_s"]) == (NOW, 60, 5)
    assert doc["counts"] == {"hosts": 3, "vms": 3, "pools": 1, "workers": 2}  # w2 is gone
    assert doc["hosts"] == [
        {"id": "h1", "name": "h1", "cpu": 0.55, "mem": 0.5, "vms": 2, "workers": 2, "last_seen": NOW},
        {"id": "h2", "name": "h2", "cpu": 0.9, "mem": None, "vms": 1, "workers": 0, "last_seen": NOW},
        {"id": "rack/1/h3", "name": "h3", "cpu": 0.125, "mem": None, "vms": 0, "workers": 0, "last_seen": NOW - 1},
    ]
    heat = doc["heat"]
    assert (heat["metric"], heat["start"], heat["step_s"]) == ("cpu.util", NOW - 55, 5)
    assert heat["rows"] == [at({9: 25, 11: 55}), at({11: 90}), at({10: 12})]  # means per bucket, in percent
    (web,) = doc["pools"]
    assert {k: v for k, v in web.items() if k != "series"} == {
        "name": "web",
        "host": "h1",
        "desired": 3.0,
        "size": 2.0,
        "ready": 2.0,
        "failed": 0.0,
        "cpu": 0.4,  # mean of the live workers' (w0 0.6, w1 0.2); w2 is gone
        "rps": 17.0,
        "p95": 0.3,
        "reporting": True,
        "last_seen": NOW,
    }
    series = web["series"]
    assert series["t"] == [NOW - 55 + 5 * i for i in range(12)]
    assert series["desired"] == at({9: 2.0, 11: 3.0}) and series["ready"] == at({11: 2.0})
    assert series["cpu"] == at({3: 0.9, 9: 0.4, 11: 0.4})
    assert series["rps"] == at({9: 10.0, 10: 10.0, 11: 17.0})  # a total carries a worker's value over one gap
    assert series["p95"] == at({11: 0.3})
    assert [e["subject"] for e in doc["events"]] == EVENT_SUBJECTS[::-1]
    assert set(doc["events"][0]) == {"id", "time", "kind", "subject", "reason", "result", "details"}


def test_overview_of_an_empty_store(api: Api) -> None:
    doc = _ok(api, f"{DASH}/overview")
    assert (doc["window_s"], doc["step_s"]) == (900, 15)
    assert doc["counts"] == {"hosts": 0, "vms": 0, "pools": 0, "workers": 0}
    assert doc["hosts"] == [] and doc["heat"]["rows"] == [] and doc["pools"] == [] and doc["events"] == []


@pytest.mark.parametrize("window_s", ["59", "86401", "abc"])
def test_window_out_of_range_is_422(api: Api, window_s: str) -> None:
    for path in ("overview", "pools/web", "hosts/h1"):
        assert api.get(f"{DASH}/{path}?window_s={window_s}").status_code == 422


def test_only_the_newest_20_events(api: Api, store: Store) -> None:
    ids = [store.add_event(Event(NOW + i, "hold", f"pool/p{i}", "keep", "ok")) for i in range(25)]
    assert [e["id"] for e in _ok(api, f"{DASH}/overview")["events"]] == ids[::-1][:20]


# --- a pool ---------------------------------------------------------------------------------------------------------


def test_pool_page(make_api: Callable[..., Api], cluster: list[int]) -> None:
    api = make_api(pools=_pools("cpu", 0.5))
    doc = _ok(api, f"{DASH}/pools/web{WINDOW}")
    assert (doc["name"], doc["now"], doc["window_s"], doc["step_s"]) == ("web", NOW, 60, 5)
    assert doc["latest"] == {
        "desired": 3.0,
        "size": 2.0,
        "ready": 2.0,
        "failed": 0.0,
        "cpu": 0.4,
        "rps": 17.0,
        "p95": 0.3,
        "reporting": True,
        "last_seen": NOW,
    }
    w0, w1, w2 = doc["workers"]
    assert w0 == {
        "id": "pool/web/w0",
        "worker": "w0",
        "host": "h1",
        "port": "8481",
        "state": "ready",
        "cpu": 0.6,
        "rss": 5e7,
        "requests_total": 500.0,
        "rps": 12.0,
        "p95": 0.1,
        "restarts": 2,
        "last_seen": NOW,
    }
    assert (w1["state"], w1["restarts"], w1["requests_total"]) == ("not ready", None, None)
    assert (w2["state"], w2["last_seen"]) == ("gone", NOW - 40)
    series = doc["series"]
    assert series["cpu"] == at({3: 0.9, 9: 0.4, 11: 0.4})
    # The workers' summed CPU / 0.5 cores per worker; a worker's reading carries over one empty bucket.
    assert series["demand"] == at({3: 1.8, 4: 1.8, 9: 0.8, 10: 0.8, 11: 1.6})
    assert [e["subject"] for e in doc["events"]] == ["pool/web/w0", "pool/web", "web/w0", "web"]
    assert doc["autoscale"] == {
        "policy": "target",
        "metric": "cpu",
        "target": 0.5,
        "enabled": False,
        "min": 1,
        "max": 4,
    }


def test_a_pool_that_stopped_reporting_says_so_with_its_last_sizes(api: Api, cluster: list[int]) -> None:
    api.clock.t = NOW + 60  # the pool's newest reading is a minute old: its supervisor stopped
    doc = _ok(api, f"{DASH}/pools/web{WINDOW}")
    assert (doc["latest"]["reporting"], doc["latest"]["last_seen"], doc["latest"]["desired"]) == (False, NOW, 3.0)
    assert doc["latest"]["rps"] is None  # no live worker left to measure
    assert {w["state"] for w in doc["workers"]} == {"gone"}


@pytest.mark.parametrize(
    ("metric", "target", "demand"),
    [
        ("rps_per_worker", 5.0, at({9: 2.0, 10: 2.0, 11: 3.4})),  # requests/s summed over workers / 5 per worker
        ("in_flight", 2.0, at({11: 3.0})),
        ("latency_p95", 0.2, None),
    ],
)
def test_pool_demand_follows_the_autoscale_metric(
    make_api: Callable[..., Api], cluster: list[int], metric: str, target: float, demand: list[Any] | None
) -> None:
    doc = _ok(make_api(pools=_pools(metric, target)), f"{DASH}/pools/web{WINDOW}")
    assert doc["series"]["demand"] == demand
    assert doc["autoscale"]["metric"] == metric


def test_pool_without_config_has_no_demand(api: Api, cluster: list[int]) -> None:
    doc = _ok(api, f"{DASH}/pools/web")
    assert doc["autoscale"] is None and doc["series"]["demand"] is None
    assert len(doc["series"]["t"]) == 60


def test_unknown_pool_is_404(api: Api, cluster: list[int]) -> None:
    r = api.get(f"{DASH}/pools/webby")
    assert r.status_code == 404
    assert r.json()["detail"] == "no pool named 'webby' has reported"


# --- a host ---------------------------------------------------------------------------------------------------------


def test_host_page(api: Api, cluster: list[int]) -> None:
    doc = _ok(api, f"{DASH}/hosts/h1{WINDOW}")
    assert (doc["id"], doc["name"], doc["labels"]) == ("h1", "h1", {"host": "h1", "cores": "4"})
    assert (doc["now"], doc["window_s"], doc["step_s"]) == (NOW, 60, 5)
    assert doc["latest"] == {"cpu.util": 0.55, "mem.util": 0.5, "net.rx_bytes_per_s": 3000.0}
    series = doc["series"]
    assert series["t"][0] == NOW - 55 and len(series["t"]) == 12
    assert series["cpu.util"] == at({9: 0.25, 11: 0.55}) and series["mem.util"] == at({11: 0.5})
    assert series["net.rx_bytes_per_s"] == at({5: 2000.0})
    assert series["disk.write_bytes_per_s"] == EMPTY
    assert doc["vms"] == [
        {"id": "vm/a", "name": "a", "cpu": 0.7, "mem": 0.25},
        {"id": "vm/b", "name": "b", "cpu": None, "mem": None},
    ]
    assert [(w["id"], w["pool"], w["worker"], w["cpu"], w["rss"]) for w in doc["workers"]] == [
        ("pool/web/w0", "web", "w0", 0.6, 5e7),
        ("pool/web/w1", "web", "w1", 0.2, None),
        ("pool/web/w2", "web", "w2", 0.9, None),
    ]
    assert [e["subject"] for e in doc["events"]] == ["h1", "vm/a"]  # the host's own and its VMs', not h2's


def test_host_ids_may_hold_slashes(api: Api, cluster: list[int]) -> None:
    doc = _ok(api, f"{DASH}/hosts/rack/1/h3{WINDOW}")
    assert (doc["id"], doc["name"], doc["series"]["cpu.util"]) == ("rack/1/h3", "h3", at({10: 0.125}))


def test_unknown_host_is_404(api: Api, cluster: list[int]) -> None:
    for path in ("nope", "vm/a"):  # a VM is not a host
        r = api.get(f"{DASH}/hosts/{path}")
        assert r.status_code == 404 and path in r.json()["detail"]


# --- events filtered by result ----------------------------------------------------------------------------------------


def test_events_filtered_by_result(api: Api, cluster: list[int]) -> None:
    r = api.get("/api/v1/events", params={"result": "ok"})
    assert [e["subject"] for e in r.json()] == ["h1", "vm/a", "webby", "pool/web/w0", "web/w0"]
    assert api.get("/api/v1/events", params={"result": "nothing"}).json() == []


# --- read auth ------------------------------------------------------------------------------------------------------

DASH_PATHS = [f"{DASH}/overview", f"{DASH}/pools/web", f"{DASH}/hosts/h1", f"{DASH}/coordination"]


@pytest.fixture
def locked(make_api: Callable[..., Api], tmp_path: Path) -> Api:
    return make_api(server={"read_auth": "token", "read_token": TOKEN}, state_dir=str(tmp_path / "state"))


@pytest.mark.parametrize("path", DASH_PATHS)
def test_dashboard_reads_need_the_token(locked: Api, cluster: list[int], path: str) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        r = locked.get(path, headers=headers)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert locked.get(path, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


# --- coordination ---------------------------------------------------------------------------------------------------


@pytest.fixture
def agents(tmp_path: Path) -> Iterator[list[SharedWork]]:
    """Two agents sharing 20 resources through the file backend the default config uses."""
    settings = CoordSettings(url=f"file://{(tmp_path / 'state').resolve() / 'coord'}", member_timeout_s=30, tick_s=1)
    keys = [f"r{i}" for i in range(20)]
    works = [SharedWork(settings, member) for member in ("a1", "a2")]
    try:
        for work in works:
            work.start(keys)
        for slot in (1, 2, 3):
            for work in works:
                work.confirm(work.plan(keys, slot), time.time())
        yield works
    finally:
        for work in works:
            work.stop()


def test_coordination_shows_members_and_their_shares(
    make_api: Callable[..., Api], tmp_path: Path, agents: list[SharedWork]
) -> None:
    doc = _ok(make_api(state_dir=str(tmp_path / "state")), f"{DASH}/coordination")
    assert doc["namespace"] == "loadpilot" and doc["backend"].startswith("file://")
    members = {m["id"]: m for m in doc["members"]}
    assert set(members) == {"a1", "a2"} and all(m["alive"] and m["role"] == "agents" for m in members.values())
    owned = {m: members[m]["owned"] for m in members}
    assert sum(owned.values()) == 20
    assert doc["shares"] == {m: round(n / 20, 4) for m, n in owned.items()}
    assert {"leader", "last_epoch", "time"} <= set(doc)


def test_coordination_before_anyone_joined(make_api: Callable[..., Api], tmp_path: Path) -> None:
    doc = _ok(make_api(state_dir=str(tmp_path / "state")), f"{DASH}/coordination")
    assert doc["members"] == [] and doc["shares"] == {} and doc["leader"] is None
    assert not (tmp_path / "state" / "coord").exists()  # reading created nothing


def test_coordination_is_read_once_per_ttl(tmp_path: Path) -> None:
    config = parse_config({"state_dir": str(tmp_path / "state")})
    cached, fresh = CoordinationView(config, ttl_s=3600), CoordinationView(config, ttl_s=0)
    assert asyncio.run(cached.get())[1]["members"] == asyncio.run(fresh.get())[1]["members"] == []
    works = [SharedWork(CoordSettings(**config.coordination_options()), "a1")]
    works[0].start(["r1"])
    try:
        assert asyncio.run(cached.get())[1]["members"] == []  # still the first reading
        assert [m["id"] for m in asyncio.run(fresh.get())[1]["members"]] == ["a1"]
    finally:
        works[0].stop()


def test_coordination_backend_away_is_503(make_api: Callable[..., Api]) -> None:
    api = make_api(coordination={"url": f"redis://127.0.0.1:{free_port()}", "member_timeout_s": 3, "tick_s": 1})
    r = api.get(f"{DASH}/coordination")
    assert r.status_code == 503
    assert r.json()["detail"].startswith("coordination backend unavailable: ")


# --- a fleet of 1,000 hosts --------------------------------------------------------------------------------------


def test_overview_of_1000_hosts_is_small(api: Api) -> None:
    fleet = write_fleet(api.store, hosts=1000, now=NOW)
    r = api.get(f"{DASH}/overview", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200 and r.headers["content-encoding"] == "gzip"
    doc = r.json()
    assert doc["counts"]["hosts"] == 1000 and doc["counts"]["vms"] == len(fleet.vms)
    assert len(doc["heat"]["rows"]) == 1000 and all(len(row) == 60 for row in doc["heat"]["rows"])
    assert all(isinstance(v, int) and 0 <= v <= 100 for v in doc["heat"]["rows"][1])
    assert [p["name"] for p in doc["pools"]] == ["api", "web"]
    assert XSS_NAME in [h["id"] for h in doc["hosts"]]
    size = len(gzip.compress(r.content))
    assert size < 200_000, f"the overview of 1,000 hosts is {size} bytes gzipped"
