"""The HTTP probe collector: is each endpoint up, and how long does it take to answer.

Its targets are *shared* resources: any agent can probe them, so when coordination is on, the agents split them
between themselves (loadpilot.coord) and each probes only its share. The agent tells the collector its share
before each reading (`assign`); without coordination it probes every target.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, ClassVar, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from loadpilot.model import Resource
from loadpilot.sense.collectors.base import Collection, CollectorOptions

SOURCE = "http_probe"
MAX_RESOURCE_ID = 256  # the longest resource id the server takes (server/schemas.py)


class Target(BaseModel):
    """One endpoint: its URL, the resource id it is stored under (default: the URL) and labels."""

    model_config = ConfigDict(extra="forbid")

    url: str
    id: str = ""
    labels: dict[str, str] = Field(default_factory=dict)

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @model_validator(mode="after")
    def _storable(self) -> Target:
        """The server refuses a batch with a longer resource id, and with it every sample of the agent's tick."""
        if len(self.resource_id) > MAX_RESOURCE_ID:
            field = "id" if self.id else "url"
            raise ValueError(
                f"{field}: the resource id (the url when no id is given) is {len(self.resource_id)} characters, "
                f"more than the server stores ({MAX_RESOURCE_ID}); give the target a shorter id"
            )
        return self

    @property
    def resource_id(self) -> str:
        """The id samples are stored under."""
        return self.id or self.url


class HttpProbeOptions(CollectorOptions):
    """`type = "http_probe"`: endpoints to probe every interval (a URL string or {url, id, labels} each)."""

    targets: list[Target] = Field(default_factory=list)
    timeout_s: Annotated[float, Field(gt=0, le=60)] = 2.0  # keep it under agent.interval_s
    concurrency: Annotated[int, Field(ge=1, le=256)] = 16
    method: Literal["GET", "HEAD"] = "GET"
    up_below: Annotated[int, Field(ge=100, le=600)] = 400  # a status code below this counts as up
    shared: bool = True  # false: every agent probes every target (no partitioning)

    @field_validator("targets", mode="before")
    @classmethod
    def _strings_are_urls(cls, value: object) -> object:
        if isinstance(value, list):
            return [{"url": v} if isinstance(v, str) else v for v in value]
        return value


class HttpProbeCollector:
    """Probes its assigned targets concurrently; `http.up` 0/1, `http.latency_s`, `http.status` per target."""

    Options: ClassVar[type[CollectorOptions]] = HttpProbeOptions

    def __init__(self, options: CollectorOptions, host: str) -> None:
        assert isinstance(options, HttpProbeOptions)
        self.options = options
        self.host = host
        self.targets = {t.resource_id: t for t in options.targets}
        self._assigned: frozenset[str] | None = None
        self._client = httpx.Client(timeout=options.timeout_s, follow_redirects=False)
        self._pool = ThreadPoolExecutor(max_workers=options.concurrency, thread_name_prefix="http-probe")
        self._lock = threading.Lock()

    def shared_resources(self) -> list[str]:
        """The resource ids any agent could probe (none when `shared = false`: this agent probes them all)."""
        return sorted(self.targets) if self.options.shared else []

    def assign(self, resource_ids: frozenset[str] | None) -> None:
        """Probe only these from the next reading on (None: all of them)."""
        with self._lock:
            self._assigned = resource_ids

    def collect(self, now: float) -> Collection:
        """Probe every assigned target once, all at the same time (at most `concurrency` in flight)."""
        with self._lock:
            assigned = self._assigned
        chosen = [
            t for rid, t in self.targets.items() if assigned is None or not self.options.shared or rid in assigned
        ]
        out = Collection()
        for target, (status, latency) in zip(chosen, self._pool.map(self._probe, chosen), strict=True):
            rid = target.resource_id
            out.resources.append(Resource(rid, "http_endpoint", {"url": target.url, **target.labels}))
            up = status is not None and status < self.options.up_below
            out.add(rid, "http.up", 1.0 if up else 0.0, now, "", SOURCE)
            if status is not None:
                out.add(rid, "http.status", status, now, "", SOURCE)
                out.add(rid, "http.latency_s", latency, now, "s", SOURCE)
        return out

    def _probe(self, target: Target) -> tuple[int | None, float]:
        started = time.perf_counter()
        try:
            response = self._client.request(self.options.method, target.url)
        except httpx.HTTPError:
            return None, time.perf_counter() - started
        return response.status_code, time.perf_counter() - started

    def close(self) -> None:
        """Stop the probe threads and close the connections."""
        self._pool.shutdown(wait=True)
        self._client.close()
