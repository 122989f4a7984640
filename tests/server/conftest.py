"""The HTTP API over a real SQLite store, driven in-process through its ASGI interface (lifespan included)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from loadpilot.config import Config, parse_config
from loadpilot.model import Batch, Resource, Sample
from loadpilot.server.app import create_app
from loadpilot.store import Store, open_store
from loadpilot.transport.signing import signed_headers
from loadpilot.transport.wire import encode_batch

KEY = b"test-signing-key"
NOW = 1_700_000_000.0
SAMPLES = "/api/v1/samples"


@dataclass
class FakeClock:
    """The server's clock: tests set it, nothing sleeps."""

    t: float = NOW

    def __call__(self) -> float:
        return self.t


def make_batch(
    batch_id: str = "b-1",
    samples: tuple[Sample, ...] | None = None,
    resources: tuple[Resource, ...] = (),
    interval: float = 5.0,
    agent: str = "agent-1",
) -> Batch:
    """A batch; by default two samples of one host at NOW."""
    if samples is None:
        samples = (
            Sample("h1", "cpu", 0.25, NOW, "fraction", "host"),
            Sample("h1", "mem", 1024.0, NOW, "bytes", "host"),
        )
    return Batch(batch_id, agent, interval, samples, resources)


@dataclass
class Api:
    """A running app, its store and clock, and helpers to talk to it."""

    client: TestClient
    app: FastAPI
    store: Store
    clock: FakeClock
    key: bytes = KEY
    headers: dict[str, str] = field(default_factory=dict)

    def post_body(
        self, body: bytes, batch_id: str = "b-1", *, key: bytes | None = None, at: float | None = None
    ) -> httpx.Response:
        """POST a raw body signed now (or `at`) under the server's key (or `key`)."""
        signed = signed_headers(key or self.key, batch_id, body, self.clock.t if at is None else at)
        return self.client.post(SAMPLES, content=body, headers=signed)

    def post_batch(self, batch: Batch, **kwargs: Any) -> httpx.Response:
        return self.post_body(encode_batch(batch), batch.batch_id, **kwargs)

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.client.get(url, **kwargs)


@pytest.fixture(autouse=True)
def _no_env_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    """The process environment must not change what the config says."""
    for name in ("LOADPILOT_READ_TOKEN", "LOADPILOT_SIGNING_KEY", "LOADPILOT_STORE_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A fresh SQLite store in a file of its own."""
    s = open_store(f"sqlite:///{tmp_path / 's.db'}")
    yield s
    s.close()


@pytest.fixture
def make_api(store: Store) -> Iterator[Callable[..., Api]]:
    """Start the app on `store` with a config built from keyword sections (e.g. server={...})."""
    with ExitStack() as stack:

        def start(**sections: Any) -> Api:
            config: Config = parse_config(sections)
            clock = FakeClock()
            app = create_app(config, store, KEY, now=clock)
            # Entering the client runs the lifespan (the retention task), as a real server would.
            client = stack.enter_context(TestClient(app))
            return Api(client, app, store, clock)

        yield start


@pytest.fixture
def api(make_api: Callable[..., Api]) -> Api:
    """The app with the default config: 127.0.0.1, reads open."""
    return make_api()
