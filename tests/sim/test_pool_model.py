"""The simulated pool: latency near the service time under capacity, a growing backlog above it, start-up
delay, draining, and the queueing formulas behind them."""

from __future__ import annotations

import math

import pytest

from loadpilot.sim.pool_model import PoolModel, PoolParams, steady_p95
from loadpilot.sim.queueing import erlang_c, utilisation_for, wait_p95

PARAMS = PoolParams(capacity=100.0, service_s=0.02, startup_s=30.0, drain_s=5.0, queue_limit_s=30.0)


def test_erlang_c_known_values() -> None:
    assert erlang_c(1, 0.5) == pytest.approx(0.5)  # M/M/1: P(wait) = rho
    assert erlang_c(2, 1.6) == pytest.approx(2 * 0.8**2 / 1.8)  # M/M/2: 2 rho^2 / (1 + rho)
    assert erlang_c(4, 0.0) == 0.0 and erlang_c(2, 2.5) == 1.0


def test_wait_p95_of_mm1() -> None:
    # M/M/1 at rho 0.8, mu 10: P(W > t) = 0.8 exp(-2 t) = 0.05 at t = ln(16) / 2.
    assert wait_p95(1, 10.0, 8.0) == pytest.approx(math.log(16) / 2)
    assert wait_p95(1, 10.0, 0.4) == 0.0  # fewer than 5 % wait at all


def test_the_utilisation_that_meets_an_objective() -> None:
    rho = utilisation_for(PARAMS.slots, PARAMS.slot_rate, PARAMS.service_s, 0.25)
    assert 0.8 < rho < 0.95
    assert steady_p95(PARAMS, rho * 100.0 * 10, 10) == pytest.approx(0.25, abs=1e-3)
    assert utilisation_for(2, 50.0, 0.02, 0.5) > rho
    with pytest.raises(ValueError, match="must exceed the service time"):
        utilisation_for(2, 50.0, 0.02, 0.01)


def test_below_capacity_latency_is_the_service_time() -> None:
    pool = PoolModel(PARAMS, 10)
    outcomes = [pool.step(100.0, 1.0, float(t)) for t in range(60)]  # 10 % busy: hardly anyone waits
    assert all(o.p95_s == pytest.approx(0.02) for o in outcomes)
    assert pool.backlog == 0.0 and sum(o.served for o in outcomes) == pytest.approx(100.0 * 60)
    outcomes = [pool.step(500.0, 1.0, float(t)) for t in range(60, 120)]  # 50 % busy: a short wait
    assert all(0.02 < o.p95_s < 0.08 for o in outcomes)  # M/M/2 at 50 %: 58 ms
    assert pool.backlog == 0.0


def test_above_capacity_the_backlog_grows_and_so_does_latency() -> None:
    pool = PoolModel(PARAMS, 10)
    outcomes = [pool.step(1200.0, 1.0, float(t)) for t in range(40)]  # 1,200 requests/s on 1,000
    backlogs = [o.backlog for o in outcomes]
    assert backlogs == pytest.approx([200.0 * (t + 1) for t in range(40)])
    assert [o.p95_s for o in outcomes] == sorted(o.p95_s for o in outcomes)
    assert all(o.p95_s > 2.5 for o in outcomes)  # saturated: far beyond any objective at once
    assert outcomes[-1].p95_s == pytest.approx(0.02 + 8000 / 1000)  # then 8 s of backlog at 1,000/s


def test_the_queue_limit_drops_what_would_wait_too_long() -> None:
    pool = PoolModel(PoolParams(capacity=100.0, service_s=0.02, queue_limit_s=2.0), 1)
    outcome = pool.step(500.0, 1.0, 0.0)  # 400 left over; 2 s x 100/s may wait
    assert outcome.backlog == 200.0 and outcome.dropped == 200.0


def test_new_workers_serve_after_the_start_up_delay() -> None:
    pool = PoolModel(PARAMS, 2)
    pool.scale_to(5, now=0.0)
    assert (pool.ready, pool.desired, pool.running) == (2, 5, 5)
    assert pool.step(100.0, 1.0, 29.0).ready == 2
    outcome = pool.step(100.0, 1.0, 30.0)
    assert outcome.ready == 5 and outcome.starting == 0


def test_scale_in_cancels_starting_workers_first_then_drains() -> None:
    pool = PoolModel(PARAMS, 4)
    pool.scale_to(6, now=0.0)
    pool.scale_to(3, now=1.0)  # the 2 starting ones go at once, then 1 ready one drains
    assert (pool.ready, pool.desired, pool.running) == (3, 3, 4)
    assert pool.step(0.0, 1.0, 5.0).draining == 1
    assert pool.step(0.0, 1.0, 6.0).draining == 0 and pool.running == 3


def test_no_ready_worker_means_requests_wait_until_dropped() -> None:
    pool = PoolModel(PARAMS, 0)
    outcome = pool.step(50.0, 1.0, 0.0)
    assert outcome.p95_s == pytest.approx(30.02) and outcome.dropped == 50.0
    assert pool.step(0.0, 1.0, 1.0).p95_s == 0.0


def test_bad_parameters() -> None:
    with pytest.raises(ValueError, match="capacity"):
        PoolParams(capacity=0)
    with pytest.raises(ValueError, match="startup_s"):
        PoolParams(startup_s=-1)
