"""The JSON form of a batch on the wire (the server's schema for it is `server.schemas.BatchBody`)."""

from __future__ import annotations

import json
from typing import Any

from loadpilot.model import Batch


def encode_batch(batch: Batch) -> bytes:
    """The request body for a batch (its id travels in a header, not in the body).

    Samples go in the compact form, an array of the fields in `Sample` order: half the bytes of named objects
    and a quarter less work for the server to parse. The server takes either form.
    """
    doc: dict[str, Any] = {
        "agent": batch.agent,
        "interval": batch.interval,
        "resources": [{"id": r.id, "kind": r.kind, "labels": r.labels} for r in batch.resources],
        "samples": batch.samples,  # named tuples: JSON arrays
    }
    return _dump(doc)


def _dump(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), allow_nan=False).encode()


def split_body(body: bytes) -> tuple[tuple[bytes, int], tuple[bytes, int]] | None:
    """A body cut in two, each half with half the samples (the resources go with the first), and the number of
    samples in each: for a batch the server found too large. None when it has a single sample."""
    doc = json.loads(body)
    samples = doc["samples"]
    if len(samples) < 2:
        return None
    half = len(samples) // 2
    first = {**doc, "samples": samples[:half]}
    second = {**doc, "resources": [], "samples": samples[half:]}
    return (
        (_dump(first), half),
        (_dump(second), len(samples) - half),
    )
