"""Small key-value records kept in the coordination backend itself: member states, leases and epochs.

tooz offers groups, heartbeats and locks, but no key-value API that works on every driver (the file driver cannot
even update a member's capabilities). Handovers, leases and fencing epochs need a few small records that every
member can read, so each backend keeps them where it already lives:

    file://DIR        DIR/records/<namespace>/<table>/<key>.json, replaced atomically (write, rename)
    redis://          one hash per table: <namespace>:<table>
    etcd3+http://     one key per record: /loadpilot/<namespace>/<table>/<key>
    zookeeper://      one znode per record: /loadpilot/<namespace>/<table>/<key>

Records are read-mostly and tiny. Whoever writes a record that others also write (a lease) holds a tooz lock, or,
where the backend can compare and set (SwapRecords: ZooKeeper, through znode versions), swaps it.
"""

from __future__ import annotations

import contextlib
import os
import urllib.parse
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from tooz import coordination

from loadpilot.coord.backend import CoordSettings, zookeeper_error
from loadpilot.errors import PermanentError, TemporaryError

if TYPE_CHECKING:
    from kazoo.client import KazooClient

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


@runtime_checkable
class SwapRecords(Records, Protocol):
    """Records that can also be replaced only if they still hold what the writer last read."""

    def swap(self, table: str, key: str, expected: bytes | None, value: bytes) -> bool:
        """Replace the record with `value` if it still is `expected` (None: create it if there is none), atomically;
        False when another writer changed it first (nothing is written then)."""
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


class ZooKeeperRecords:
    """Records as znodes, through the kazoo client the tooz driver already holds.

    Every call waits `timeout` seconds at most (kazoo's own calls wait for ever while the server is away), and
    `swap` is a compare-and-set on the znode's version. Reads come from the server the member is connected to and
    may lag the ensemble's leader for a moment (a handover then waits a moment longer for a confirmation); a swap
    after such a read fails, since the leader checks the version, and never overwrites a newer record."""

    def __init__(self, client: KazooClient, namespace: str, timeout: float) -> None:
        self.client = client
        self.prefix = f"/loadpilot/{namespace}"
        self.timeout = timeout

    def _table(self, table: str) -> str:
        return f"{self.prefix}/{_safe(table)}"

    def _path(self, table: str, key: str) -> str:
        return f"{self._table(table)}/{_safe(key)}"

    def _wait(self, result: Any, what: str) -> Any:
        """The outcome of one asynchronous kazoo call, within the timeout; kazoo's errors are raised as they are
        (the callers handle the few they expect) and the timeout as a TemporaryError."""
        try:
            return result.get(timeout=self.timeout)
        except self.client.handler.timeout_exception as exc:
            raise TemporaryError(f"{what}: ZooKeeper did not answer within {self.timeout:g} s") from exc

    def get(self, table: str, key: str) -> bytes | None:
        """The znode's data, or None."""
        return self._read(table, key)[0]

    def _read(self, table: str, key: str) -> tuple[bytes | None, int]:
        """The znode's data and version (None and -1 when there is none)."""
        from kazoo.exceptions import NoNodeError

        what = f"reading coordination record {table}/{key}"
        with _zookeeper_errors(what):
            try:
                data, stat = self._wait(self.client.get_async(self._path(table, key)), what)
            except NoNodeError:
                return None, -1
        return bytes(data), int(stat.version)

    def put(self, table: str, key: str, value: bytes, durable: bool = False) -> None:
        """Set the znode, creating it (and its table) when missing (ZooKeeper logs every write to disk before it
        answers: always durable)."""
        from kazoo.exceptions import NodeExistsError, NoNodeError

        path, what = self._path(table, key), f"writing coordination record {table}/{key}"
        with _zookeeper_errors(what):
            try:
                self._wait(self.client.set_async(path, value), what)
            except NoNodeError:
                try:
                    self._create(path, value, what)
                except NodeExistsError:  # another writer created it meanwhile: ours is the newer value
                    self._wait(self.client.set_async(path, value), what)

    def _create(self, path: str, value: bytes, what: str) -> None:
        """Create a znode and, when missing, its parents (NodeExistsError when it exists)."""
        from kazoo.exceptions import NodeExistsError, NoNodeError

        try:
            self._wait(self.client.create_async(path, value), what)
        except NoNodeError:
            parent = path.rsplit("/", 1)[0]
            with contextlib.suppress(NodeExistsError):
                self._wait(self.client.create_async(parent, b"", makepath=True), what)
            self._wait(self.client.create_async(path, value), what)

    def swap(self, table: str, key: str, expected: bytes | None, value: bytes) -> bool:
        """Compare and set: read the znode and its version, and set it only at that version (create it only where
        there is none); a concurrent writer makes ZooKeeper refuse ours."""
        from kazoo.exceptions import BadVersionError, NodeExistsError, NoNodeError

        current, version = self._read(table, key)
        if current != expected:
            return False
        path, what = self._path(table, key), f"swapping coordination record {table}/{key}"
        with _zookeeper_errors(what):
            try:
                if version < 0:
                    self._create(path, value, what)
                else:
                    self._wait(self.client.set_async(path, value, version=version), what)
            except (BadVersionError, NoNodeError, NodeExistsError):
                return False
        return True

    def delete(self, table: str, key: str) -> None:
        """Delete the znode."""
        from kazoo.exceptions import NoNodeError

        what = f"deleting coordination record {table}/{key}"
        with _zookeeper_errors(what), contextlib.suppress(NoNodeError):
            self._wait(self.client.delete_async(self._path(table, key)), what)

    def all(self, table: str) -> dict[str, bytes]:
        """Every znode of the table: its children, then all their data at once (two round trips)."""
        from kazoo.exceptions import NoNodeError

        folder, what = self._table(table), f"listing coordination records {table}"
        with _zookeeper_errors(what):
            try:
                names = self._wait(self.client.get_children_async(folder), what)
            except NoNodeError:
                return {}
            pending = [(name, self.client.get_async(f"{folder}/{name}")) for name in names]
            out = {}
            for name, result in pending:
                try:
                    data, _ = self._wait(result, what)
                except NoNodeError:
                    continue  # deleted while listing
                out[urllib.parse.unquote(name)] = bytes(data)
        return out

    def close(self) -> None:
        """The client belongs to the tooz driver."""


@contextmanager
def _zookeeper_errors(what: str) -> Iterator[None]:
    """kazoo's errors as loadpilot's (imported only when ZooKeeper is used: kazoo is an optional dependency)."""
    from kazoo.exceptions import KazooException

    try:
        yield
    except KazooException as exc:
        raise zookeeper_error(what, exc) from exc


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
    """The records of `settings.namespace` in the backend the URL names (etcd and ZooKeeper reuse the
    coordinator's client)."""
    kind = settings.kind
    if kind == "file":
        return FileRecords(file_root(settings.url) / "records" / settings.namespace)
    if kind == "redis":
        return RedisRecords(redis_client(settings.url, settings.io_timeout), settings.namespace)
    if coordinator is None:
        raise PermanentError(f"{kind} records need the started coordinator (its client)")
    if kind == "zookeeper":
        from kazoo.client import KazooClient

        client = getattr(coordinator, "_coord", None)  # tooz's zookeeper driver keeps its kazoo client there
        if not isinstance(client, KazooClient):
            raise PermanentError("zookeeper records: tooz's zookeeper driver holds no kazoo client (tooz changed?)")
        return ZooKeeperRecords(client, settings.namespace, settings.io_timeout)
    return EtcdRecords(getattr(coordinator, "client", None), settings.namespace)
