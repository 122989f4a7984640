"""Request and response bodies of the HTTP API, as pydantic models (they make the OpenAPI document)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, WithJsonSchema

from loadpilot.model import SampleFields

# No NUL characters: PostgreSQL cannot store them in text, and no name needs one.
NO_NUL = r"^[^\x00]*$"
Name = Annotated[str, Field(min_length=1, max_length=256, pattern=NO_NUL)]
Short = Annotated[str, Field(max_length=64, pattern=NO_NUL)]
LabelKey = Annotated[str, Field(max_length=64, pattern=NO_NUL)]
LabelValue = Annotated[str, Field(max_length=512, pattern=NO_NUL)]
# The smallest interval: with timestamps below 1e11 it keeps every slot (timestamp // interval) a 64-bit integer.
MIN_INTERVAL_S = 0.001

# Strict: numbers must be JSON numbers (not "0.5" or true), strings JSON strings.
_INPUT = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class ResourceIn(BaseModel):
    """A resource an agent describes: a host, a process, a VM."""

    model_config = _INPUT

    id: Name
    kind: Annotated[str, Field(min_length=1, max_length=32, pattern=NO_NUL)]
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict, max_length=64)


class SampleIn(NamedTuple):
    """One reading: utilisation as 0..1, memory in bytes, time in UNIX seconds.

    `model.Sample`'s fields in its order, with the limits a request must meet. A named tuple, not a model: a batch
    holds a thousand, and an object per sample cost a third of the ingest time.
    """

    resource_id: Name
    metric: Annotated[str, Field(min_length=1, max_length=128, pattern=NO_NUL)]
    value: float
    timestamp: Annotated[float, Field(gt=0, lt=1e11)]
    unit: Short = ""
    source: Short = ""


def _sample_json_schema() -> dict[str, Any]:
    """A sample on the wire: an object with named fields, or the compact array of the same fields in order.

    pydantic accepts both forms for a named tuple; this documents both, derived from `SampleIn` itself.
    """
    array = TypeAdapter(SampleIn).json_schema()
    fields = {
        name: {k: v for k, v in item.items() if k != "title"}
        for name, item in zip(SampleIn._fields, array["prefixItems"], strict=True)
    }
    required = [name for name in SampleIn._fields if name not in SampleIn._field_defaults]
    described = {"type": "object", "properties": fields, "required": required, "additionalProperties": False}
    return {"title": "Sample", "description": (SampleIn.__doc__ or "").splitlines()[0], "anyOf": [described, array]}


class BatchBody(BaseModel):
    """The body of POST /api/v1/samples. The batch id, signature and time travel in headers."""

    model_config = _INPUT

    agent: Name
    interval: Annotated[
        float, Field(ge=MIN_INTERVAL_S, le=86400, description="seconds between samples; slot = ts // interval")
    ]
    resources: list[ResourceIn] = Field(default_factory=list)
    samples: list[Annotated[SampleIn, WithJsonSchema(_sample_json_schema())]]


# What the agent sends, checked the fast way: a sample as a plain array of all six fields (pydantic builds plain
# tuples in Rust, named tuples by calling Python), and no NUL pattern (see parse_batch).
_CompactSample = tuple[
    Annotated[str, Field(min_length=1, max_length=256)],
    Annotated[str, Field(min_length=1, max_length=128)],
    float,
    Annotated[float, Field(gt=0, lt=1e11)],
    Annotated[str, Field(max_length=64)],
    Annotated[str, Field(max_length=64)],
]


class _CompactBatchBody(BatchBody):
    samples: list[_CompactSample]  # type: ignore[assignment]  # the same samples, in their compact form only


class ParsedBatch(NamedTuple):
    """A checked body of POST /api/v1/samples: each sample a tuple of `model.Sample`'s fields in order."""

    agent: str
    interval: float
    resources: list[ResourceIn]
    samples: Sequence[SampleFields]


def parse_batch(body: bytes) -> ParsedBatch:
    """Check a body against BatchBody; ValidationError names each bad field.

    The agent's bodies take a fast path, half the checking time: every sample a full array, and no NUL pattern
    on each of its thousand samples when the body has no NUL (a JSON string can hold one only as the escape
    \\u0000). Any other body, and any the fast path refuses, gets BatchBody's full check and its messages.
    """
    if b"\\u0000" not in body:
        try:
            fast = _CompactBatchBody.model_validate_json(body)
        except ValidationError:
            pass  # objects, short arrays, or a real problem: the full check says which
        else:
            return ParsedBatch(fast.agent, fast.interval, fast.resources, fast.samples)
    doc = BatchBody.model_validate_json(body)
    return ParsedBatch(doc.agent, doc.interval, doc.resources, doc.samples)


class IngestResult(BaseModel):
    """What the server did with a batch."""

    batch_id: str
    duplicate: bool = Field(description="the batch id was stored before: nothing was stored again")
    received: int
    stored: int = Field(description="samples new to the store (identities seen before are not stored twice)")


class Problem(BaseModel):
    """Why a request was refused."""

    detail: str
    errors: list[str] = Field(default_factory=list)


class ResourceOut(BaseModel):
    """A known resource."""

    id: str
    kind: str
    labels: dict[str, str]


class Point(BaseModel):
    """One sample of a series."""

    timestamp: float
    value: float


class SeriesOut(BaseModel):
    """A metric of a resource over a time range, oldest first."""

    resource_id: str
    metric: str
    unit: str
    points: list[Point]


class SampleOut(BaseModel):
    """A stored sample."""

    resource_id: str
    metric: str
    value: float
    timestamp: float
    unit: str
    source: str


class StatsOut(BaseModel):
    """Aggregates of a metric over a window, per resource or per group."""

    key: str
    metric: str
    count: int
    mean: float
    max: float
    p95: float
    latest: float


class EventOut(BaseModel):
    """Something loadpilot did or saw."""

    id: int
    time: float
    kind: str
    subject: str
    reason: str
    result: str
    details: dict[str, object]


class Health(BaseModel):
    """The server is up and its store answers."""

    status: str
    version: str
    store: str
