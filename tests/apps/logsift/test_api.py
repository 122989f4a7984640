"""The HTTP API and page, driven in-process through the ASGI interface (lifespan included)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.testclient import TestClient

from loadpilot.apps.logsift.app import Settings, create_app
from loadpilot.apps.logsift.counts import SQLiteCounts

LINES = "\n".join(
    [
        "worker 1 started on 10.0.0.1:8080",
        "worker 2 started on 10.0.0.2:8080",
        "worker 3 started on 10.0.0.3:8080",
        "disk /dev/sda1 is 91% full",
        "disk /dev/sdb1 is 97% full",
        "shutting down now",
    ]
)
SCRIPT = "<script>alert('x')</script> injected 1"


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(create_app(Settings())) as client:
        yield client


def _analyze(client: TestClient, text: str, **headers: str) -> httpx.Response:
    return client.post("/api/analyze", content=text.encode(), headers={"content-type": "text/plain", **headers})


def test_analyze_returns_templates_biggest_first_with_examples(client: TestClient) -> None:
    response = _analyze(client, LINES)
    assert response.status_code == 200
    body = response.json()
    assert body["lines"] == 6 and body["counts_stored"] is True
    assert [(t["template"], t["count"]) for t in body["templates"]] == [
        ("worker <NUM> started on <IP>", 3),
        ("disk <NUM> is <NUM> full", 2),
        ("shutting down now", 1),
    ]
    assert body["templates"][0]["examples"] == LINES.splitlines()[:3]


def test_json_body_is_accepted(client: TestClient) -> None:
    response = client.post("/api/analyze", json={"text": LINES})
    assert response.status_code == 200 and response.json()["lines"] == 6


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b"", "text/plain", 400),
        (b"\n \n", "text/plain", 400),
        (b"caf\xe9 1", "text/plain", 400),
        (b'{"text": 3}', "application/json", 422),
        (b"{", "application/json", 400),
        (b"a 1", "image/png", 415),
    ],
)
def test_malformed_input_is_a_4xx_with_a_reason(
    client: TestClient, content: bytes, content_type: str, status: int
) -> None:
    response = client.post("/api/analyze", content=content, headers={"content-type": content_type})
    assert response.status_code == status
    assert response.json()["error"]


def test_bodies_over_max_bytes_are_413_declared_or_streamed() -> None:
    with TestClient(create_app(Settings(max_bytes=100))) as client:
        declared = _analyze(client, "x 1\n" * 30)
        streamed = client.post("/api/analyze", content=iter([b"x 1\n" * 20, b"x 2\n" * 20]))
        fits = _analyze(client, "x 1\n" * 25)
    assert declared.status_code == streamed.status_code == 413
    assert "--max-bytes" in declared.json()["error"] and "--max-bytes" in streamed.json()["error"]
    assert fits.status_code == 200


def test_too_many_lines_is_413() -> None:
    with TestClient(create_app(Settings(max_lines=3))) as client:
        response = _analyze(client, "a 1\na 2\na 3\na 4\n")
    assert response.status_code == 413 and "--max-lines" in response.json()["error"]


def test_templates_seen_so_far_add_up_biggest_first(client: TestClient) -> None:
    _analyze(client, LINES)
    _analyze(client, "shutting down now\nshutting down now\nshutting down now")
    body = client.get("/api/templates").json()
    assert body["source"] == "memory"
    assert [(t["template"], t["count"]) for t in body["templates"]] == [
        ("shutting down now", 4),
        ("worker <NUM> started on <IP>", 3),
        ("disk <NUM> is <NUM> full", 2),
    ]
    assert [t["template"] for t in client.get("/api/templates?limit=1").json()["templates"]] == ["shutting down now"]
    assert client.get("/api/templates?limit=zero").status_code == 400


def test_the_page_escapes_everything_it_shows(client: TestClient) -> None:
    posted = client.post("/", data={"text": f"{SCRIPT}\n{SCRIPT}\nplain line"})
    shown = client.get("/")
    for response in (posted, shown):
        assert response.status_code == 200
        assert "<script" not in response.text.lower()
        assert "&lt;script&gt;" in response.text
        assert response.headers["content-type"].startswith("text/html")
        assert "script-src" not in response.headers["content-security-policy"]
        assert response.headers["content-security-policy"].startswith("default-src 'none'")
    assert "2 lines" not in posted.text and "3 lines" in posted.text


def test_the_page_has_a_form_and_loads_nothing_else(client: TestClient) -> None:
    html = client.get("/").text
    assert '<form method="post" action="/"' in html and '<textarea name="text"' in html
    for external in ("src=", "<link", "http://", "https://", "@import"):
        assert external not in html


def test_a_form_error_is_shown_escaped_with_its_status() -> None:
    with TestClient(create_app(Settings(max_bytes=50))) as client:
        response = client.post("/", data={"text": "<b>bold</b> 1\n" * 10})
    assert response.status_code == 413
    assert "--max-bytes" in response.text and "<b>bold" not in response.text


def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")
    assert (response.status_code, response.text) == (200, "ok\n")


def _metrics(text: str) -> dict[str, float]:
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if not sample.labels or set(sample.labels) == {"le"}:
                key = sample.name + (f"{{le={sample.labels['le']}}}" if sample.labels else "")
                samples[key] = sample.value
    return samples


def test_metrics_follow_the_worker_convention_and_skip_probes(client: TestClient) -> None:
    for _ in range(3):
        _analyze(client, LINES)
    client.get("/healthz")
    client.get("/metrics")
    client.get("/api/templates")
    text = client.get("/metrics").text
    types = {family.name: family.type for family in text_string_to_metric_families(text)}
    assert types["http_requests"] == "counter"
    assert types["http_requests_in_flight"] == "gauge"
    assert types["http_request_duration_seconds"] == "histogram"
    samples = _metrics(text)
    assert samples["http_requests_total"] == 4  # three analyses and /api/templates; not /healthz nor /metrics
    assert samples["http_request_duration_seconds_count"] == 4
    assert samples["http_request_duration_seconds_bucket{le=+Inf}"] == 4
    assert samples["http_requests_in_flight"] == 0
    assert samples["logsift_lines_total"] == 18


async def _held_body(gate: asyncio.Event) -> AsyncIterator[bytes]:
    yield b"held request 1\n"
    await gate.wait()
    yield b"held request 2\n"


async def _over_the_limit(app: Starlette) -> tuple[httpx.Response, httpx.Response, httpx.Response, dict[str, float]]:
    registry = app.state.service.metrics.registry
    gate = asyncio.Event()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://logsift") as client:
            held = asyncio.create_task(client.post("/api/analyze", content=_held_body(gate)))
            for _ in range(1000):
                if registry.get_sample_value("http_requests_in_flight") == 1:
                    break
                await asyncio.sleep(0.001)
            refused = await client.post("/api/analyze", content=b"another 1")
            health = await client.get("/healthz")
            gate.set()
            first = await held
            metrics = _metrics((await client.get("/metrics")).text)
    assert health.status_code == 200  # probes are never refused
    return first, refused, health, metrics


def test_requests_over_the_concurrency_limit_get_503_with_retry_after() -> None:
    app = create_app(Settings(concurrency=1))
    first, refused, _, metrics = asyncio.run(_over_the_limit(app))
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1" and "--concurrency 1" in refused.text
    assert first.status_code == 200 and first.json()["lines"] == 2
    assert metrics["logsift_refused_requests_total"] == 1
    assert metrics["http_requests_total"] == 2 and metrics["http_requests_in_flight"] == 0


async def _queued(app: Starlette) -> list[httpx.Response]:
    registry = app.state.service.metrics.registry
    gate = asyncio.Event()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://logsift") as client:
            held = asyncio.create_task(client.post("/api/analyze", content=_held_body(gate)))
            for _ in range(1000):
                if registry.get_sample_value("http_requests_in_flight") == 1:
                    break
                await asyncio.sleep(0.001)
            waiting = asyncio.create_task(client.post("/api/analyze", content=b"waits its turn 1"))
            await asyncio.sleep(0.05)
            assert not waiting.done()  # the only place is taken: it waits instead of being refused
            refused = await client.post("/api/analyze", content=b"one too many 1")
            gate.set()
            return [await held, await waiting, refused]


def test_a_queue_lets_requests_wait_for_a_place_and_refuses_beyond_it() -> None:
    held, waited, refused = asyncio.run(_queued(create_app(Settings(concurrency=1, queue=1))))
    assert (held.status_code, waited.status_code, refused.status_code) == (200, 200, 503)
    assert waited.json()["lines"] == 1


def test_workers_sharing_a_database_add_their_counts_up(tmp_path: Path) -> None:
    db = tmp_path / "counts.sqlite"
    with TestClient(create_app(Settings(db=db))) as one, TestClient(create_app(Settings(db=db))) as two:
        _analyze(one, LINES)
        _analyze(two, LINES)
        body = two.get("/api/templates").json()
    assert body["source"] == "sqlite"
    assert [(t["template"], t["count"]) for t in body["templates"]][:2] == [
        ("worker <NUM> started on <IP>", 6),
        ("disk <NUM> is <NUM> full", 4),
    ]


def test_an_unavailable_database_does_not_fail_the_analysis(tmp_path: Path) -> None:
    db = tmp_path / "counts.sqlite"
    counts = SQLiteCounts(db, busy_timeout_ms=50)
    blocker = sqlite3.connect(db, isolation_level=None)
    try:
        with TestClient(create_app(Settings(db=db), counts=counts)) as client:
            blocker.execute("BEGIN EXCLUSIVE")
            response = _analyze(client, LINES)
            blocker.execute("ROLLBACK")
            errors = _metrics(client.get("/metrics").text)["logsift_count_errors_total"]
    finally:
        blocker.close()
    assert response.status_code == 200 and response.json()["counts_stored"] is False
    assert errors == 1
