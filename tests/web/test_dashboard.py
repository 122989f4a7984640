"""The dashboard in a real browser, against a running system.

`loadpilot up` runs a server, an agent sampling this machine and a logsift pool, and a controller; the store also
holds a simulated fleet's last 15 minutes (tests/server/fleet.py), among it a host named like a script and an
event whose reason is markup. Each page must load with no console error, draw its charts from that data, show a
new event without a reload, and show the markup as text. Screenshots of every page at 1280x800 and 390x844 land in
test-results/screenshots/.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx
import pytest
import tomli_w
from playwright.sync_api import expect

from loadpilot.model import Event
from loadpilot.store import open_store
from tests.helpers import free_port, launcher, make_config, running_server, wait_for
from tests.server.fleet import XSS_NAME, XSS_REASON, write_fleet
from tests.web.conftest import TIMEZONE, VIEWPORTS, Watched

pytestmark = pytest.mark.scenario

LIVE = re.compile(r"^live")  # the header's status once a page's data has arrived
LIVE_WINDOW = "?window=120"  # 5 s buckets: the running system's own series have points within seconds

# Pixels of a canvas that are drawn in a colour (not white, black, grey or transparent): a chart with data has
# coloured lines; an empty one has only its grey grid and black labels.
COLOURED_PIXELS_JS = """
(canvas) => {
  const ctx = canvas.getContext("2d");
  const {data} = ctx.getImageData(0, 0, canvas.width, canvas.height);
  let n = 0;
  for (let i = 0; i < data.length; i += 4) {
    const [r, g, b, a] = [data[i], data[i + 1], data[i + 2], data[i + 3]];
    if (a > 128 && Math.max(r, g, b) - Math.min(r, g, b) > 60) n++;
  }
  return n;
}
"""


class System:
    """A running `loadpilot up` with a simulated fleet's history in its store."""

    def __init__(self, base: str, db: Path, host_id: str) -> None:
        self.base = base
        self.db = db
        self.host_id = host_id  # this machine, as the real agent reports it

    def add_event(self, reason: str) -> float:
        """Record an event in the store, as the controller would; returns its time."""
        store = open_store(f"sqlite:///{self.db}")
        try:
            at = time.time()
            store.add_event(Event(at, "scale", "pool/logsift", reason, "ok", {"from": 1, "to": 2}))
        finally:
            store.close()
        return at


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """`loadpilot up` (server, agent, logsift pool, controller) over a store holding a simulated fleet."""
    tmp = tmp_path_factory.mktemp("dashboard")
    port = free_port()
    front, first = free_port(), free_port()
    state = tmp / "state"
    state.mkdir()
    db = state / "loadpilot.db"
    config = tmp / "loadpilot.toml"
    config.write_text(
        tomli_w.dumps(
            {
                "state_dir": str(state),
                "server": {"port": port},
                "store": {"sqlite_synchronous": "normal"},
                "agent": {
                    "server_url": f"http://127.0.0.1:{port}",
                    "interval_s": 1.0,
                    "collectors": [
                        {"type": "host"},
                        {"type": "pool"},
                        {"type": "http_probe", "targets": [f"http://127.0.0.1:{port}/api/v1/healthz"]},
                    ],
                },
                "pools": [
                    {
                        "name": "logsift",
                        "command": ["{python}", "-m", "loadpilot.apps.logsift", "--fd", "{fd}", "--port", "{port}"],
                        "min": 1,
                        "max": 2,
                        "mode": "shared",
                        "port": front,
                        "worker_ports": [first, first + 5],
                        "autoscale": {"enabled": True, "policy": "target", "metric": "cpu", "target": 0.5},
                    }
                ],
                "control": {"tick_s": 1.0},
                "coordination": {"enabled": True, "tick_s": 0.5},
            }
        )
    )
    with launcher(tmp) as launch:
        launch("up", "--config", str(config), "--no-view", log_name="up")
        log = tmp / "up.log"
        assert wait_for(lambda: "loadpilot is up" in log.read_text(), timeout=60), log.read_text()
        base = f"http://127.0.0.1:{port}"

        # The simulated fleet's last 15 minutes, written beside what the running system stores.
        store = open_store(f"sqlite:///{db}")
        try:
            simulated = set(write_fleet(store, hosts=40, now=time.time()).hosts)
        finally:
            store.close()

        def host_with_series() -> str | None:
            """This machine's host id, once it has readings in at least three 5-second buckets."""
            hosts = httpx.get(f"{base}/api/v1/resources", params={"kind": "host"}, timeout=5).json()
            for h in hosts:
                if h["id"] in simulated:
                    continue
                points = httpx.get(f"{base}/api/v1/dash/hosts/{h['id']}", params={"window_s": 120}, timeout=5).json()[
                    "series"
                ]["cpu.util"]
                if sum(p is not None for p in points) >= 3:
                    return str(h["id"])
            return None

        def pool_reporting() -> bool:
            series = httpx.get(f"{base}/api/v1/dash/pools/logsift", params={"window_s": 120}, timeout=5)
            return series.status_code == 200 and sum(v is not None for v in series.json()["series"]["ready"]) >= 3

        assert wait_for(lambda: host_with_series() is not None and pool_reporting(), timeout=60), log.read_text()
        host_id = host_with_series()
        assert host_id is not None
        yield System(base, db, host_id)


def _open(watched: Watched, url: str) -> None:
    """Load a page and wait until its data has arrived once."""
    watched.page.goto(url)
    expect(watched.page.locator("#live")).to_have_text(LIVE, timeout=15000)


def _assert_charts_drawn(watched: Watched, at_least: int) -> None:
    """The first `at_least` charts got data and drew it (a host's disk, say, may have nothing to show)."""
    charts = watched.page.locator(".chart[data-points]")
    assert charts.count() >= at_least, f"{charts.count()} charts"
    for i in range(at_least):
        chart = charts.nth(i)
        assert int(chart.get_attribute("data-points") or 0) > 0, f"chart {i} got no data"
        canvas = chart.locator("canvas").first
        assert canvas.evaluate(COLOURED_PIXELS_JS) > 0, f"chart {i} drew no line"


def _pages(system: System) -> dict[str, tuple[str, int]]:
    """Each page: its URL and the number of charts it must draw."""
    return {
        "overview": (f"{system.base}/{LIVE_WINDOW}", 3),
        "pool": (f"{system.base}/pools/logsift{LIVE_WINDOW}", 3),
        "host": (f"{system.base}/hosts/{quote(system.host_id)}{LIVE_WINDOW}", 1),
        "events": (f"{system.base}/events", 1),
        "coordination": (f"{system.base}/coordination", 0),
    }


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
@pytest.mark.parametrize("page", ["overview", "pool", "host", "events", "coordination"])
def test_each_page_loads_without_errors_and_draws_its_charts(
    system: System, watched_page: Callable[[str], Watched], page: str, viewport: str
) -> None:
    url, charts = _pages(system)[page]
    watched = watched_page(viewport)
    _open(watched, url)
    watched.screenshot(f"{page}-{VIEWPORTS[viewport][0]}x{VIEWPORTS[viewport][1]}")
    _assert_charts_drawn(watched, charts)
    body = watched.page.inner_text("main")
    if page == "overview":
        heat = watched.page.locator(".heat canvas")
        assert heat.evaluate(COLOURED_PIXELS_JS) > 100, "the heat map is empty"
        assert "logsift" in body
    if page == "pool":
        assert watched.page.locator("table tbody tr").count() >= 1  # its workers
        assert "ready" in body
    if page == "coordination":
        members = watched.page.locator("table").first.inner_text()
        assert "agents" in members and "controllers" in members, members
        assert watched.page.locator("table").nth(1).locator("tbody tr").count() == 1  # the agent's share
    assert not watched.errors, watched.errors


def test_a_new_event_appears_without_reloading_the_page(system: System, watched_page: Callable[[str], Watched]) -> None:
    watched = watched_page("desktop")
    _open(watched, f"{system.base}/events")
    watched.page.evaluate("window.__sameDocument = true")
    reason = f"scale out 1 -> 2: a test event at {time.time():.3f}"
    at = system.add_event(reason)
    watched.page.get_by_text(reason).wait_for(timeout=10000)
    assert watched.page.evaluate("window.__sameDocument === true"), "the page reloaded"
    row = watched.page.locator("tr", has_text=reason)
    assert "fresh" in (row.get_attribute("class") or "")
    # Shown in the browser's zone (the context's is Europe/Paris), in its locale's format (en-US).
    local = dt.datetime.fromtimestamp(at, ZoneInfo(TIMEZONE))
    shown = row.locator("td").first.inner_text().replace("\u202f", " ")  # ICU puts a narrow space before AM/PM
    assert shown == local.strftime("%-I:%M:%S %p")
    assert not watched.errors, watched.errors


def test_markup_in_names_and_reasons_stays_text(system: System, watched_page: Callable[[str], Watched]) -> None:
    watched = watched_page("desktop")
    _open(watched, f"{system.base}/")
    watched.page.fill("input[type=search]", "script")
    watched.page.get_by_text(XSS_NAME, exact=True).first.wait_for(timeout=5000)
    _open(watched, f"{system.base}/events")
    watched.page.get_by_text(XSS_REASON).first.wait_for(timeout=5000)
    _open(watched, f"{system.base}/hosts/{quote(XSS_NAME, safe='')}")
    watched.page.get_by_text(XSS_NAME).first.wait_for(timeout=5000)
    _open(watched, f"{system.base}/hosts/host-0000")  # a VM there is named like a script
    watched.page.get_by_text(XSS_NAME, exact=True).first.wait_for(timeout=5000)
    assert watched.dialogs == [], "a probe ran"
    assert watched.page.evaluate("document.scripts.length") == 2, "a script element was injected"
    assert watched.page.locator("img").count() == 0
    assert not watched.errors, watched.errors


def test_reads_behind_a_token_ask_for_it_and_then_show_data(
    tmp_path: Path, watched_page: Callable[[str], Watched]
) -> None:
    config = make_config(tmp_path, free_port())
    config.server = config.server.model_validate(
        {**config.server.model_dump(), "read_auth": "token", "read_token": "reader-secret"}
    )
    store = open_store(f"sqlite:///{tmp_path / 'auth.db'}")
    try:
        write_fleet(store, hosts=5, now=time.time())
        with running_server(config, store) as base:
            watched = watched_page("desktop")
            watched.page.goto(f"{base}/")
            watched.page.locator("#token-form input").fill("reader-secret")
            watched.page.locator("#token-form button").click()
            expect(watched.page.locator("#live")).to_have_text(LIVE, timeout=15000)
            assert watched.page.locator("table tbody tr").count() >= 5
            assert watched.page.locator("#token-form").count() == 0
            # The one failed request is the first read, refused until the token was given.
            assert all("401" in e for e in watched.errors), watched.errors
    finally:
        store.close()


def test_the_overview_of_1000_hosts_weighs_under_300_kb(tmp_path: Path, watched_page: Callable[[str], Watched]) -> None:
    config = make_config(tmp_path, free_port())
    store = open_store(f"sqlite:///{tmp_path / 'fleet.db'}")
    try:
        write_fleet(store, hosts=1000, now=time.time())
        with running_server(config, store) as base:
            watched = watched_page("desktop")
            responses = []
            watched.page.on("requestfinished", lambda r: responses.append(r))
            _open(watched, f"{base}/")
            watched.page.wait_for_load_state("networkidle")
            sizes = {r.url: r.sizes() for r in responses}
            total = sum(s["responseBodySize"] + s["responseHeadersSize"] for s in sizes.values())
            assert len(watched.page.locator(".heat canvas").all()) == 1
            print(f"overview with 1,000 hosts: {total / 1024:.1f} KB transferred in {len(sizes)} responses")
            assert total < 300 * 1024, {u: s["responseBodySize"] for u, s in sizes.items()}
            assert any("/api/v1/dash/overview" in u for u in sizes)
            assert not watched.errors, watched.errors
    finally:
        store.close()
