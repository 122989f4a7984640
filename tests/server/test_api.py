"""The HTTP API end to end: signed ingest and its rejections, reads, read auth, /metrics and the OpenAPI document."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from loadpilot.config import Config
from loadpilot.errors import TemporaryError
from loadpilot.model import Event, Resource, Sample
from loadpilot.server.app import create_app
from loadpilot.store import Store
from loadpilot.transport.signing import BATCH_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, signed_headers
from loadpilot.transport.wire import encode_batch
from tests.server.conftest import KEY, NOW, SAMPLES, Api, FakeClock, make_batch

READ_PATHS = [
    "/api/v1/resources",
    "/api/v1/series?resource=h1&metric=cpu",
    "/api/v1/latest",
    "/api/v1/stats?metric=cpu",
    "/api/v1/events",
    "/metrics",
]


def _body(**overrides: Any) -> dict[str, Any]:
    """A valid body as a document, to break one field at a time."""
    doc: dict[str, Any] = {
        "agent": "agent-1",
        "interval": 5,
        "resources": [{"id": "h1", "kind": "host", "labels": {"zone": "a"}}],
        "samples": [{"resource_id": "h1", "metric": "cpu", "value": 0.5, "timestamp": NOW}],
    }
    doc.update(overrides)
    return doc


def _sample(**overrides: Any) -> dict[str, Any]:
    return {"resource_id": "h1", "metric": "cpu", "value": 0.5, "timestamp": NOW, **overrides}


# --- ingest: the happy path and deduplication ---------------------------------------------------------------------


def test_signed_batch_is_stored(api: Api) -> None:
    batch = make_batch(resources=(Resource("h1", "host", {"zone": "a"}),))
    r = api.post_batch(batch)
    assert r.status_code == 200, r.text
    assert r.json() == {"batch_id": "b-1", "duplicate": False, "received": 2, "stored": 2}
    assert api.store.counts() == {"resources": 1, "samples": 2, "batches": 1, "events": 0}
    [cpu] = api.store.series("h1", "cpu", NOW - 1, NOW + 1)
    assert (cpu.value, cpu.unit, cpu.source) == (0.25, "fraction", "host")


def test_duplicate_batch_id_is_acknowledged_and_stores_nothing(api: Api) -> None:
    assert api.post_batch(make_batch("dup-1")).json()["stored"] == 2
    before = api.store.counts()
    # The same id again, even with other samples in it: acknowledged, nothing stored.
    again = make_batch("dup-1", samples=(Sample("h9", "cpu", 0.9, NOW),))
    r = api.post_batch(again)
    assert r.status_code == 200, r.text
    assert r.json() == {"batch_id": "dup-1", "duplicate": True, "received": 1, "stored": 0}
    assert api.store.counts() == before
    assert api.store.series("h9", "cpu", 0, NOW + 1) == []


def test_samples_may_come_as_compact_arrays(api: Api) -> None:
    doc = _body(samples=[["h1", "cpu", 0.5, NOW], ["h1", "mem", 1024.0, NOW, "bytes", "host"]])
    r = api.post_body(json.dumps(doc).encode())
    assert r.status_code == 200, r.text
    assert api.store.latest(resource_ids=["h1"]) == [
        Sample("h1", "cpu", 0.5, NOW, "", ""),
        Sample("h1", "mem", 1024.0, NOW, "bytes", "host"),
    ]
    for bad, where in (
        ([["h1", "cpu", "0.5", NOW]], "samples[0][2]"),
        ([["h1", "cpu", 0.5]], "samples[0][3]"),
        ([["h1", "cpu", 0.5, -1.0, "", ""]], "samples[0][3]"),  # all six fields, as the agent sends them
        ([["h1", "c" * 129, 0.5, NOW, "", ""]], "samples[0][1]"),
    ):
        r = api.post_body(json.dumps(_body(samples=bad)).encode(), "b-2")
        assert r.status_code == 422, r.text
        assert r.json()["detail"].startswith(where), r.json()


def test_same_sample_identity_in_a_new_batch_is_stored_once(api: Api) -> None:
    api.post_batch(make_batch("first", samples=(Sample("h1", "cpu", 0.25, NOW),)))
    # Same resource, metric and slot (NOW // 5 == (NOW + 1) // 5), new batch id: the batch is new, the sample not.
    r = api.post_batch(make_batch("second", samples=(Sample("h1", "cpu", 0.75, NOW + 1),)))
    assert r.status_code == 200, r.text
    assert r.json() == {"batch_id": "second", "duplicate": False, "received": 1, "stored": 0}
    counts = api.store.counts()
    assert (counts["samples"], counts["batches"]) == (1, 2)
    assert [s.value for s in api.store.series("h1", "cpu", 0, NOW + 10)] == [0.25]


# --- ingest: authentication -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("header", [SIGNATURE_HEADER, TIMESTAMP_HEADER, BATCH_HEADER])
def test_missing_signature_header_is_401(api: Api, header: str) -> None:
    body = encode_batch(make_batch())
    headers = signed_headers(KEY, "b-1", body, NOW)
    del headers[header]
    r = api.client.post(SAMPLES, content=body, headers=headers)
    assert r.status_code == 401
    assert r.json()["detail"] == f"missing header(s): {header}"
    assert api.store.counts()["batches"] == 0


def test_no_headers_at_all_names_all_three(api: Api) -> None:
    r = api.client.post(SAMPLES, content=encode_batch(make_batch()))
    assert r.status_code == 401
    assert all(h in r.json()["detail"] for h in (SIGNATURE_HEADER, TIMESTAMP_HEADER, BATCH_HEADER))


def test_wrong_key_is_401(api: Api) -> None:
    r = api.post_batch(make_batch(), key=b"another-key")
    assert r.status_code == 401
    assert "signature does not match" in r.json()["detail"]
    assert api.store.counts()["samples"] == 0


def test_body_changed_after_signing_is_401(api: Api) -> None:
    body = encode_batch(make_batch())
    headers = signed_headers(KEY, "b-1", body, NOW)
    tampered = body.replace(b"0.25", b"0.95")
    assert tampered != body
    r = api.client.post(SAMPLES, content=tampered, headers=headers)
    assert r.status_code == 401
    assert "signature does not match" in r.json()["detail"]
    assert api.store.counts()["samples"] == 0


def test_batch_id_changed_after_signing_is_401(api: Api) -> None:
    body = encode_batch(make_batch())
    headers = {**signed_headers(KEY, "b-1", body, NOW), BATCH_HEADER: "b-2"}
    r = api.client.post(SAMPLES, content=body, headers=headers)
    assert r.status_code == 401
    assert "signature does not match" in r.json()["detail"]


@pytest.mark.parametrize("skew", [-301.0, 301.0], ids=["past", "future"])
def test_timestamp_outside_the_window_is_401(api: Api, skew: float) -> None:
    r = api.post_batch(make_batch(), at=NOW + skew)
    assert r.status_code == 401
    detail = r.json()["detail"]
    assert "clock" in detail
    assert f"{-skew:+.0f} s" in detail
    assert api.store.counts()["batches"] == 0


@pytest.mark.parametrize("skew", [-299.0, 299.0], ids=["past", "future"])
def test_timestamp_inside_the_window_is_accepted(api: Api, skew: float) -> None:
    r = api.post_batch(make_batch(), at=NOW + skew)
    assert r.status_code == 200, r.text


def test_timestamp_that_is_not_a_number_is_401(api: Api) -> None:
    body = encode_batch(make_batch())
    headers = {
        SIGNATURE_HEADER: sign(KEY, "yesterday", "b-1", body),
        TIMESTAMP_HEADER: "yesterday",
        BATCH_HEADER: "b-1",
    }
    r = api.client.post(SAMPLES, content=body, headers=headers)
    assert r.status_code == 401
    assert TIMESTAMP_HEADER in r.json()["detail"]


@pytest.mark.parametrize("timestamp", ["nan", "NaN", "inf", "-1800000000", "1e9", "+1800000000", " 1800000000"])
def test_timestamp_that_is_not_plain_digits_is_401(api: Api, timestamp: str) -> None:
    """float() reads these too; "nan" would never be outside the window, so a signed request could be replayed
    for ever once its batch id was forgotten."""
    body = encode_batch(make_batch())
    headers = {SIGNATURE_HEADER: sign(KEY, timestamp, "b-1", body), TIMESTAMP_HEADER: timestamp, BATCH_HEADER: "b-1"}
    r = api.client.post(SAMPLES, content=body, headers=headers)
    assert r.status_code == 401
    assert TIMESTAMP_HEADER in r.json()["detail"]


def test_a_signature_that_is_not_ascii_is_401(api: Api) -> None:
    body = encode_batch(make_batch())
    headers: dict[str, str | bytes] = {**signed_headers(KEY, "b-1", body, NOW), SIGNATURE_HEADER: b"sha256=\xe9"}
    r = api.client.post(SAMPLES, content=body, headers=headers)
    assert r.status_code == 401
    assert "signature does not match" in r.json()["detail"]


def test_the_timestamp_and_the_batch_id_cannot_trade_characters(api: Api) -> None:
    """Signed as timestamp 1800000000.500 and batch 9f1c2e, the same signature must not pass for timestamp
    1800000000 and batch 500.9f1c2e: a replay of a captured batch under a new id, without the key."""
    body = encode_batch(make_batch("9f1c2e"))
    signed = signed_headers(KEY, "9f1c2e", body, NOW + 0.5)
    assert signed[TIMESTAMP_HEADER] == f"{NOW:.0f}.500"
    forged = {**signed, TIMESTAMP_HEADER: f"{NOW:.0f}", BATCH_HEADER: "500.9f1c2e"}
    r = api.client.post(SAMPLES, content=body, headers=forged)
    assert r.status_code == 401
    assert api.client.post(SAMPLES, content=body, headers=signed).status_code == 200


def test_a_sample_stamped_ahead_of_the_server_clock_is_422(api: Api) -> None:
    """It would stay its series' newest sample, and outlive retention, for good."""
    ahead = _body(samples=[_sample(timestamp=NOW + 299), _sample(metric="mem", timestamp=NOW + 301)])
    r = api.post_body(json.dumps(ahead).encode())
    assert r.status_code == 422, r.text
    assert r.json()["errors"] == [
        f"samples[1].timestamp: {NOW + 301:.0f} is more than server.max_clock_skew_s (300 s) ahead of the "
        "server's clock; check the agent's clock"
    ]
    assert api.store.counts()["samples"] == 0
    assert api.post_body(json.dumps(_body(samples=[_sample(timestamp=NOW + 299)])).encode()).status_code == 200


@pytest.mark.parametrize("batch_id", ["has space", "a/b", "semi;colon", "x" * 129])
def test_batch_id_with_bad_characters_is_401(api: Api, batch_id: str) -> None:
    r = api.post_batch(make_batch(batch_id))
    assert r.status_code == 401
    assert BATCH_HEADER in r.json()["detail"]
    assert api.store.counts()["batches"] == 0


def test_server_clock_decides_the_window(api: Api) -> None:
    """Signed at NOW, the batch is refused once the server's clock has moved on by more than the window."""
    body = encode_batch(make_batch())
    headers = signed_headers(KEY, "b-1", body, NOW)
    api.clock.t = NOW + 301
    assert api.client.post(SAMPLES, content=body, headers=headers).status_code == 401
    api.clock.t = NOW + 300
    assert api.client.post(SAMPLES, content=body, headers=headers).status_code == 200


# --- ingest: malformed bodies ---------------------------------------------------------------------------------------

MALFORMED: list[tuple[str, bytes, str]] = [
    ("not-json", b"this is not json", "(top level): Invalid JSON"),
    ("truncated-json", json.dumps(_body()).encode()[:-5], "(top level): Invalid JSON"),
    ("json-array", b"[]", "(top level)"),
    ("missing-samples", json.dumps({"agent": "a", "interval": 5}).encode(), "samples: Field required"),
    ("missing-agent", json.dumps({k: v for k, v in _body().items() if k != "agent"}).encode(), "agent: Field required"),
    ("null-agent", json.dumps(_body(agent=None)).encode(), "agent:"),
    ("samples-not-a-list", json.dumps(_body(samples={"a": 1})).encode(), "samples:"),
    ("string-value", json.dumps(_body(samples=[_sample(value="high")])).encode(), "samples[0].value:"),
    ("numeric-string-value", json.dumps(_body(samples=[_sample(value="0.5")])).encode(), "samples[0].value:"),
    ("boolean-value", json.dumps(_body(samples=[_sample(value=True)])).encode(), "samples[0].value:"),
    ("null-value", json.dumps(_body(samples=[_sample(value=None)])).encode(), "samples[0].value:"),
    ("unknown-top-level-key", json.dumps(_body(colour="blue")).encode(), "colour: unknown key"),
    ("unknown-sample-key", json.dumps(_body(samples=[_sample(colour="blue")])).encode(), "samples[0].colour: unknown"),
    ("interval-zero", json.dumps(_body(interval=0)).encode(), "interval:"),
    ("interval-negative", json.dumps(_body(interval=-5)).encode(), "interval:"),
    ("interval-tiny", json.dumps(_body(interval=1e-300)).encode(), "interval:"),  # was a 500: slot overflowed
    ("interval-over-a-day", json.dumps(_body(interval=86401)).encode(), "interval:"),
    ("timestamp-zero", json.dumps(_body(samples=[_sample(timestamp=0)])).encode(), "samples[0].timestamp:"),
    ("empty-metric", json.dumps(_body(samples=[_sample(metric="")])).encode(), "samples[0].metric:"),
    ("nul-in-agent", json.dumps(_body(agent="a\x00b")).encode(), "agent:"),
    ("nul-in-metric", json.dumps(_body(samples=[_sample(metric="m\x00")])).encode(), "samples[0].metric:"),
    ("nul-in-unit", json.dumps(_body(samples=[_sample(unit="\x00")])).encode(), "samples[0].unit:"),
    ("raw-nul-byte", json.dumps(_body()).encode().replace(b'"agent": "', b'"agent": "\x00'), "(top level): Invalid"),
    (
        "label-not-a-string",
        json.dumps(_body(resources=[{"id": "h1", "kind": "host", "labels": {"zone": 1}}])).encode(),
        "resources[0].labels.zone:",
    ),
    (
        "resource-without-kind",
        json.dumps(_body(resources=[{"id": "h1"}])).encode(),
        "resources[0].kind: Field required",
    ),
]


@pytest.mark.parametrize(("body", "expected"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_body_is_422_naming_the_field(api: Api, body: bytes, expected: str) -> None:
    r = api.post_body(body, "m-1")
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["detail"].startswith(expected), problem
    assert problem["errors"] == [problem["detail"]]
    assert api.store.counts() == {"resources": 0, "samples": 0, "batches": 0, "events": 0}
    # A refused body does not use up its batch id: a good batch with the same id is stored, not a duplicate.
    again = api.post_batch(make_batch("m-1"))
    assert again.json()["duplicate"] is False
    assert again.json()["stored"] == 2


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_value_is_422(api: Api, token: str) -> None:
    """JSON has no NaN or Infinity, but pydantic's JSON parser reads these tokens (and 1e400) as floats: the
    schema must refuse them, naming the field, or they would be stored."""
    body = json.dumps(_body(samples=[_sample(value=0.5)])).replace("0.5", token).encode()
    assert token.encode() in body
    r = api.post_body(body)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert detail.startswith("samples[0].value:")
    assert "finite" in detail
    assert api.store.counts()["samples"] == 0


def test_several_problems_are_all_listed(api: Api) -> None:
    body = json.dumps(_body(samples=[_sample(value="x"), _sample(timestamp=-1)], interval=0)).encode()
    r = api.post_body(body)
    assert r.status_code == 422
    problem = r.json()
    assert problem["detail"] == "3 problems"
    assert [e.split(":")[0] for e in problem["errors"]] == ["interval", "samples[0].value", "samples[1].timestamp"]


def test_integer_numbers_are_accepted(api: Api) -> None:
    body = json.dumps(_body(interval=10, samples=[_sample(value=3, timestamp=int(NOW))])).encode()
    r = api.post_body(body)
    assert r.status_code == 200, r.text
    assert r.json()["stored"] == 1


# --- ingest: size limit ---------------------------------------------------------------------------------------------

LIMIT = 1024


def _padded(size: int) -> bytes:
    """A valid body of exactly `size` bytes (JSON allows trailing whitespace)."""
    body = encode_batch(make_batch())
    assert len(body) < size
    return body + b" " * (size - len(body))


@pytest.fixture
def small_api(make_api: Callable[..., Api]) -> Api:
    return make_api(server={"max_body_bytes": LIMIT})


def test_body_at_the_limit_is_accepted(small_api: Api) -> None:
    r = small_api.post_body(_padded(LIMIT))
    assert r.status_code == 200, r.text


def test_body_over_the_limit_with_content_length_is_413(small_api: Api) -> None:
    r = small_api.post_body(_padded(LIMIT + 1))
    assert r.request.headers["content-length"] == str(LIMIT + 1)
    assert r.status_code == 413
    assert "max_body_bytes" in r.json()["detail"]
    assert small_api.store.counts()["batches"] == 0


def _chunks(body: bytes, size: int = 100) -> Iterator[bytes]:
    for i in range(0, len(body), size):
        yield body[i : i + size]


@pytest.mark.parametrize(("size", "status"), [(LIMIT, 200), (LIMIT + 1, 413), (10 * LIMIT, 413)])
def test_streamed_body_is_measured_as_it_arrives(small_api: Api, size: int, status: int) -> None:
    body = _padded(size)
    headers = signed_headers(KEY, "b-1", body, NOW)
    r = small_api.client.post(SAMPLES, content=_chunks(body), headers=headers)
    assert "content-length" not in r.request.headers
    assert r.request.headers["transfer-encoding"] == "chunked"
    assert r.status_code == status, r.text


def test_size_is_checked_before_the_signature(small_api: Api) -> None:
    r = small_api.client.post(SAMPLES, content=b"x" * (LIMIT + 1))
    assert r.status_code == 413


# --- store trouble ---------------------------------------------------------------------------------------------------


class _UnavailableStore:
    """A store whose backend went away: every call raises TemporaryError."""

    def __init__(self, inner: Store) -> None:
        self.url = inner.url
        self._inner = inner

    def delete_before(self, cutoff: float) -> int:
        return 0

    def write_batch(self, *_: object) -> None:
        raise TemporaryError("connection refused")

    def events(self, *_: object, **__: object) -> None:
        raise TemporaryError("connection refused")


def test_unavailable_store_is_503(store: Store) -> None:
    app = create_app(Config(), _UnavailableStore(store), KEY, now=FakeClock())  # type: ignore[arg-type]
    with TestClient(app) as client:
        health = client.get("/api/v1/healthz")
        assert health.status_code == 503
        assert "store unavailable" in health.json()["detail"]
        body = encode_batch(make_batch())
        r = client.post(SAMPLES, content=body, headers=signed_headers(KEY, "b-1", body, NOW))
        assert r.status_code == 503
        assert "retry later" in r.json()["detail"]


# --- reads ------------------------------------------------------------------------------------------------------------


@pytest.fixture
def fleet(api: Api) -> Api:
    """Two hosts and a process in two zones, with CPU readings in the last minute and one older."""
    resources = (
        Resource("h1", "host", {"zone": "a", "role": "db"}),
        Resource("h2", "host", {"zone": "b"}),
        Resource("p1", "process", {"zone": "a"}),
    )
    samples = (
        Sample("h1", "cpu", 0.2, NOW - 55, "fraction"),
        Sample("h1", "cpu", 0.4, NOW - 35, "fraction"),
        Sample("h1", "cpu", 0.6, NOW - 15, "fraction"),
        Sample("h1", "cpu", 0.99, NOW - 300, "fraction"),  # outside the default 60 s window
        Sample("h2", "cpu", 0.9, NOW - 20, "fraction"),
        Sample("p1", "cpu", 0.1, NOW - 5, "fraction"),
        Sample("h1", "mem", 2048.0, NOW - 15, "bytes"),
    )
    r = api.post_batch(make_batch("fleet", samples, resources))
    assert r.json()["stored"] == len(samples)
    return api


def _ids(r: Any) -> list[str]:
    assert r.status_code == 200, r.text
    return [x["id"] for x in r.json()]


def test_resources_filtered_by_kind_and_labels(fleet: Api) -> None:
    assert _ids(fleet.get("/api/v1/resources")) == ["h1", "h2", "p1"]
    assert _ids(fleet.get("/api/v1/resources", params={"kind": "host"})) == ["h1", "h2"]
    assert _ids(fleet.get("/api/v1/resources", params={"label": "zone=a"})) == ["h1", "p1"]
    assert _ids(fleet.get("/api/v1/resources", params={"label": ["zone=a", "role=db"]})) == ["h1"]
    assert _ids(fleet.get("/api/v1/resources", params={"kind": "process", "label": "zone=b"})) == []
    assert _ids(fleet.get("/api/v1/resources", params={"kind": "vm"})) == []
    [h1] = fleet.get("/api/v1/resources", params={"label": "role=db"}).json()
    assert h1 == {"id": "h1", "kind": "host", "labels": {"zone": "a", "role": "db"}}


@pytest.mark.parametrize("label", ["zone", "=a", ""])
def test_malformed_label_filter_is_422(fleet: Api, label: str) -> None:
    r = fleet.get("/api/v1/resources", params={"label": label})
    assert r.status_code == 422
    [error] = r.json()["detail"]
    assert error["loc"] == ["query", "label"]
    assert "key=value" in error["msg"]


def _points(r: Any) -> list[float]:
    assert r.status_code == 200, r.text
    return [p["value"] for p in r.json()["points"]]


def test_series_ranges_and_defaults(api: Api) -> None:
    samples = (
        Sample("h1", "cpu", 0.1, NOW - 7200, "fraction"),
        Sample("h1", "cpu", 0.2, NOW - 3000, "fraction"),
        Sample("h1", "cpu", 0.3, NOW - 10, "fraction"),
        Sample("h1", "cpu", 0.4, NOW, "fraction"),
    )
    api.post_batch(make_batch(samples=samples))
    url = "/api/v1/series"
    base = {"resource": "h1", "metric": "cpu"}
    # Default: the last hour before now, end excluded.
    r = api.get(url, params=base)
    assert r.json() == {
        "resource_id": "h1",
        "metric": "cpu",
        "unit": "fraction",
        "points": [{"timestamp": NOW - 3000, "value": 0.2}, {"timestamp": NOW - 10, "value": 0.3}],
    }
    assert _points(api.get(url, params={**base, "start": NOW - 8000})) == [0.1, 0.2, 0.3]
    assert _points(api.get(url, params={**base, "start": NOW - 8000, "end": NOW + 1})) == [0.1, 0.2, 0.3, 0.4]
    assert _points(api.get(url, params={**base, "end": NOW - 5})) == [0.2, 0.3]  # start defaults to end - 3600
    assert _points(api.get(url, params={**base, "start": 0, "end": NOW + 1, "limit": 2})) == [0.1, 0.2]
    assert _points(api.get(url, params={**base, "start": NOW - 10, "end": NOW - 10})) == []
    unknown = api.get(url, params={"resource": "nope", "metric": "cpu"})
    assert unknown.json() == {"resource_id": "nope", "metric": "cpu", "unit": "", "points": []}
    # The server's clock is the default end: [now - 3600, now).
    api.clock.t = NOW + 3590
    assert _points(api.get(url, params=base)) == [0.3, 0.4]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"resource": "h1", "metric": "cpu", "start": NOW, "end": NOW - 1}, "start"),
        ({"metric": "cpu"}, "resource"),
        ({"resource": "h1"}, "metric"),
        ({"resource": "h1", "metric": "cpu", "limit": 0}, "limit"),
        ({"resource": "h1", "metric": "cpu", "start": "yesterday"}, "start"),
    ],
)
def test_series_bad_query_is_422(api: Api, params: dict[str, Any], field: str) -> None:
    r = api.get("/api/v1/series", params=params)
    assert r.status_code == 422
    assert [e["loc"] for e in r.json()["detail"]] == [["query", field]]


def test_latest(api: Api) -> None:
    api.post_batch(make_batch("one", (Sample("h1", "cpu", 0.2, NOW - 10), Sample("h1", "mem", 5.0, NOW - 10))))
    api.post_batch(
        make_batch("two", (Sample("h1", "cpu", 0.7, NOW, "fraction", "host"), Sample("h2", "cpu", 0.5, NOW)))
    )
    rows = api.get("/api/v1/latest").json()
    assert [(r["resource_id"], r["metric"], r["value"]) for r in rows] == [
        ("h1", "cpu", 0.7),
        ("h1", "mem", 5.0),
        ("h2", "cpu", 0.5),
    ]
    assert rows[0] == {
        "resource_id": "h1",
        "metric": "cpu",
        "value": 0.7,
        "timestamp": NOW,
        "unit": "fraction",
        "source": "host",
    }
    cpu = api.get("/api/v1/latest", params={"metric": "cpu"}).json()
    assert [(r["resource_id"], r["value"]) for r in cpu] == [("h1", 0.7), ("h2", 0.5)]
    h2 = api.get("/api/v1/latest", params={"resource": "h2"}).json()
    assert [(r["resource_id"], r["metric"]) for r in h2] == [("h2", "cpu")]
    both = api.get("/api/v1/latest", params={"resource": ["h1", "h2"], "metric": "mem"}).json()
    assert [(r["resource_id"], r["metric"]) for r in both] == [("h1", "mem")]


def test_stats_per_resource(fleet: Api) -> None:
    r = fleet.get("/api/v1/stats", params={"metric": "cpu"})
    assert r.status_code == 200, r.text
    by_key = {s["key"]: s for s in r.json()}
    assert list(by_key) == ["h1", "h2", "p1"]
    h1 = by_key["h1"]
    assert (h1["metric"], h1["count"], h1["max"], h1["latest"]) == ("cpu", 3, 0.6, 0.6)
    assert h1["mean"] == pytest.approx(0.4)
    assert h1["p95"] == pytest.approx(0.58)  # linear interpolation between 0.4 and 0.6
    assert by_key["h2"]["count"] == 1
    # A wider window reaches the older reading.
    wide = {s["key"]: s for s in fleet.get("/api/v1/stats", params={"metric": "cpu", "window": 600}).json()}
    assert (wide["h1"]["count"], wide["h1"]["max"]) == (4, 0.99)
    assert fleet.get("/api/v1/stats", params={"metric": "nope"}).json() == []


def test_stats_grouped_by_label(fleet: Api) -> None:
    r = fleet.get("/api/v1/stats", params={"metric": "cpu", "group_by": "zone"})
    assert r.status_code == 200, r.text
    by_key = {s["key"]: s for s in r.json()}
    assert list(by_key) == ["a", "b"]
    assert by_key["a"]["count"] == 4  # h1's three readings and p1's one
    assert by_key["a"]["mean"] == pytest.approx((0.2 + 0.4 + 0.6 + 0.1) / 4)
    assert by_key["a"]["latest"] == 0.1  # p1's reading is the newest
    assert (by_key["b"]["count"], by_key["b"]["max"]) == (1, 0.9)
    hosts = {
        s["key"]: s["count"]
        for s in fleet.get("/api/v1/stats", params={"metric": "cpu", "group_by": "zone", "kind": "host"}).json()
    }
    assert hosts == {"a": 3, "b": 1}
    assert fleet.get("/api/v1/stats", params={"metric": "cpu", "group_by": "rack"}).json() == []


@pytest.mark.parametrize("window", [0, -1, 31 * 86400 + 1])
def test_stats_window_out_of_range_is_422(fleet: Api, window: float) -> None:
    r = fleet.get("/api/v1/stats", params={"metric": "cpu", "window": window})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["query", "window"]


def test_events(api: Api) -> None:
    ids = [
        api.store.add_event(Event(NOW - 30, "scale", "pool-a", "p95 0.91 > 0.80", "ok", {"from": 2, "to": 3})),
        api.store.add_event(Event(NOW - 20, "migrate", "vm-7", "host h1 hot", "failed", {"to": "h2"})),
        api.store.add_event(Event(NOW - 10, "scale", "pool-b", "p95 0.10 < 0.30", "ok")),
    ]
    r = api.get("/api/v1/events")
    assert r.status_code == 200, r.text
    rows = r.json()
    assert [e["id"] for e in rows] == ids[::-1]  # newest first
    assert rows[2] == {
        "id": ids[0],
        "time": NOW - 30,
        "kind": "scale",
        "subject": "pool-a",
        "reason": "p95 0.91 > 0.80",
        "result": "ok",
        "details": {"from": 2, "to": 3},
    }

    def subjects(**params: Any) -> list[str]:
        return [e["subject"] for e in api.get("/api/v1/events", params=params).json()]

    assert subjects(kind="scale") == ["pool-b", "pool-a"]
    assert subjects(subject="vm-7") == ["vm-7"]
    assert subjects(since=NOW - 20) == ["pool-b", "vm-7"]
    assert subjects(after_id=ids[0]) == ["pool-b", "vm-7"]
    assert subjects(limit=1) == ["pool-b"]
    assert subjects(kind="scale", since=NOW - 15) == ["pool-b"]


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 10_001}, {"after_id": -1}, {"after_id": 2**63}])
def test_events_bad_query_is_422(api: Api, params: dict[str, Any]) -> None:
    r = api.get("/api/v1/events", params=params)  # after_id 2**63 used to overflow SQLite's integer: a 500
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["query", next(iter(params))]


def test_healthz(api: Api) -> None:
    r = api.get("/api/v1/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "version": api.app.version, "store": "sqlite"}


# --- read authentication --------------------------------------------------------------------------------------------

TOKEN = "s3cret-token"


@pytest.fixture
def locked(make_api: Callable[..., Api]) -> Api:
    return make_api(server={"read_auth": "token", "read_token": TOKEN})


@pytest.mark.parametrize("path", READ_PATHS)
@pytest.mark.parametrize(
    "authorization", [None, "Bearer wrong", "Bearer ", f"Basic {TOKEN}", f"Bearer {TOKEN}x"], ids=str
)
def test_reads_without_the_right_token_are_401(locked: Api, path: str, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    r = locked.get(path, headers=headers)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert "token" in r.json()["detail"]


@pytest.mark.parametrize("path", READ_PATHS)
def test_reads_with_the_token_are_200(locked: Api, path: str) -> None:
    r = locked.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200, r.text


def test_healthz_and_signed_writes_need_no_read_token(locked: Api) -> None:
    assert locked.get("/api/v1/healthz").status_code == 200
    assert locked.post_batch(make_batch()).status_code == 200


def test_token_from_the_environment(make_api: Callable[..., Api], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOADPILOT_READ_TOKEN", "from-env")
    api = make_api(server={"read_auth": "token"})
    assert api.get("/api/v1/resources").status_code == 401
    assert api.get("/api/v1/resources", headers={"Authorization": "Bearer from-env"}).status_code == 200


@pytest.mark.parametrize("path", READ_PATHS)
def test_default_config_on_loopback_needs_no_token(api: Api, path: str) -> None:
    assert api.get(path).status_code == 200


def test_listening_beyond_loopback_needs_a_token_by_default(make_api: Callable[..., Api]) -> None:
    api = make_api(server={"host": "0.0.0.0", "read_token": TOKEN})
    assert api.get("/api/v1/resources").status_code == 401
    assert api.get("/api/v1/resources", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    open_api = make_api(server={"host": "0.0.0.0", "read_auth": "none"})
    assert open_api.get("/api/v1/resources").status_code == 200


# --- /metrics ---------------------------------------------------------------------------------------------------------


def _metrics(api: Api) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = api.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def _value(metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return metrics.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_batches_samples_and_rejects(api: Api, make_api: Callable[..., Api]) -> None:
    def delta(name: str, **labels: str) -> float:
        return _value(_metrics(api), name, **labels) - _value(start, name, **labels)

    start = _metrics(api)
    assert api.post_batch(make_batch("m-1")).json()["stored"] == 2
    assert delta("loadpilot_ingest_batches_total", result="stored") == 1
    assert delta("loadpilot_ingest_samples_total", result="stored") == 2
    assert delta("loadpilot_store_write_seconds_count") == 1

    assert api.post_batch(make_batch("m-1")).json()["duplicate"] is True
    assert delta("loadpilot_ingest_batches_total", result="duplicate") == 1
    assert delta("loadpilot_ingest_samples_total", result="duplicate") == 2

    # A known sample identity in a new batch: the batch is stored, the sample counted as a duplicate.
    api.post_batch(make_batch("m-2", samples=(Sample("h1", "cpu", 0.3, NOW + 1),)))
    assert delta("loadpilot_ingest_batches_total", result="stored") == 2
    assert delta("loadpilot_ingest_samples_total", result="duplicate") == 3
    assert delta("loadpilot_store_write_seconds_count") == 3

    assert api.post_batch(make_batch("m-3"), key=b"wrong").status_code == 401
    assert api.post_batch(make_batch("m-4"), at=NOW - 301).status_code == 401
    assert delta("loadpilot_ingest_rejects_total", reason="signature") == 2
    assert api.post_body(b"{}", "m-5").status_code == 422
    assert delta("loadpilot_ingest_rejects_total", reason="malformed") == 1
    # Nothing else moved: rejections are not batches.
    assert delta("loadpilot_ingest_batches_total", result="stored") == 2
    assert delta("loadpilot_store_write_seconds_count") == 3

    small = make_api(server={"max_body_bytes": LIMIT})
    assert small.post_body(_padded(LIMIT + 1)).status_code == 413
    assert _value(_metrics(small), "loadpilot_ingest_rejects_total", reason="too_large") == 1
    assert delta("loadpilot_ingest_rejects_total", reason="too_large") == 0  # each server counts its own


def test_metrics_expose_the_store_latency_histogram(api: Api) -> None:
    api.post_batch(make_batch())
    r = api.get("/metrics")
    families = {f.name: f for f in text_string_to_metric_families(r.text)}
    hist = families["loadpilot_store_write_seconds"]
    assert hist.type == "histogram"
    buckets = [s for s in hist.samples if s.name == "loadpilot_store_write_seconds_bucket"]
    assert buckets[-1].labels["le"] == "+Inf"
    assert buckets[-1].value == 1
    total = next(s for s in hist.samples if s.name == "loadpilot_store_write_seconds_sum")
    assert total.value > 0
    assert {"loadpilot_ingest_batches", "loadpilot_ingest_samples", "loadpilot_retention_removed_samples"} <= set(
        families
    )


# --- the OpenAPI document ---------------------------------------------------------------------------------------------


def _refs(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str):
                yield v
            else:
                yield from _refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from _refs(v)


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


@pytest.fixture
def openapi(api: Api) -> dict[str, Any]:
    r = api.get("/openapi.json")
    assert r.status_code == 200
    doc: dict[str, Any] = r.json()
    return doc


def test_openapi_lists_every_operation(openapi: dict[str, Any]) -> None:
    assert openapi["openapi"].startswith("3.")
    assert {(p, m) for p, ops in openapi["paths"].items() for m in ops} == {
        ("/api/v1/samples", "post"),
        ("/api/v1/resources", "get"),
        ("/api/v1/series", "get"),
        ("/api/v1/latest", "get"),
        ("/api/v1/stats", "get"),
        ("/api/v1/events", "get"),
        ("/api/v1/healthz", "get"),
        ("/metrics", "get"),
        ("/api/v1/dash/overview", "get"),
        ("/api/v1/dash/pools/{name}", "get"),
        ("/api/v1/dash/hosts/{host_id}", "get"),
        ("/api/v1/dash/coordination", "get"),
    }


def test_openapi_every_reference_resolves(openapi: dict[str, Any]) -> None:
    refs = set(_refs(openapi))
    assert "#/components/schemas/BatchBody" in refs
    for ref in refs:
        assert isinstance(_resolve(openapi, ref), dict), ref


def test_openapi_ingest_operation(openapi: dict[str, Any]) -> None:
    op = openapi["paths"]["/api/v1/samples"]["post"]
    body = op["requestBody"]
    assert body["required"] is True
    assert body["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/BatchBody"}
    headers = {p["name"]: p for p in op["parameters"] if p["in"] == "header"}
    assert set(headers) == {SIGNATURE_HEADER, TIMESTAMP_HEADER, BATCH_HEADER}
    assert all(h["required"] for h in headers.values())
    assert {"200", "401", "413", "422", "503"} <= set(op["responses"])
    assert op["responses"]["401"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Problem"}

    schema = openapi["components"]["schemas"]["BatchBody"]
    assert set(schema["properties"]) == {"agent", "interval", "resources", "samples"}
    assert set(schema["required"]) == {"agent", "interval", "samples"}
    assert schema["additionalProperties"] is False
    as_object, as_array = schema["properties"]["samples"]["items"]["anyOf"]
    assert set(as_object["required"]) == {"resource_id", "metric", "value", "timestamp"}
    assert as_object["properties"]["value"]["type"] == "number"
    assert as_object["additionalProperties"] is False
    assert [item["type"] for item in as_array["prefixItems"]] == [
        "string",
        "string",
        "number",
        "number",
        "string",
        "string",
    ]
    assert (as_array["minItems"], as_array["maxItems"]) == (4, 6)


def test_openapi_read_parameters(openapi: dict[str, Any]) -> None:
    def params(path: str) -> dict[str, dict[str, Any]]:
        return {p["name"]: p for p in openapi["paths"][path]["get"]["parameters"] if p["in"] == "query"}

    assert params("/api/v1/resources")["label"]["schema"]["type"] == "array"
    series = params("/api/v1/series")
    assert series["resource"]["required"] and series["metric"]["required"]
    assert not series["start"]["required"]
    assert params("/api/v1/events")["after_id"]["schema"]["anyOf"][0]["maximum"] == 2**63 - 1
    assert "group_by" in params("/api/v1/stats")
