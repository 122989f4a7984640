"""The JSON form of a batch on the wire (the server's schema for it is `server.schemas.BatchBody`)."""

from __future__ import annotations

import json
from typing import Any

from loadpilot.model import Batch


def encode_batch(batch: Batch) -> bytes:
    """The request body for a batch (its id travels in a header, not in the body)."""
    doc: dict[str, Any] = {
        "agent": batch.agent,
        "interval": batch.interval,
        "resources": [{"id": r.id, "kind": r.kind, "labels": r.labels} for r in batch.resources],
        "samples": [
            {
                "resource_id": s.resource_id,
                "metric": s.metric,
                "value": s.value,
                "timestamp": s.timestamp,
                "unit": s.unit,
                "source": s.source,
            }
            for s in batch.samples
        ],
    }
    return json.dumps(doc, separators=(",", ":"), allow_nan=False).encode()
