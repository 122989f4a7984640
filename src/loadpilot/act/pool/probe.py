"""Talk to one worker over HTTP: is it ready, and what has it served.

A worker is checked on its own port (never through the balancer, which would answer for any worker). Its
metrics follow the Prometheus convention most HTTP servers can export: `http_requests_total` (counter),
`http_requests_in_flight` (gauge) and `http_request_duration_seconds` (histogram); series with labels are summed.
"""

from __future__ import annotations

import http.client
import math
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True)
class CheckResult:
    """One health check: whether it passed, and why not."""

    ok: bool
    reason: str = ""


@dataclass(frozen=True)
class WorkerMetrics:
    """A worker's request counters at one moment (cumulative, as the worker exports them)."""

    requests: float
    in_flight: float
    duration_sum: float
    duration_count: float
    buckets: tuple[tuple[float, float], ...]  # (upper bound, cumulative count), sorted


def _get(host: str, port: int, path: str, timeout: float) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"User-Agent": "loadpilot-pool"})
        response = conn.getresponse()
        return response.status, response.read(1 << 20)
    finally:
        conn.close()


def check_health(host: str, port: int, path: str, timeout: float) -> CheckResult:
    """GET the worker's health path: ready when it answers 2xx within the timeout."""
    try:
        status, _ = _get(host, port, path, timeout)
    except (OSError, http.client.HTTPException) as exc:
        return CheckResult(False, f"GET {path}: {type(exc).__name__}: {exc}".rstrip(": "))
    if 200 <= status < 300:
        return CheckResult(True)
    return CheckResult(False, f"GET {path}: HTTP {status}")


def scrape_metrics(host: str, port: int, path: str, timeout: float) -> WorkerMetrics | None:
    """Read the worker's request metrics; None when it exports none of them or cannot be reached."""
    try:
        status, body = _get(host, port, path, timeout)
    except (OSError, http.client.HTTPException):
        return None
    if status != 200:
        return None
    return parse_metrics(body.decode("utf-8", errors="replace"))


def parse_metrics(text: str) -> WorkerMetrics | None:
    """Sum the convention's series out of a Prometheus text exposition."""
    requests = in_flight = dsum = dcount = 0.0
    buckets: dict[float, float] = {}
    found = False
    try:
        families = list(text_string_to_metric_families(text))
    except ValueError:
        return None
    for family in families:
        for s in family.samples:
            if s.name == "http_requests_total":
                requests += s.value
            elif s.name == "http_requests_in_flight":
                in_flight += s.value
            elif s.name == "http_request_duration_seconds_sum":
                dsum += s.value
            elif s.name == "http_request_duration_seconds_count":
                dcount += s.value
            elif s.name == "http_request_duration_seconds_bucket":
                bound = float(s.labels.get("le", "inf"))
                buckets[bound] = buckets.get(bound, 0.0) + s.value
            else:
                continue
            found = True
    if not found:
        return None
    return WorkerMetrics(requests, in_flight, dsum, dcount, tuple(sorted(buckets.items())))


def latency_between(old: WorkerMetrics, new: WorkerMetrics) -> tuple[float | None, float | None]:
    """Mean and p95 latency of the requests served between two scrapes (None when none were served).

    The p95 is the upper bound of the histogram bucket holding the 95th percentile, as Prometheus'
    histogram_quantile would interpolate it linearly inside the bucket.
    """
    count = new.duration_count - old.duration_count
    if count <= 0:
        return None, None
    mean = (new.duration_sum - old.duration_sum) / count
    before = dict(old.buckets)
    rank = 0.95 * count
    lower_bound, lower_count = 0.0, 0.0
    for bound, cumulative in new.buckets:
        in_window = cumulative - before.get(bound, 0.0)
        if in_window >= rank:
            if math.isinf(bound):
                return mean, lower_bound
            share = (rank - lower_count) / max(in_window - lower_count, 1e-9)
            return mean, lower_bound + (bound - lower_bound) * share
        lower_bound, lower_count = bound, in_window
    return mean, None
