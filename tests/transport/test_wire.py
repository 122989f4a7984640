"""The wire form of a batch is what the server's schema reads back, sample for sample."""

from __future__ import annotations

import json

from loadpilot.model import Batch, Resource, Sample
from loadpilot.server.schemas import BatchBody, SampleIn
from loadpilot.transport.wire import encode_batch


def test_a_batch_round_trips_through_the_server_schema() -> None:
    samples = (Sample("h1", "cpu.util", 0.25, 1_700_000_000.5, "fraction", "host"), Sample("h1", "load1", 1.5, 1.7e9))
    batch = Batch("b-1", "agent-1", 5.0, samples, (Resource("h1", "host", {"rack": "r1"}),))
    body = encode_batch(batch)
    assert json.loads(body)["samples"][0] == ["h1", "cpu.util", 0.25, 1_700_000_000.5, "fraction", "host"]
    doc = BatchBody.model_validate_json(body)
    assert (doc.agent, doc.interval, tuple(doc.samples)) == ("agent-1", 5.0, samples)
    assert [(r.id, r.kind, r.labels) for r in doc.resources] == [("h1", "host", {"rack": "r1"})]


def test_the_wire_sample_has_the_model_sample_fields_in_order() -> None:
    """The server turns a validated `SampleIn` into a `Sample` by position: the two must not drift apart."""
    assert SampleIn._fields == Sample._fields
    assert SampleIn._field_defaults == Sample._field_defaults
