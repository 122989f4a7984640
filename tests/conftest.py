"""Fixtures shared by the whole test tree: a real PostgreSQL server, and a fresh database on it per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.act.pool.conftest import start_pool  # noqa: F401 (a real pool supervisor, for any test)
from tests.helpers import required_server
from tests.pgserver import PostgresServer, PostgresUnavailable, running_postgres


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the test session (LOADPILOT_TEST_POSTGRES_URL's, or a throwaway one).

    Fails, never skips, when PostgreSQL is missing: the PostgreSQL store is tested for real or not at all.
    """
    yield from required_server(running_postgres, PostgresUnavailable, "PostgreSQL")


@pytest.fixture
def postgres_db(postgres_server: PostgresServer) -> Iterator[str]:
    """The URL of a fresh, empty database, dropped after the test."""
    url = postgres_server.create_database()
    yield url
    postgres_server.drop_database(url)
