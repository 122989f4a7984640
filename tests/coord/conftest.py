"""Coordination fixtures: a real Redis, etcd and ZooKeeper for the session, and settings for each backend.

The servers fail the tests, never skip them, when they cannot run: the contract is tested for real or not at all.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from loadpilot.coord import CoordSettings
from tests.coord.servers import ServerUnavailable, running_etcd, running_redis, running_zookeeper
from tests.helpers import required_server

BACKENDS = ["file", "redis", "etcd", "zookeeper"]
SettingsFactory = Callable[..., CoordSettings]


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real Redis server for the session."""
    yield from required_server(running_redis, ServerUnavailable, "Redis (Debian's redis-server)")


@pytest.fixture(scope="session")
def etcd_url() -> Iterator[str]:
    """A real etcd server for the session."""
    yield from required_server(running_etcd, ServerUnavailable, "etcd (Debian's etcd-server)")


@pytest.fixture(scope="session")
def zookeeper_url() -> Iterator[str]:
    """A real standalone ZooKeeper for the session."""
    yield from required_server(running_zookeeper, ServerUnavailable, "ZooKeeper (Debian's zookeeper, and Java)")


def backend_url(request: pytest.FixtureRequest, kind: str, tmp_path: Path) -> str:
    """The URL of a backend of `kind` for one test (file: a fresh directory)."""
    if kind == "file":
        return f"file://{tmp_path / 'coord'}"
    return str(request.getfixturevalue(f"{kind}_url"))


@pytest.fixture(params=BACKENDS)
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> SettingsFactory:
    """Settings for one backend (every test runs on each) in a namespace of its own."""
    url = backend_url(request, request.param, tmp_path)
    namespace = f"t{uuid.uuid4().hex[:10]}"

    def make(**overrides: object) -> CoordSettings:
        base = CoordSettings(url=url, namespace=namespace, member_timeout_s=2.0, tick_s=0.2)
        return replace(base, **overrides)

    return make
