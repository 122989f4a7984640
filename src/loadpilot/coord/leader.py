"""Leadership: exactly one member of a role acts, and every term has a strictly larger epoch (a fencing token).

A leader may act only while it is sure its term holds: it renews every tick, and it stops acting at
`last successful renewal + lease - margin` by its own clock, while the others may take over only once the lease
has expired. A leader paused (SIGSTOP) or cut off therefore stops before anyone else can start; the epoch each
action carries lets an actuator refuse what a leader resumed from such a pause still tries to do.

Three ways to hold a term, by backend:

- Redis (LockLeadership): tooz's election on Redis is a lock with a TTL (`leader_of_<group>`) that tooz's heartbeat
  thread renews (tooz/drivers/redis.py, run_elect_coordinator). We hold the same kind of lock (redis-py's, the one
  tooz wraps) but renew it from the leader's own tick: tooz's election never says whether a renewal succeeded,
  which the deadline above needs, and its heartbeat thread keeps renewing while the leader's loop is stuck, so a
  hung leader would keep the term and nobody would act. The epoch is HINCRBY in Redis, taken after the lock and
  confirmed by a renewal, so terms and epochs come in the same order.
- file and etcd (LeaseLeadership): tooz has no election there (and a file lock held by a stopped process would be
  held for ever), so the term is a lease record {leader, epoch, since, expires_at} in the backend's records,
  read and rewritten under a tooz lock held only for that moment. A new term increments the epoch in the record.
- ZooKeeper (LeaseLeadership, without a lock): the same lease record, as a znode written by compare-and-set on
  its version (records.SwapRecords), so of two candidates that read the same expired term only one writes the
  next epoch, and a leader that read its term before a pause cannot overwrite the term that replaced it.
  tooz's election on ZooKeeper (a kazoo lock: an ephemeral sequential znode, held while the session lives) does
  not give the same guarantees: kazoo's own thread keeps the session, so a leader whose loop hangs keeps the
  term and nobody acts; the lock says nothing about when it was last confirmed (its is_acquired stays true after
  the session is lost), so a leader resumed from a pause cannot know it must stop; it has no epoch of its own;
  and kazoo's lock retries for ever while the server is away, which would hold the leader's tick. A lock is not
  needed either: the swap is the mutual exclusion, and every call waits a tick at most.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Generic, Protocol, TypeVar

import redis
from redis.lock import Lock as RedisLock
from tooz import coordination, locking

from loadpilot.coord.backend import CoordSettings, translated
from loadpilot.coord.records import Records, RedisRecords, SwapRecords
from loadpilot.errors import TemporaryError

log = logging.getLogger(__name__)

LEADERS_TABLE = "leaders"  # role -> the current term (JSON)
EPOCHS_TABLE = "epochs"  # role -> the last epoch handed out (Redis)
CONTROLLERS = "controllers"
LOCK_POLL_S = 0.05
RESIGNED = 0.0  # a term's expires_at once its leader gave it up

Clock = Callable[[], float]
LockT = TypeVar("LockT", locking.Lock, RedisLock)
RecordsT = TypeVar("RecordsT", bound=Records)


@dataclass(frozen=True)
class Term:
    """One leader's term: who, its epoch, since when, and until when the lease holds without renewal."""

    leader: str
    epoch: int
    since: float
    expires_at: float

    @property
    def resigned(self) -> bool:
        """True when its leader gave it up (the next term, even the same member's, takes a new epoch)."""
        return self.expires_at == RESIGNED

    def encode(self) -> bytes:
        """The term as a record."""
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def decode(cls, raw: bytes | None) -> Term | None:
        """A term from its record (None when absent or unreadable)."""
        if not raw:
            return None
        try:
            data = json.loads(raw)
            return cls(str(data["leader"]), int(data["epoch"]), float(data["since"]), float(data["expires_at"]))
        except (ValueError, KeyError, TypeError):
            return None


def read_term(records: Records, role: str = CONTROLLERS) -> Term | None:
    """The last term recorded for a role (it may have expired: compare expires_at with the time)."""
    return Term.decode(records.get(LEADERS_TABLE, role))


class Leadership(Protocol):
    """Campaign for, hold and give up the leadership of one role."""

    epoch: int

    def tick(self) -> bool:
        """Campaign or renew; True when this member leads after it. Call it every tick."""
        ...

    def is_leader(self) -> bool:
        """True while this member may act: leading, and before its deadline."""
        ...

    def resign(self) -> None:
        """Give the term up now, so another member can take over at once."""
        ...


class _Deadline(Generic[LockT, RecordsT]):
    """The part both ways share: the lock and the records, the deadline, and saying when leadership is won or
    lost. `leadership()` makes the lock; the clocks are parameters so that tests can drive them."""

    def __init__(
        self,
        lock: LockT,
        records: RecordsT,
        settings: CoordSettings,
        member_id: str,
        role: str = CONTROLLERS,
        wall: Clock = time.time,
        mono: Clock = time.monotonic,
    ) -> None:
        self._lock: LockT = lock
        self.records = records
        self.wall = wall
        self.member_id = member_id
        self.role = role
        self.lease = settings.lease_s
        self.margin = settings.margin_s
        self.tick_s = settings.tick_s
        self.mono = mono
        self.epoch = 0
        self._valid_until = 0.0
        self._leading = False

    def is_leader(self) -> bool:
        """True while this member may act: leading, and before its deadline."""
        return self._leading and self.mono() < self._valid_until

    def _renewed(self, started: float) -> None:
        self._valid_until = started + self.lease - self.margin

    def _won(self, epoch: int, started: float) -> None:
        self.epoch, self._leading = epoch, True
        self._renewed(started)
        log.info("%s leads %s with epoch %d", self.member_id, self.role, epoch)

    def _lost(self, why: str) -> None:
        if self._leading:
            log.warning("%s lost the leadership of %s (epoch %d): %s", self.member_id, self.role, self.epoch, why)
        self._leading = False
        self._valid_until = 0.0


class Unlocked(locking.Lock):
    """The lock of a lease whose record is swapped (compare-and-set): taking it always succeeds at once."""

    def acquire(self, blocking: bool = True, shared: bool = False, timeout: int | None = None) -> bool:
        """Nothing to wait for: the swap of the record decides."""
        return True

    def release(self) -> bool:
        """Nothing held."""
        return True


class LeaseLeadership(_Deadline[locking.Lock, Records]):
    """A lease record in the backend, rewritten under a tooz lock (file and etcd) or swapped (ZooKeeper)."""

    def tick(self) -> bool:
        """Renew our term, or start one when the recorded term has expired."""
        started_wall, started = self.wall(), self.mono()
        try:
            if not _acquire(self._lock, min(self.tick_s, self.lease / 4)):
                return self.is_leader()  # the record is busy: no renewal this tick, the deadline still holds
            try:
                self._step(started_wall, started)
            finally:
                with translated("releasing the lease lock"):
                    self._lock.release()
        except TemporaryError as exc:
            log.warning("leadership of %s: %s", self.role, exc)
        if self._leading and not self.is_leader():
            self._lost("the lease could not be renewed in time")
        return self.is_leader()

    def _step(self, started_wall: float, started: float) -> None:
        raw = self.records.get(LEADERS_TABLE, self.role)
        term = Term.decode(raw)
        expires = started_wall + self.lease
        if term is not None and term.leader == self.member_id and self.epoch == term.epoch and not term.resigned:
            # Ours, and nobody took over since (even if we missed a deadline meanwhile): renew the same term.
            if not self._write(raw, Term(self.member_id, self.epoch, term.since, expires)):
                self._lost("the lease record changed while renewing it")
                return
            if not self._leading:
                self._won(self.epoch, started)
            self._renewed(started)
        elif term is None or term.expires_at < started_wall:
            epoch = (term.epoch if term else 0) + 1
            if self._write(raw, Term(self.member_id, epoch, started_wall, expires), durable=True):
                self._won(epoch, started)
            else:
                self._lost("another member started a term first")
        else:
            self._lost(f"{term.leader} leads with epoch {term.epoch}")

    def _write(self, old: bytes | None, term: Term, durable: bool = False) -> bool:
        """Write the term over the record read as `old`: a compare-and-set where the records can (False when
        another member wrote first), else a plain write (the lock is held)."""
        if isinstance(self.records, SwapRecords):
            return self.records.swap(LEADERS_TABLE, self.role, old, term.encode())
        self.records.put(LEADERS_TABLE, self.role, term.encode(), durable=durable)
        return True

    def resign(self) -> None:
        """Mark our term expired (keeping its epoch), so the next candidate takes over at its next tick."""
        if not self._leading:
            return
        try:
            if _acquire(self._lock, self.lease / 2):
                try:
                    raw = self.records.get(LEADERS_TABLE, self.role)
                    term = Term.decode(raw)
                    if term is not None and term.leader == self.member_id and term.epoch == self.epoch:
                        self._write(raw, Term(term.leader, term.epoch, term.since, RESIGNED))
                finally:
                    with translated("releasing the lease lock"):
                        self._lock.release()
        except TemporaryError as exc:
            log.warning("resigning %s: %s (the lease will expire on its own)", self.role, exc)
        self._lost("resigned")


class LockLeadership(_Deadline[RedisLock, RedisRecords]):
    """Redis: a lock with a TTL, renewed by the leader's own tick; epochs by HINCRBY."""

    _held = False  # this member holds the lock (its term may still have to be confirmed)

    def tick(self) -> bool:
        """Renew the lock we hold, or try to take it."""
        started = self.mono()
        try:
            if not self._held:
                self._campaign(started)
            elif self._renew():
                self._renewed(started)
                self._record(self.wall())
            else:
                self._drop("the lock expired or was taken")
        except (TemporaryError, redis.RedisError) as exc:
            log.warning("leadership of %s: %s", self.role, exc)
        if self._leading and not self.is_leader():
            self._drop("the lock could not be renewed in time")
        return self.is_leader()

    def _campaign(self, started: float) -> None:
        if not self._lock.acquire(blocking=False):
            return
        self._held = True
        epoch = self.records.incr(EPOCHS_TABLE, self.role)
        if not self._renew():  # paused past the TTL between the lock and the epoch: not our term after all
            self._drop("the lock expired while taking an epoch")
            return
        self._won(epoch, started)
        now = self.wall()
        self._record(now, since=now)

    def _renew(self) -> bool:
        try:
            self._lock.reacquire()  # resets the TTL, only while the lock still holds our token
        except redis.exceptions.LockError:
            return False
        return True

    def _record(self, now: float, since: float | None = None) -> None:
        """Write the term for `loadpilot status` (the lock decides; this record only tells)."""
        old = read_term(self.records, self.role)
        start = since if since is not None else (old.since if old and old.epoch == self.epoch else now)
        self.records.put(LEADERS_TABLE, self.role, Term(self.member_id, self.epoch, start, now + self.lease).encode())

    def _drop(self, why: str) -> None:
        if self._held:
            with contextlib.suppress(redis.RedisError):
                self._lock.release()
            self._held = False
        self._lost(why)

    def resign(self) -> None:
        """Release the lock now; the next candidate takes it at its next tick."""
        if self._held and self._leading:
            term = read_term(self.records, self.role)
            if term is not None and term.epoch == self.epoch:
                self.records.put(LEADERS_TABLE, self.role, Term(term.leader, term.epoch, term.since, RESIGNED).encode())
        self._drop("resigned")


def _acquire(lock: locking.Lock, timeout: float) -> bool:
    """Try a tooz lock for up to `timeout` seconds without blocking inside the driver (drivers disagree on what a
    blocking timeout means; etcd's raises instead of answering False)."""
    deadline = time.monotonic() + timeout
    while True:
        with translated("taking a lock"):
            if lock.acquire(blocking=False):
                return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(LOCK_POLL_S)


def leadership(
    settings: CoordSettings,
    coordinator: coordination.CoordinationDriver,
    records: Records,
    member_id: str,
    role: str = CONTROLLERS,
) -> Leadership:
    """The right way to lead on this backend: the election lock on Redis, a lease record elsewhere (swapped
    without a lock where the records can compare and set)."""
    if isinstance(records, RedisRecords):
        name = f"{settings.namespace}:leader_of:{role}"
        lock = records.client.lock(name, timeout=settings.lease_s, thread_local=False)
        return LockLeadership(lock, records, settings, member_id, role)
    if isinstance(records, SwapRecords):
        return LeaseLeadership(
            Unlocked(f"{settings.namespace}.lease.{role}".encode()), records, settings, member_id, role
        )
    lease_lock = coordinator.get_lock(f"{settings.namespace}.lease.{role}".encode())
    return LeaseLeadership(lease_lock, records, settings, member_id, role)
