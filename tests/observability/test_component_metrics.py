"""Each component's /metrics: the numbers it should show, in text that `promtool check metrics` accepts."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

from loadpilot.config import Config, PoolConfig, parse_config
from loadpilot.control.controller import Controller
from loadpilot.control.seat import Seat
from loadpilot.coord import CoordSettings
from loadpilot.sense.agent import Agent
from loadpilot.store import open_store
from tests.act.pool.conftest import RunningPool, pool_config
from tests.control.conftest import AUTOSCALE
from tests.helpers import KEY, free_port, make_config, running_server, wait_for
from tests.observability.conftest import listener_of
from tests.observability.prom import promtool_check, scrape, value_of


def checked(url: str) -> str:
    """Scrape `url` and check the text with promtool (fails the test, showing promtool's complaints)."""
    text = scrape(url)
    code, output = promtool_check(text)
    assert code == 0, f"promtool check metrics failed:\n{output}\n{text}"
    return text


def test_the_server_counts_ingested_samples_and_store_rows(tmp_path: Path) -> None:
    config = make_config(tmp_path, free_port())
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    agent = Agent(config)
    try:
        with running_server(config, store) as url:
            taken = agent.collect_once(time.time())
            assert agent.shipper.ship_pending()
            text = checked(f"{url}/metrics")
    finally:
        agent.shutdown()
        store.close()
    assert value_of(text, "loadpilot_ingest_batches_total", result="stored") == 1.0
    assert value_of(text, "loadpilot_ingest_samples_total", result="stored") == len(taken)
    assert value_of(text, "loadpilot_store_rows", table="samples") == len(taken)
    assert value_of(text, "loadpilot_store_write_seconds_count") == 1.0
    assert value_of(text, "loadpilot_server_info") == 1.0


def test_the_agent_serves_what_it_collected_shipped_and_spooled(
    tmp_path: Path, start_agent: Callable[[Config], Agent]
) -> None:
    config = make_config(tmp_path, free_port(), interval_s=0.2, metrics_listen="127.0.0.1:0")
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        with running_server(config, store):
            agent = start_agent(config)
            url = listener_of(agent).url
            assert wait_for(lambda: agent.shipper.stats.sent_batches >= 3, timeout=15)
            text = checked(url)
    finally:
        store.close()
    ticks = value_of(text, "loadpilot_agent_ticks_total")
    assert ticks is not None and ticks >= 3
    samples = value_of(text, "loadpilot_agent_samples_total")
    assert samples is not None and samples >= ticks  # the host collector's readings and the agent's own
    stored = value_of(text, "loadpilot_agent_shipped_batches_total", result="stored")
    assert stored is not None and stored >= 3
    assert value_of(text, "loadpilot_agent_shipped_batches_total", result="rejected") == 0.0
    assert value_of(text, "loadpilot_agent_spool_dropped_batches_total") == 0.0
    assert value_of(text, "loadpilot_agent_spool_batches") is not None
    assert value_of(text, "loadpilot_agent_spool_bytes") is not None
    timed = value_of(text, "loadpilot_agent_collect_seconds_count", collector="host")
    assert timed is not None and timed >= ticks  # once per collector per tick
    assert value_of(text, "loadpilot_agent_coordination_members") is None  # not coordinated here


def test_a_coordinated_agent_serves_its_share_and_the_members_it_sees(
    tmp_path: Path, start_agent: Callable[[Config], Agent]
) -> None:
    port = free_port()
    targets = [f"http://127.0.0.1:{port}/api/v1/healthz", f"http://127.0.0.1:{port}/nothing-here"]
    config = parse_config(
        {
            "state_dir": str(tmp_path / "state"),
            "server": {"port": port},
            "auth": {"signing_key": KEY.decode()},
            "agent": {
                "id": "agent-c",
                "server_url": f"http://127.0.0.1:{port}",
                "interval_s": 0.5,
                "metrics_listen": "127.0.0.1:0",
                "collectors": [{"type": "http_probe", "targets": targets, "timeout_s": 0.5}],
            },
            "coordination": {"enabled": True, "url": f"file://{tmp_path / 'coord'}", "member_timeout_s": 3},
        }
    )
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        with running_server(config, store):
            agent = start_agent(config)
            url = listener_of(agent).url
            assert wait_for(lambda: value_of(scrape(url), "loadpilot_agent_shared_owned") == 2.0, timeout=20)
            text = checked(url)
    finally:
        store.close()
    assert value_of(text, "loadpilot_agent_coordination_joined") == 1.0
    assert value_of(text, "loadpilot_agent_coordination_members") == 1.0  # alone in the agents' group
    assert value_of(text, "loadpilot_agent_shared_polled") == 2.0
    timed = value_of(text, "loadpilot_agent_collect_seconds_count", collector="http_probe")
    assert timed is not None and timed >= 1


def test_the_agent_counts_batches_it_cannot_send_as_spooled(
    tmp_path: Path, start_agent: Callable[[Config], Agent]
) -> None:
    config = make_config(tmp_path, free_port(), interval_s=0.2, metrics_listen="127.0.0.1:0")  # no server there
    agent = start_agent(config)
    url = listener_of(agent).url
    assert wait_for(lambda: (value_of(scrape(url), "loadpilot_agent_spool_batches") or 0) >= 2, timeout=15)
    text = checked(url)
    failures = value_of(text, "loadpilot_agent_ship_failures_total")
    assert failures is not None and failures >= 1
    assert value_of(text, "loadpilot_agent_shipped_batches_total", result="stored") == 0.0
    spooled = value_of(text, "loadpilot_agent_spool_bytes")
    assert spooled is not None and spooled > 0


def test_a_pool_supervisor_serves_its_workers_restarts_and_sizes(
    start_pool: Callable[[PoolConfig], RunningPool],
) -> None:
    pool = start_pool(pool_config(initial=2, metrics_listen="127.0.0.1:0"))
    url = listener_of(pool.supervisor.metrics, "listener").url
    state = pool.wait_ready(2)
    text = checked(url)
    assert value_of(text, "loadpilot_pool_desired_workers", pool="web") == 2.0
    assert value_of(text, "loadpilot_pool_ready_workers", pool="web") == 2.0
    assert value_of(text, "loadpilot_pool_workers", pool="web", state="ready") == 2.0
    assert value_of(text, "loadpilot_pool_workers", pool="web", state="failed") == 0.0
    assert value_of(text, "loadpilot_pool_worker_restarts_total", pool="web") == 0.0
    assert value_of(text, "loadpilot_pool_running", pool="web") == 1.0

    os.kill(state.workers[0].pid or 0, signal.SIGKILL)
    assert wait_for(lambda: value_of(scrape(url), "loadpilot_pool_worker_restarts_total", pool="web") == 1.0)
    pool.wait_ready(2)
    text = checked(url)
    assert value_of(text, "loadpilot_pool_events_total", pool="web", kind="crashed", result="restart") == 1.0
    assert value_of(text, "loadpilot_pool_spawn_failures_total", pool="web") == 0.0


def test_a_command_that_cannot_run_counts_spawn_failures_and_a_fatal_slot(
    tmp_path: Path, start_pool: Callable[[PoolConfig], RunningPool]
) -> None:
    missing = str(tmp_path / "no-such-program")
    config = pool_config(
        initial=1, metrics_listen="127.0.0.1:0", command=[missing, "--port", "{port}"], restart={"max_crashes": 3}
    )
    pool = start_pool(config)
    url = listener_of(pool.supervisor.metrics, "listener").url
    assert wait_for(lambda: value_of(scrape(url), "loadpilot_pool_fatal_slots", pool="web") == 1.0, timeout=15)
    text = checked(url)
    assert value_of(text, "loadpilot_pool_spawn_failures_total", pool="web") == 3.0
    assert value_of(text, "loadpilot_pool_worker_restarts_total", pool="web") == 3.0
    assert value_of(text, "loadpilot_pool_workers", pool="web", state="failed") == 1.0
    assert value_of(text, "loadpilot_pool_ready_workers", pool="web") == 0.0


def test_the_controller_serves_its_decisions_actions_leadership_and_ticks(
    tmp_path: Path, start_pool: Callable[[PoolConfig], RunningPool]
) -> None:
    pool_settings = pool_config(initial=2, autoscale=AUTOSCALE)
    config = parse_config(
        {
            "state_dir": str(tmp_path / "state"),
            "pools": [pool_settings.model_dump(mode="json", exclude_none=True)],
            "control": {"tick_s": 0.5, "metrics_listen": "127.0.0.1:0"},
            "coordination": {"url": f"file://{tmp_path / 'coord'}", "tick_s": 0.2, "member_timeout_s": 10.0},
        }
    )
    pool = start_pool(config.pools[0])
    pool.wait_ready(2)
    store = open_store(f"sqlite:///{tmp_path / 'loadpilot.db'}")
    controller = Controller(config, store, Seat(CoordSettings(**config.coordination_options()), "ctl-a", {}), "ctl-a")
    stop = threading.Event()
    thread = threading.Thread(target=controller.run, args=(stop,), daemon=True)
    thread.start()
    try:
        url = listener_of(controller).url
        pool.wait_ready(1)  # nothing in flight: target tracking scales in to the minimum
        assert wait_for(lambda: _scaled_in(scrape(url)), timeout=15)
        text = checked(url)
    finally:
        stop.set()
        thread.join(timeout=30)
        store.close()
    assert not thread.is_alive()
    assert value_of(text, "loadpilot_controller_leader") == 1.0
    epoch = value_of(text, "loadpilot_controller_leader_epoch")
    assert epoch is not None and epoch >= 1
    assert value_of(text, "loadpilot_controller_actions_total", kind="scale", result="ok") == 1.0
    decisions = value_of(text, "loadpilot_controller_decisions_total", pool="web", policy="target", direction="in")
    assert decisions == 1.0
    ticks = value_of(text, "loadpilot_controller_tick_seconds_count")
    assert ticks is not None and ticks >= 1
    assert value_of(text, "loadpilot_controller_pool_flagged", pool="web") == 0.0


def _scaled_in(text: str) -> bool:
    return value_of(text, "loadpilot_controller_actions_total", kind="scale", result="ok") == 1.0
