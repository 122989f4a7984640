"""Property-based tests from the app's own OpenAPI document: no operation answers 5xx, whatever it is sent.

Unsigned bodies stop at the signature check (401), so POST /samples is also fed generated bodies that are
correctly signed: those must be stored (200) or refused with a reason (422), never crash the server.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterator
from typing import Any

import hypothesis.strategies as st
import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from loadpilot.config import Config
from loadpilot.model import Event, Resource, Sample
from loadpilot.server.app import create_app
from loadpilot.store import Store, open_store
from loadpilot.transport.signing import signed_headers
from tests.server.conftest import KEY, NOW, SAMPLES, make_batch

EXAMPLES = 40
FAST = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def module_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """One store for the module, with a little of everything so reads have something to return."""
    store = open_store(f"sqlite:///{tmp_path_factory.mktemp('schemathesis') / 's.db'}")
    resources = (Resource("h1", "host", {"zone": "a"}), Resource("p1", "process", {"zone": "b", "pool": "web"}))
    samples = tuple(Sample(r.id, "cpu", 0.1 * i, NOW - 10 * i, "fraction") for i in range(5) for r in resources)
    store.write_batch(make_batch("seed", samples, resources))
    store.add_event(Event(NOW - 5, "scale", "web", "p95 high", "ok", {"to": 3}))
    yield store
    store.close()


@pytest.fixture(scope="module")
def app(module_store: Store) -> FastAPI:
    return create_app(Config(), module_store, KEY, now=lambda: NOW)


def _document() -> dict[str, Any]:
    """The app's OpenAPI document. Building it touches no store, so it can be made when the module loads."""

    class _NoStore:
        url = "sqlite:///unused"

    doc: dict[str, Any] = create_app(Config(), _NoStore(), KEY).openapi()  # type: ignore[arg-type]
    return doc


# Loaded eagerly: schemathesis' lazy `from_fixture` loader does not work with pytest 9 (it reads the removed
# `Node._nodeid`). The document is the app's; the requests go to the app of the `app` fixture.
DOCUMENT = _document()
schema = schemathesis.openapi.from_dict(DOCUMENT)


def test_the_document_tested_is_the_one_served(client: TestClient) -> None:
    r = client.get("/openapi.json")
    assert r.status_code == 200
    assert r.json() == json.loads(json.dumps(DOCUMENT))


@schema.parametrize()
@FAST
def test_no_operation_answers_5xx(case: Any, app: FastAPI) -> None:
    response = case.call(app=app)
    assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.status_code}\n{response.text}"
    # Whatever the answer, it is one the document promises, in the shape it promises.
    case.validate_response(
        response, checks=[status_code_conformance, content_type_conformance, response_schema_conformance]
    )


# --- POST /samples with correct signatures ------------------------------------------------------------------------

_ids = itertools.count()


@pytest.fixture(scope="module")
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


def _post_signed(client: TestClient, store: Store, doc: object) -> int:
    """POST `doc` signed with the right key under a new batch id; check the answer; return its status."""
    # `json.dumps` writes NaN and Infinity as the bare tokens pydantic's JSON parser accepts: an edge worth having.
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    before = store.counts()["samples"]
    r = client.post(SAMPLES, content=body, headers=signed_headers(KEY, f"gen-{next(_ids)}", body, NOW))
    assert r.status_code in (200, 422), f"{r.status_code} for {body[:500]!r}: {r.text}"
    result = r.json()
    if r.status_code == 422:
        assert result["detail"]
        assert result["errors"]
        assert store.counts()["samples"] == before
    else:
        assert isinstance(doc, dict)
        assert result["duplicate"] is False
        assert result["received"] == len(doc["samples"])
        assert 0 <= result["stored"] <= result["received"]
        assert store.counts()["samples"] == before + result["stored"]
    return r.status_code


def test_signed_bodies_from_the_schema_are_stored_or_refused(client: TestClient, module_store: Store) -> None:
    """Bodies schemathesis derives from BatchBody, valid (positive) and invalid (negative), signed correctly."""
    operation = schema["/api/v1/samples"]["POST"]
    cases = st.one_of(
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )
    outcomes: set[int] = set()

    @settings(FAST, derandomize=True)
    @given(case=cases)
    def check(case: Any) -> None:
        outcomes.add(_post_signed(client, module_store, case.body))

    check()
    assert outcomes == {200, 422}  # both branches were exercised


_odd_numbers = st.one_of(
    st.floats(),
    st.sampled_from([0.0, -0.0, 5e-324, 1e-300, 1e-7, 0.001, 86400.5, 1e11, 1e308, math.inf, -math.inf, math.nan]),
    st.integers(min_value=-(2**70), max_value=2**70),
)
_odd_strings = st.one_of(st.text(max_size=10), st.sampled_from(["", "a\x00b", "x" * 300, "0.5", "NaN", "\u2028"]))
_odd = st.one_of(_odd_numbers, _odd_strings, st.none(), st.booleans(), st.just([]), st.just({}))

_valid_sample = st.fixed_dictionaries(
    {
        "resource_id": st.sampled_from(["h1", "h2", "p1"]),
        "metric": st.sampled_from(["cpu", "mem"]),
        "value": st.floats(allow_nan=False, allow_infinity=False),
        "timestamp": st.floats(NOW - 100, NOW + 100),
    },
    optional={"unit": st.sampled_from(["", "fraction"]), "source": st.text(max_size=5)},
)
_valid_resource = st.fixed_dictionaries(
    {"id": st.sampled_from(["h1", "h2"]), "kind": st.sampled_from(["host", "vm"])},
    optional={"labels": st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3)},
)
_valid_document = st.fixed_dictionaries(
    {
        "agent": st.sampled_from(["agent-1", "agent-2"]),
        "interval": st.one_of(st.sampled_from([0.001, 1, 5, 60.0, 86400]), st.floats(0.001, 86400)),
        "samples": st.lists(_valid_sample, min_size=1, max_size=4),
    },
    optional={"resources": st.lists(_valid_resource, max_size=2)},
)


@st.composite
def _documents(draw: st.DrawFn) -> dict[str, Any]:
    """A valid BatchBody document with up to three fields removed or replaced by odd values."""
    doc: dict[str, Any] = draw(_valid_document)
    for _ in range(draw(st.integers(0, 3))):
        places = [doc]
        for items in (doc.get("samples"), doc.get("resources")):
            if isinstance(items, list):
                places += [item for item in items if isinstance(item, dict)]
        target = draw(st.sampled_from(places))
        key = draw(st.sampled_from([*sorted(target), "unexpected"]))
        if key in target and draw(st.booleans()):
            del target[key]
        else:
            target[key] = draw(_odd)
    return doc


_ONE = {"resource_id": "h1", "metric": "cpu", "value": 0.5, "timestamp": NOW}


@FAST
@given(doc=_documents())
@example(doc={"agent": "a", "interval": 1e-300, "samples": [_ONE]})  # the slot overflowed a float: was a 500
@example(doc={"agent": "a", "interval": 1e-12, "samples": [_ONE]})  # the slot overflowed SQLite's int: was a 500
@example(doc={"agent": "a", "interval": 5, "samples": [{**_ONE, "value": math.nan}]})
@example(doc={"agent": "a\x00", "interval": 5, "samples": [_ONE]})  # PostgreSQL text cannot hold NUL
def test_signed_near_valid_documents_are_stored_or_refused(
    client: TestClient, module_store: Store, doc: dict[str, Any]
) -> None:
    """Valid documents with a few fields removed or made odd: numeric edges (NaN, infinities, tiny intervals,
    huge integers), odd strings (NUL, numbers as strings), wrong types and unknown keys."""
    _post_signed(client, module_store, doc)


def test_schema_has_every_operation() -> None:
    """The run covers every operation of the document (a broken $ref or a filter would hide some)."""
    operations = {(op.ok().method.upper(), op.ok().path) for op in schema.get_all_operations()}
    assert operations == {
        ("POST", "/api/v1/samples"),
        ("GET", "/api/v1/resources"),
        ("GET", "/api/v1/series"),
        ("GET", "/api/v1/latest"),
        ("GET", "/api/v1/stats"),
        ("GET", "/api/v1/events"),
        ("GET", "/api/v1/healthz"),
        ("GET", "/metrics"),
        ("GET", "/api/v1/dash/overview"),
        ("GET", "/api/v1/dash/pools/{name}"),
        ("GET", "/api/v1/dash/hosts/{host_id}"),
        ("GET", "/api/v1/dash/coordination"),
    }
