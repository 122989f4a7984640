"""Reading a worker's metrics: the convention's series summed, latency over the last interval."""

from __future__ import annotations

import pytest

from loadpilot.act.pool.probe import WorkerMetrics, latency_between, parse_metrics

TEXT = """\
# TYPE http_requests_total counter
http_requests_total{path="/a"} 7
http_requests_total{path="/b"} 3
# TYPE http_requests_in_flight gauge
http_requests_in_flight 2
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.1"} 6
http_request_duration_seconds_bucket{le="0.5"} 9
http_request_duration_seconds_bucket{le="+Inf"} 10
http_request_duration_seconds_sum 1.5
http_request_duration_seconds_count 10
# TYPE other_total counter
other_total 99
"""


def test_labelled_series_are_summed() -> None:
    m = parse_metrics(TEXT)
    assert m is not None
    assert (m.requests, m.in_flight, m.duration_count, m.duration_sum) == (10, 2, 10, 1.5)
    assert m.buckets[-1] == (float("inf"), 10)


def test_text_without_the_convention_gives_nothing() -> None:
    assert parse_metrics("# TYPE other_total counter\nother_total 3\n") is None
    assert parse_metrics("not prometheus {{{") is None


def test_latency_is_measured_over_the_requests_between_two_scrapes() -> None:
    old = WorkerMetrics(10, 0, 1.0, 10, ((0.1, 10.0), (1.0, 10.0), (float("inf"), 10.0)))
    # 20 new requests: 10 under 0.1 s, 10 between 0.1 and 1 s, 2.0 s in all
    new = WorkerMetrics(30, 0, 3.0, 30, ((0.1, 20.0), (1.0, 30.0), (float("inf"), 30.0)))
    mean, p95 = latency_between(old, new)
    assert mean == pytest.approx(0.1)
    assert p95 == pytest.approx(0.1 + 0.9 * 0.9)  # rank 19 of 20: 9/10 into the (0.1, 1] bucket
    assert latency_between(new, new) == (None, None)
