"""PostgreSQL-only: errors that retrying cannot fix are permanent, so the server says so instead of retrying."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import pytest

from loadpilot.errors import PermanentError, TemporaryError
from loadpilot.store import open_store
from tests.pgserver import PostgresServer


def _with(url: str, *, path: str | None = None, user: str | None = None) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc if user is None else f"{user}@{parts.netloc.rsplit('@', 1)[-1]}"
    return urlunsplit(parts._replace(netloc=netloc, path=parts.path if path is None else path))


def test_a_missing_database_is_permanent(postgres_db: str) -> None:
    with pytest.raises(PermanentError, match="does not exist"):
        open_store(_with(postgres_db, path="/no_such_database_here"))


def test_an_unknown_role_is_permanent(postgres_db: str) -> None:
    with pytest.raises(PermanentError, match="no_such_role"):
        open_store(_with(postgres_db, user="no_such_role"))


def test_a_server_that_is_not_there_is_temporary(postgres_server: PostgresServer, postgres_db: str) -> None:
    parts = urlsplit(postgres_db)
    host = parts.hostname or "127.0.0.1"
    closed = urlunsplit(parts._replace(netloc=f"{host}:1"))  # nothing listens on port 1
    with pytest.raises(TemporaryError):
        open_store(closed)
