"""Coordination backends by URL: a started tooz coordinator, with the member timeout each driver understands.

    file://DIR              the embedded default (one machine; member files and flocks under DIR)
    redis://HOST:PORT       Redis (tooz's redis driver; our records in Redis hashes)
    etcd3+http://HOST:PORT  etcd v3 through its gRPC gateway (tooz's etcd3gw driver)
    zookeeper://HOST:PORT   ZooKeeper (tooz's zookeeper driver, on kazoo; a member lives as long as its session)

tooz errors never leave this package as they are: a backend that cannot be reached is a TemporaryError (retry
with backoff), a URL we cannot use is a PermanentError.
"""

from __future__ import annotations

import logging
import math
import urllib.parse
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import redis
import tooz
from redis.backoff import NoBackoff
from redis.retry import Retry
from tooz import coordination

from loadpilot.errors import LoadpilotError, MissingDependencyError, PermanentError, TemporaryError

log = logging.getLogger(__name__)
_CALL_TIMEOUTS: weakref.WeakKeyDictionary[coordination.CoordinationDriver, float] = weakref.WeakKeyDictionary()

Kind = Literal["file", "redis", "etcd3", "zookeeper"]
SCHEMES: dict[str, Kind] = {
    "file": "file",
    "redis": "redis",
    "etcd3+http": "etcd3",
    "etcd3+https": "etcd3",
    "zookeeper": "zookeeper",
}
DEFAULT_MEMBER_TIMEOUT_S: dict[Kind, float] = {"file": 10.0, "redis": 5.0, "etcd3": 5.0, "zookeeper": 5.0}
UNSUPPORTED = {"kazoo": "write the same URL as zookeeper://HOST:PORT"}


@dataclass(frozen=True)
class CoordSettings:
    """How to reach the coordination backend and how members behave (from `[coordination]`)."""

    url: str
    namespace: str = "loadpilot"
    member_timeout_s: float = 0.0  # 0: the backend's default (10 s on file, 5 s elsewhere)
    tick_s: float = 1.0
    replicas: int = 1
    drain_timeout_s: float = 30.0

    @property
    def kind(self) -> Kind:
        """Which backend the URL names."""
        return backend_kind(self.url)

    @property
    def member_timeout(self) -> float:
        """Seconds without a heartbeat after which a member is gone (whole seconds: tooz's drivers take ints)."""
        wanted = self.member_timeout_s or DEFAULT_MEMBER_TIMEOUT_S[self.kind]
        return float(max(1, math.ceil(wanted)))

    @property
    def io_timeout(self) -> float:
        """Seconds one call to a Redis or ZooKeeper backend may take before it counts as failed: a tick (1 s at
        least, the member timeout at most), so a backend that hangs costs a member a tick or two, not its share."""
        return min(self.member_timeout, max(1.0, self.tick_s))

    @property
    def lease_s(self) -> float:
        """How long a leader's term lasts without renewal: the member timeout, so takeover takes as long as
        noticing a dead member."""
        return self.member_timeout

    @property
    def margin_s(self) -> float:
        """A leader stops acting this long before its lease can expire: one tick, for the action in flight."""
        return self.tick_s

    def group(self, role: str) -> bytes:
        """The tooz group of one role ('agents', 'controllers') in this namespace."""
        return f"{self.namespace}.{role}".encode()


def backend_kind(url: str) -> Kind:
    """The backend a coordination URL names; PermanentError for a scheme loadpilot cannot use."""
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme in UNSUPPORTED:
        raise PermanentError(f"coordination.url: {scheme}:// is not supported: {UNSUPPORTED[scheme]}")
    if scheme not in SCHEMES:
        known = ", ".join(f"{s}://" for s in SCHEMES)
        raise PermanentError(f"coordination.url: unknown scheme in {url!r} (known: {known})")
    return SCHEMES[scheme]


def driver_options(settings: CoordSettings) -> dict[str, object]:
    """The tooz driver options that make a member's timeout (and the lock TTLs) the member timeout."""
    kind, whole = settings.kind, str(int(settings.member_timeout))
    if kind == "file":
        return {"timeout": whole}
    if kind == "zookeeper":
        # The session timeout: a member is gone once its session expires (the server rounds it into its own
        # bounds, 2 to 20 times its tickTime by default). kazoo's reconnection backoff grows to an hour by
        # default, which would keep a member away for minutes after an outage: capped at a tick here.
        retry = {"max_tries": -1, "delay": 0.1, "backoff": 2, "max_delay": settings.io_timeout}
        return {"timeout": whole, "connection_retry": retry}
    # redis and etcd3gw: member expiry and lock TTL; a call never blocks longer than a lease (Redis: a tick).
    options: dict[str, object] = {"timeout": whole, "membership_timeout": whole, "lock_timeout": whole}
    if kind == "redis":
        io = str(settings.io_timeout)
        options.update(socket_timeout=io, socket_connect_timeout=io)
    return options


def redact(url: str) -> str:
    """The URL without its password, for logs and status."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


@contextmanager
def translated(what: str) -> Iterator[None]:
    """Turn tooz's and the clients' errors into loadpilot's: unreachable is temporary, the rest too unless it
    names a problem in our request."""
    try:
        yield
    except coordination.ToozConnectionError as exc:
        raise TemporaryError(f"{what}: the coordination backend is unreachable ({exc})") from exc
    except coordination.OperationTimedOut as exc:
        raise TemporaryError(f"{what}: the coordination backend timed out ({exc})") from exc
    except tooz.NotImplemented as exc:
        raise PermanentError(f"{what}: this backend cannot do it ({exc})") from exc
    except (tooz.ToozError, OSError) as exc:
        raise TemporaryError(f"{what}: {exc}") from exc
    except redis.RedisError as exc:  # tooz lets some through (its watchers' transactions)
        raise TemporaryError(f"{what}: the coordination backend failed ({type(exc).__name__}: {exc})") from exc
    except _kazoo_errors() as exc:  # tooz wraps most of kazoo's, not those of its locks
        raise zookeeper_error(what, exc) from exc


def _kazoo_errors() -> tuple[type[Exception], ...]:
    """kazoo's base error when kazoo is installed (it is optional: the zookeeper:// backend only)."""
    try:
        from kazoo.exceptions import KazooException
    except ImportError:
        return ()
    return (KazooException,)


def zookeeper_error(what: str, exc: Exception) -> LoadpilotError:
    """A kazoo error as loadpilot's: refused credentials or an unusable request are permanent, the rest (a lost
    connection or session, a timeout, a busy server) is worth retrying."""
    from kazoo import exceptions as zk

    name = type(exc).__name__
    if isinstance(exc, zk.AuthFailedError | zk.NoAuthError):
        return PermanentError(
            f"{what}: ZooKeeper refused access ({name}); check the user:password in coordination.url and the "
            "ACLs of loadpilot's znodes"
        )
    if isinstance(exc, zk.BadArgumentsError | zk.MarshallingError | zk.UnimplementedError):
        return PermanentError(f"{what}: ZooKeeper cannot do this request ({name}: {exc})")
    return TemporaryError(f"{what}: ZooKeeper failed ({name}{': ' + str(exc) if str(exc) else ''})")


def connect(settings: CoordSettings, member_id: str, heart: bool = True) -> coordination.CoordinationDriver:
    """A started coordinator for `member_id`, its heart beating in a background thread (an observer that joins
    no group, as `loadpilot status`, needs no heart).

    ZooKeeper needs no heart from tooz: kazoo's connection thread pings the server and keeps the session (and so
    the membership) alive; tooz's heartbeat there is only a read, which would hang while the server is away (and
    stop() waits for it). kazoo's calls wait for ever while it reconnects, so every call loadpilot makes on such a
    coordinator waits `call_timeout()` at most."""
    kind = settings.kind
    options = driver_options(settings)
    try:
        coordinator = coordination.get_coordinator(settings.url, member_id.encode(), None, **options)
    except ImportError as exc:
        raise MissingDependencyError(f"the {kind} coordination backend ({exc.name})", "coord") from exc
    except Exception as exc:  # stevedore wraps a failing driver import in its own errors
        if isinstance(exc.__cause__, ImportError) or "No module named" in str(exc):
            raise MissingDependencyError(f"the {kind} coordination backend", "coord") from exc
        raise PermanentError(f"coordination.url: cannot use {redact(settings.url)} ({exc})") from exc
    if kind == "redis":
        check_redis(settings)
    with translated(f"connecting to {redact(settings.url)}"):
        coordinator.start(start_heart=heart and kind != "zookeeper")
    if kind == "zookeeper":
        _CALL_TIMEOUTS[coordinator] = settings.io_timeout
    client = getattr(coordinator, "_client", None)  # tooz's redis driver keeps its redis-py client there
    if isinstance(client, redis.Redis):
        # tooz already retries a refused connection 15 times; redis-py's own retries with backoff on top of
        # each of those would hold a tick for minutes while Redis is away.
        client.set_retry(Retry(NoBackoff(), 0))
    return coordinator


def call_timeout(coordinator: coordination.CoordinationDriver) -> float | None:
    """How long one call to this coordinator may wait (None: its driver bounds its calls itself)."""
    return _CALL_TIMEOUTS.get(coordinator)


def disconnect(coordinator: coordination.CoordinationDriver) -> None:
    """Leave the groups and stop the coordinator. On ZooKeeper closing the session removes the member from its
    groups at once, and tooz's own leave first would wait for ever for a server that is away: it is skipped."""
    if call_timeout(coordinator) is not None:
        joined = getattr(coordinator, "_joined_groups", None)  # what tooz's stop() leaves one by one
        if isinstance(joined, set):
            joined.clear()
    with translated("disconnecting"):
        coordinator.stop()


def check_redis(settings: CoordSettings) -> None:
    """Answer at once whether Redis is there: tooz's driver tries a refused connection 15 times, and redis-py
    each of them with a backoff, so a start against a Redis that is down would take minutes to fail (and hold
    an agent's first tick, or `loadpilot status`, that long)."""
    from loadpilot.coord.records import redis_client  # records build on this module

    client = redis_client(settings.url, settings.io_timeout)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise TemporaryError(
            f"connecting to {redact(settings.url)}: the coordination backend is unreachable ({exc})"
        ) from exc
    finally:
        client.close()
