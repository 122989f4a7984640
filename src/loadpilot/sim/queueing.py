"""Queueing arithmetic for the simulated pool: an M/M/c waiting-time tail (Erlang C).

A worker serves `slots` requests at once, each taking `service_s` on average; requests reach it as a Poisson
stream. The probability that a request waits is Erlang's C formula, and the wait of those that do is
exponential with rate (c mu - lambda), so P(wait > t) = C x exp(-(c mu - lambda) t).
"""

from __future__ import annotations

import math

P95_TAIL = 0.05
# The utilisation the stationary formula is evaluated at, at most: at 100 % it has no answer, and a pool that
# busy is already beyond any latency objective (the backlog term of the pool model takes over).
MAX_UTILISATION = 0.99


def erlang_c(servers: int, offered: float) -> float:
    """The probability that an arriving request waits, with `offered` = lambda / mu erlangs on `servers`."""
    if offered <= 0:
        return 0.0
    if offered >= servers:
        return 1.0
    blocking = 1.0
    for k in range(1, servers + 1):
        blocking = offered * blocking / (k + offered * blocking)
    rho = offered / servers
    return blocking / (1 - rho + rho * blocking)


def wait_p95(servers: int, slot_rate: float, arrival_rate: float) -> float:
    """The 95th percentile of the time a request waits for a free slot (0 when fewer than 5 % wait)."""
    arrival_rate = min(arrival_rate, MAX_UTILISATION * servers * slot_rate)
    waiting = erlang_c(servers, arrival_rate / slot_rate)
    if waiting <= P95_TAIL:
        return 0.0
    return math.log(waiting / P95_TAIL) / (servers * slot_rate - arrival_rate)


def utilisation_for(servers: int, slot_rate: float, service_s: float, slo_s: float) -> float:
    """The highest utilisation at which service + p95 wait stays within `slo_s` (bisection)."""
    if slo_s <= service_s:
        raise ValueError(f"the latency objective {slo_s:g} s must exceed the service time {service_s:g} s")
    low, high = 0.0, MAX_UTILISATION
    capacity = servers * slot_rate
    for _ in range(60):
        mid = (low + high) / 2
        if service_s + wait_p95(servers, slot_rate, mid * capacity) <= slo_s:
            low = mid
        else:
            high = mid
    return low
