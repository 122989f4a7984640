"""Small key-value records kept in the coordination backend itself: member states, leases and epochs.

tooz offers groups, heartbeats and locks, but no key-value API that works on every driver (the file driver cannot
even update a member's capabilities). Handovers, leases and fencing epochs need a few small records that every
member can read, so each backend keeps them where it already lives:

    file://DIR        DIR/records/<namespace>/<table>/<key>.json, replaced atomically (write, rename)
    redis://          one hash per table: <namespace>:<table>
    etcd3+http://     one key per record: /loadpilot/<namespace>/<table>/<key>

Records are read-mostly and tiny. Whoever writes a record that others also write (a lease) holds a tooz lock.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from tooz import coordination

from loadpilot.coord.backend import CoordSettings
from loadpilot.errors import PermanentError, TemporaryError

RETRIES = 1  # a Redis call is tried again once, at once (redis_client)


class Records(Protocol):
    """Tables of small byte records in the coordination backend."""

    def get(self, table: str, key: str) -> bytes | None:
        """The record, or None when there is none."""
        ...

    def put(self, table: str, key: str, value: bytes, durable: bool = False) -> None:
        """Create or replace a record (`durable`: survive a power cut where the backend can tell)."""
        ...

    def delete(self, table: str, key: str) -> None:
        """Remove a record (nothing happens when there is none)."""
        ...

    def all(self, table: str) -> dict[str, bytes]:
        """Every record of a table, by key."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


def _safe(key: str) -> str:
    return urllib.parse.quote(key, safe="")


class FileRecords:
    """Records as files under the file:// backend's directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, table: str, key: str) -> Path:
        return self.root / _safe(table) / f"{_safe(key)}.json"

    def get(self, table: str, key: str) -> bytes | None:
        """The record's file contents, or None."""
        try:
            return self._path(table, key).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise TemporaryError(f"reading coordination record {table}/{key}: {exc}") from exc

    def put(self, table: str, key: str, value: bytes, durable: bool = False) -> None:
        """Replace the record's file atomically, so a reader sees the old record or the new one."""
        path = self._path(table, key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            with open(tmp, "wb") as f:
                f.write(value)
                if durable:
                    f.flush()
                    os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            raise TemporaryError(f"writing coordination record {table}/{key}: {exc}") from exc

    def delete(self, table: str, key: str) -> None:
        """Remove the record's file."""
        self._path(table, key).unlink(missing_ok=True)

    def all(self, table: str) -> dict[str, bytes]:
        """Every record file of the table."""
        out: dict[str, bytes] = {}
        folder = self.root / _safe(table)
        try:
            names = os.listdir(folder)
        except FileNotFoundError:
            return out
        for name in names:
            if name.startswith(".") or not name.endswith(".json"):
                continue
            try:
                out[urllib.parse.unquote(name.removesuffix(".json"))] = (folder / name).read_bytes()
            except FileNotFoundError:
                continue  # removed while listing
        return out

    def close(self) -> None:
        """Nothing held open."""


class RedisRecords:
    """Records as fields of one Redis hash per table."""

    def __init__(self, client: redis.Redis, namespace: str) -> None:
        self.client = client
        self.namespace = namespace

    def _hash(self, table: str) -> str:
        return f"{self.namespace}:{table}"

    def get(self, table: str, key: str) -> bytes | None:
        """HGET."""
        with _redis_errors(table):
            value = self.client.hget(self._hash(table), key)
        return _as_bytes(value) if value is not None else None

    def put(self, table: str, key: str, value: bytes, durable: bool = False) -> None:
        """HSET (durability is Redis's own persistence setting)."""
        with _redis_errors(table):
            self.client.hset(self._hash(table), key, value)

    def delete(self, table: str, key: str) -> None:
        """HDEL."""
        with _redis_errors(table):
            self.client.hdel(self._hash(table), key)

    def all(self, table: str) -> dict[str, bytes]:
        """HGETALL."""
        with _redis_errors(table):
            raw = self.client.hgetall(self._hash(table))
        return {_as_bytes(k).decode(): _as_bytes(v) for k, v in raw.items()}

    def incr(self, table: str, key: str) -> int:
        """Add one to a counter atomically and return the new value (HINCRBY): Redis's epochs."""
        with _redis_errors(table):
            return int(self.client.hincrby(self._hash(table), key, 1))

    def close(self) -> None:
        """Close the connection pool."""
        self.client.close()


def _as_bytes(value: bytes | str) -> bytes:
    """A Redis reply as bytes (the client is not asked to decode; its types allow both)."""
    return value.encode() if isinstance(value, str) else bytes(value)


@contextmanager
def _retryable(errors: type[Exception], what: str) -> Iterator[None]:
    """A backend client's errors as loadpilot's: every one of them is worth retrying."""
    try:
        yield
    except errors as exc:
        raise TemporaryError(f"{what}: {exc}") from exc


def _redis_errors(table: str) -> AbstractContextManager[None]:
    """Redis's errors, naming the table."""
    return _retryable(redis.RedisError, f"coordination records ({table}) in Redis")


class EtcdRecords:
    """Records as etcd keys, through the etcd3gw client the tooz driver already holds."""

    def __init__(self, client: object, namespace: str) -> None:
        from etcd3gw.client import Etcd3Client

        assert isinstance(client, Etcd3Client)
        self.client = client
        self.prefix = f"/loadpilot/{namespace}/"

    def _key(self, table: str, key: str) -> str:
        return f"{self.prefix}{_safe(table)}/{_safe(key)}"

    def get(self, table: str, key: str) -> bytes | None:
        """The key's value, or None."""
        with _etcd_errors(f"reading coordination record {table}/{key}"):
            values = self.client.get(self._key(table, key))
        return bytes(values[0]) if values else None

    def put(self, table: str, key: str, value: bytes, durable: bool = False) -> None:
        """Put the key (etcd commits through its raft log: always durable)."""
        with _etcd_errors(f"writing coordination record {table}/{key}"):
            self.client.put(self._key(table, key), value)

    def delete(self, table: str, key: str) -> None:
        """Delete the key."""
        with _etcd_errors(f"deleting coordination record {table}/{key}"):
            self.client.delete(self._key(table, key))

    def all(self, table: str) -> dict[str, bytes]:
        """Every key under the table's prefix."""
        prefix = f"{self.prefix}{_safe(table)}/"
        with _etcd_errors(f"listing coordination records {table}"):
            rows = self.client.get_prefix(prefix)
        out = {}
        for value, meta in rows:
            raw = meta["key"]
            name = raw.decode() if isinstance(raw, bytes) else str(raw)
            out[urllib.parse.unquote(name.removeprefix(prefix))] = bytes(value)
        return out

    def close(self) -> None:
        """The client belongs to the tooz driver."""


def _etcd_errors(what: str) -> AbstractContextManager[None]:
    """etcd3gw's errors (imported only when etcd is used: it is an optional dependency)."""
    from etcd3gw import exceptions

    return _retryable(exceptions.Etcd3Exception, f"{what} in etcd")


def redis_client(url: str, timeout: float) -> redis.Redis:
    """A Redis client for a tooz redis:// URL (host, port, password, db; sentinels are not supported here).

    A call is tried twice at most, at once (a pooled connection may have gone stale): redis-py's default, three
    retries with a backoff, would hold a member's tick for many seconds while Redis is away, and every caller
    already handles a TemporaryError at its next tick."""
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qs(parts.query)
    if "sentinel" in query:
        raise PermanentError("coordination.url: Redis sentinels are not supported for loadpilot's records")
    db = query.get("db", [parts.path.strip("/") or "0"])[0]
    return redis.Redis(
        host=parts.hostname or "localhost",
        port=parts.port or 6379,
        username=parts.username or None,
        password=urllib.parse.unquote(parts.password) if parts.password else None,
        db=int(db),
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), RETRIES),
    )


def file_root(url: str) -> Path:
    """The directory of a file:// URL."""
    return Path(urllib.parse.urlsplit(url).path)


def open_records(settings: CoordSettings, coordinator: coordination.CoordinationDriver | None = None) -> Records:
    """The records of `settings.namespace` in the backend the URL names (etcd reuses the coordinator's client)."""
    kind = settings.kind
    if kind == "file":
        return FileRecords(file_root(settings.url) / "records" / settings.namespace)
    if kind == "redis":
        return RedisRecords(redis_client(settings.url, settings.io_timeout), settings.namespace)
    if coordinator is None:
        raise PermanentError("etcd records need the started coordinator (its client)")
    return EtcdRecords(getattr(coordinator, "client", None), settings.namespace)
