"""The controller's reconcile loop on a real pool, a real SQLite store and a real file:// leadership.

Each test steps controllers by hand with its own `now` (a second or more apart, so every step is an evaluation);
the pool, its workers, their metrics, the fence, the store and the election are all real.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from loadpilot.act.pool.control import scale
from loadpilot.act.pool.state import PoolPaths, read_desired
from loadpilot.control.status import read_statuses
from loadpilot.model import Event
from loadpilot.store import Store
from tests.control.conftest import ControllerFactory, control_config, held_requests


def scale_events(store: Store) -> list[Event]:
    """The controller's scale events, oldest first."""
    return sorted(store.events(kind="scale", subject="pool/web"), key=lambda e: e.id or 0)


def test_the_leader_scales_a_real_pool_out_and_in_and_records_why(
    tmp_path: Path, start_pool, store: Store, controllers: ControllerFactory
) -> None:
    config = control_config(tmp_path, initial=2)
    pool = start_pool(config.pools[0])
    state = pool.wait_ready(2)
    controller = controllers(config, "controller-a")
    t0 = float(int(time.time()))  # whole seconds: retry times add up exactly
    with held_requests(state, per_worker=3, ms=4000):
        controller.step(t0)  # 6 requests in flight on 2 workers: 3x the target of 1 per worker
        assert controller.leading and controller.leader.epoch >= 1
        epoch = controller.leader.epoch
        desired = read_desired(pool.paths)
        assert desired is not None and (desired.size, desired.epoch) == (4, epoch)  # 6 asked, max 4
        grown = pool.wait_ready(4)
    assert grown.desired == 4
    controller.step(t0 + 100)  # the load is gone: back to the minimum
    shrunk = pool.wait_ready(1)
    assert read_desired(pool.paths).epoch == epoch  # type: ignore[union-attr]
    assert shrunk.desired == 1

    out, back_in = scale_events(store)
    for event, (before, after) in ((out, (2, 4)), (back_in, (4, 1))):
        assert event.result == "ok"
        assert event.reason.startswith("target: in_flight")
        details = event.details
        assert (details["from"], details["to"], details["epoch"]) == (before, after, epoch)
        assert details["member"] == "controller-a" and details["policy"] == "target"
        for name in ("in_flight", "ready", "desired", "recommended", "decided", "duration_s"):
            assert name in details, name
    assert out.details["in_flight"] >= 6 and out.details["recommended"] == 6
    assert "bounds 1..4: 6 -> 4" in out.reason
    [lead] = store.events(kind="leadership")
    assert lead.reason == f"leads with epoch {epoch}" and lead.details["member"] == "controller-a"


def test_a_decision_to_keep_the_size_is_recorded_once_per_kind_of_reason(
    tmp_path: Path, start_pool, store: Store, controllers: ControllerFactory
) -> None:
    config = control_config(tmp_path, initial=2, min=2)
    pool = start_pool(config.pools[0])
    pool.wait_ready(2)
    controller = controllers(config, "controller-a")
    t0 = float(int(time.time()))  # whole seconds: retry times add up exactly
    for i in range(3):  # no load: the policy asks for 0 workers, the bounds keep 2, three times over
        controller.step(t0 + i)
    [hold] = store.events(kind="hold")
    assert hold.result == "kept" and hold.subject == "pool/web"
    assert "bounds" in hold.reason or "keep" in hold.reason, hold.reason
    assert hold.details["kept"] == 2 and hold.details["epoch"] == controller.leader.epoch
    assert "in_flight" in hold.details
    assert not store.events(kind="scale")
    assert read_desired(pool.paths).size == 2  # type: ignore[union-attr]


def test_only_the_leader_acts_and_the_next_one_acts_with_a_newer_epoch(
    tmp_path: Path, start_pool, store: Store, controllers: ControllerFactory
) -> None:
    config = control_config(tmp_path, initial=3)
    pool = start_pool(config.pools[0])
    pool.wait_ready(3)
    a, b = controllers(config, "controller-a"), controllers(config, "controller-b")
    t0 = float(int(time.time()))  # whole seconds: retry times add up exactly
    a.step(t0)  # no load: the leader scales 3 -> 1
    b.step(t0)
    assert a.leading and not b.leading
    first = a.leader.epoch
    pool.wait_ready(1)
    assert [(e.details["member"], e.details["epoch"]) for e in scale_events(store)] == [("controller-a", first)]
    statuses = {s.member: s for s in read_statuses(config.state_path)}
    assert statuses["controller-a"].leading and not statuses["controller-b"].leading

    scale(pool.paths, config.pools[0], 3)  # an operator scales by hand (epoch 0: not fenced)
    pool.wait_ready(3)
    b.step(t0 + 1)  # the standby sees the same pool and does nothing
    assert len(scale_events(store)) == 1

    a.close()  # resigns: b takes over at its next tick, with a newer epoch, and acts with it
    b.step(t0 + 2)
    assert b.leading and b.leader.epoch == first + 1
    pool.wait_ready(1)
    last = scale_events(store)[-1]
    assert (last.details["member"], last.details["epoch"], last.details["to"]) == ("controller-b", first + 1, 1)
    assert read_desired(pool.paths).epoch == first + 1  # type: ignore[union-attr]
    reasons = [e.reason for e in sorted(store.events(kind="leadership"), key=lambda e: e.id or 0)]
    assert reasons == [f"leads with epoch {first}", "resigned (stopping)", f"leads with epoch {first + 1}"]


def test_a_temporary_actuator_error_is_retried_with_a_growing_backoff(
    tmp_path: Path, start_pool, store: Store, controllers: ControllerFactory
) -> None:
    config = control_config(tmp_path, initial=3)
    pool = start_pool(config.pools[0])
    pool.wait_ready(3)
    pool.paths.fence.write_text("{not json")  # the fence cannot be read: maybe a disk hiccup, try again
    controller = controllers(config, "controller-a")
    t0 = float(int(time.time()))  # whole seconds: retry times add up exactly
    controller.step(t0)
    controller.step(t0 + 0.5)  # within the backoff: not tried again
    controller.step(t0 + 1.0)  # tried again, fails again: the wait doubles
    controller.step(t0 + 2.5)
    pool.paths.fence.unlink()  # the problem goes away
    controller.step(t0 + 3.0)  # succeeds
    results = [(e.result.split(":")[0], e.details["attempt"]) for e in scale_events(store)]
    assert results == [("error", 1), ("error", 2), ("ok", 3)]
    first, second, _ = scale_events(store)
    assert first.result.endswith("retry in 1 s") and "epoch fence" in first.result
    assert second.result.endswith("retry in 2 s")
    assert not controller.pools["web"].flagged
    assert pool.wait_ready(1).desired == 1


def test_a_stale_epoch_is_refused_and_retried_later(
    tmp_path: Path, start_pool, store: Store, controllers: ControllerFactory
) -> None:
    config = control_config(tmp_path, initial=3)
    pool = start_pool(config.pools[0])
    pool.wait_ready(3)
    controller = controllers(config, "controller-a")
    t0 = float(int(time.time()))
    controller.step(t0)  # leads, scales 3 -> 1
    epoch = controller.leader.epoch
    pool.wait_ready(1)
    scale(pool.paths, config.pools[0], 3, epoch=epoch + 5)  # a newer term acts on the pool behind its back
    pool.wait_ready(3)
    controller.step(t0 + 1)
    first, refused = scale_events(store)
    assert first.result == "ok" and first.details["epoch"] == epoch
    assert refused.result.startswith("refused:") and "no longer the leader" in refused.result
    assert refused.details["epoch"] == epoch
    assert controller.pools["web"].retry_at == t0 + 2
    desired = read_desired(pool.paths)
    assert desired is not None and (desired.size, desired.epoch) == (3, epoch + 5)


def test_a_permanent_actuator_error_flags_the_pool(
    tmp_path: Path, start_pool, store: Store, controllers: ControllerFactory
) -> None:
    config = control_config(tmp_path, initial=3)
    pool = start_pool(config.pools[0])
    pool.wait_ready(3)
    # A directory where the controller writes desired.json's next version: it will not go away by itself.
    blocker = pool.paths.desired.with_name(f".{pool.paths.desired.name}.{os.getpid()}.tmp")
    blocker.mkdir()
    controller = controllers(config, "controller-a")
    t0 = float(int(time.time()))  # whole seconds: retry times add up exactly
    controller.step(t0)
    controller.step(t0 + 60)  # flagged: not tried again, however long it waits
    [event] = scale_events(store)
    assert event.result.startswith("failed:") and "pool flagged" in event.result
    assert "Is a directory" in event.result
    assert controller.pools["web"].flagged
    [status] = read_statuses(config.state_path)
    assert status.pools["web"].flagged and status.leading
    assert read_desired(pool.paths).size == 3  # type: ignore[union-attr]
    blocker.rmdir()


def test_an_unexpected_failure_is_an_event_and_a_retry_not_the_end_of_the_controller(
    tmp_path: Path, store: Store, controllers: ControllerFactory
) -> None:
    config = control_config(tmp_path)
    paths = PoolPaths.of(config.state_path, "web")
    paths.root.mkdir(parents=True)
    # A state.json this version cannot read (a field it does not know): reading it raises TypeError.
    paths.state.write_text(json.dumps({"pool": "web", "from_the_future": 1, "workers": []}))
    controller = controllers(config, "controller-a")
    t0 = float(int(time.time()))
    controller.step(t0)
    controller.step(t0 + 0.5)  # within the backoff: not tried again
    [event] = store.events(kind="error")
    assert event.subject == "pool/web" and event.reason.startswith("reconcile failed: TypeError")
    assert event.result == "retry in 1 s" and event.details["epoch"] == controller.leader.epoch
    assert controller.pools["web"].retry_at == t0 + 1
    paths.state.unlink()  # the pool is simply not running here now: a hold, as usual
    controller.step(t0 + 1)
    [hold] = store.events(kind="hold")
    assert "not running here" in hold.reason
