"""`loadpilot up`'s live view reads a real pool, a real controller's status and the store's events."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console

from loadpilot.control.view import LiveView
from loadpilot.store import Store
from tests.control.conftest import ControllerFactory, control_config


def test_the_view_shows_the_pool_the_leader_and_the_action_with_its_reason(
    tmp_path: Path, start_pool, store: Store, controllers: ControllerFactory
) -> None:
    config = control_config(tmp_path, initial=3)
    pool = start_pool(config.pools[0])
    pool.wait_ready(3)
    view = LiveView(config, store, "header")
    view.frame()  # primes: what happened before it started is context, not news
    controller = controllers(config, "controller-a")
    controller.step(float(int(time.time())))  # no load: 3 -> 1
    pool.wait_ready(1)
    frame = view.frame()
    [row] = frame.pools
    assert row.running and (row.desired, row.size, row.ready) == (1, 1, 1)
    assert row.policy == "target in_flight 1" and not row.flagged
    assert frame.leader is not None and frame.leader.member == "controller-a"
    [scaled] = [e for e in frame.new_events if e.kind == "scale"]
    lines = view.lines(frame, summary=True)
    assert any("scale pool/web 3 -> 1 ok: target: in_flight" in line for line in lines), lines
    assert any(f"controller-a leads, epoch {controller.leader.epoch}" in line for line in lines), lines
    assert any("pool web: size 1 (desired 1, ready 1, failed 0)" in line for line in lines), lines
    console = Console(width=200, record=True)
    console.print(view.render(frame))
    text = console.export_text()
    assert "3 -> 1" in text and "target: in_flight" in text and "target in_flight 1" in text
    assert scaled.details["to"] == 1
