"""The libvirt actuator: the hosts of a cluster, one libvirt connection each.

A live migration is libvirt's own: `virDomainMigrateToURI3` with LIVE | PEER2PEER | PERSIST_DEST |
UNDEFINE_SOURCE and a bandwidth limit (MiB/s), run on a thread of its own (the call blocks until the migration
ends); its progress is read from `virDomainGetJobStats` while it runs. A resize sets vCPUs (setVcpusFlags) and
memory (setMemoryFlags) on the running domain and in its persistent definition.

libvirt's test driver (`test:///default`, or `test:///path/to/node.xml`: one private hypervisor per connection)
cannot migrate. With `migration = "emulate"`, chosen explicitly in the config, never as a fallback, a migration
moves the domain by hand through the same interface: its migratable XML (VIR_DOMAIN_XML_MIGRATABLE) is defined
and started on the target, then the source copy is destroyed and undefined. No memory is copied and there are no
job statistics: the progress reports the domain's memory as copied once the move is done. Tests drive everything
else (listing, resizing, fencing, limits) through libvirt's real API on test-driver hosts.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from loadpilot.act.fencing import EpochFence
from loadpilot.act.vm.base import (
    Domain,
    HostInfo,
    Inventory,
    MigrationBook,
    MigrationProgress,
    MigrationSlots,
    VmDriver,
    VmNotFoundError,
    check_resize,
)
from loadpilot.config import Config
from loadpilot.errors import MissingDependencyError, PermanentError, TemporaryError
from loadpilot.model import Migrate, Resize

log = logging.getLogger(__name__)

KIB = 1024
MIB = 1024 * 1024
MigrationMode = Literal["live", "emulate"]
# libvirt error codes worth telling apart (virErrorNumber)
_NO_DOMAIN, _INVALID_ARG, _NO_SUPPORT, _OPERATION_INVALID, _ARGUMENT_UNSUPPORTED = 42, 8, 3, 55, 74


@dataclass(frozen=True)
class LibvirtHost:
    """One host: its name in the cluster, the URI loadpilot connects to, and the URI the source host's libvirtd
    reaches it at for a peer-to-peer migration (default: the same)."""

    name: str
    uri: str
    migrate_uri: str = ""


class LibvirtCluster:
    """A VmActuator over libvirt connections (see the module's docstring for `migration = "emulate"`)."""

    def __init__(
        self,
        name: str,
        hosts: list[LibvirtHost],
        fence: EpochFence,
        slots: MigrationSlots,
        migration: MigrationMode = "live",
        bandwidth_mib_s: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        try:
            import libvirt
        except ImportError:
            raise MissingDependencyError("the libvirt actuator", "libvirt") from None
        self._lv: Any = libvirt
        libvirt.registerErrorHandler(lambda _ctx, _err: None, None)  # errors become exceptions, not stderr lines
        self.name = name
        self.migration = migration
        self.bandwidth_mib_s = bandwidth_mib_s
        self.book = MigrationBook(fence, slots, clock)
        self._hosts = {h.name: h for h in hosts}
        self._conns: dict[str, Any] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()  # one move at a time per actuator changes the connections' domain sets
        for host in hosts:
            self._conns[host.name] = self._connect(host)

    def _connect(self, host: LibvirtHost) -> Any:
        try:
            return self._lv.open(host.uri)
        except self._lv.libvirtError as exc:
            raise TemporaryError(
                f"cluster {self.name}: cannot connect to host {host.name} at {host.uri!r}: "
                f"{exc.get_error_message()}; check the uri and that libvirtd runs and lets this user in"
            ) from None

    def _conn(self, host: str) -> Any:
        if host not in self._conns:
            raise VmNotFoundError(f"cluster {self.name}: no host {host!r} (known: {', '.join(self._hosts)})")
        return self._conns[host]

    # --- reading --------------------------------------------------------------------------------------------------

    def hosts(self) -> list[HostInfo]:
        """Every host with its cores (getInfo: CPUs) and memory (getInfo: MiB)."""
        out = []
        for name, conn in self._conns.items():
            try:
                info = conn.getInfo()
            except self._lv.libvirtError as exc:
                raise TemporaryError(f"cluster {self.name}: host {name} does not answer: {exc}") from None
            out.append(HostInfo(name, int(info[2]), int(info[1]) * MIB))
        return out

    def domains(self, host: str) -> list[Domain]:
        """The domains defined or running on one host, by UUID."""
        conn = self._conn(host)
        out = []
        try:
            for dom in conn.listAllDomains():
                state, _max_kib, cur_kib, vcpus, _cpu = dom.info()
                running, paused = bool(dom.isActive()), state == self._lv.VIR_DOMAIN_PAUSED
                memory = int(cur_kib) * KIB
                out.append(Domain(dom.UUIDString(), dom.name(), host, int(vcpus), memory, running, paused))
        except self._lv.libvirtError as exc:
            raise TemporaryError(f"cluster {self.name}: cannot list the domains of {host}: {exc}") from None
        return out

    def _lookup(self, host: str, vm: str) -> Any:
        """A domain by UUID or name on a host; VmNotFoundError when it is not there."""
        conn = self._conn(host)
        for lookup in (conn.lookupByUUIDString, conn.lookupByName):
            with contextlib.suppress(self._lv.libvirtError):
                return lookup(vm)
        raise VmNotFoundError(f"cluster {self.name}: no VM {vm!r} on host {host}")

    def _where(self, vm: str) -> str:
        """The host a VM is on now."""
        for host in self._conns:
            with contextlib.suppress(VmNotFoundError):
                self._lookup(host, vm)
                return host
        raise VmNotFoundError(f"cluster {self.name}: no VM {vm!r} on any host")

    # --- migrating ------------------------------------------------------------------------------------------------

    def migrate(self, action: Migrate) -> MigrationProgress:
        """Start moving `action.vm` from its source to its target on a thread of its own; returns at once."""
        if action.target == action.source:
            raise PermanentError(f"migration of {action.vm}: the target is its source ({action.source})")
        self._conn(action.target)
        dom = self._lookup(action.source, action.vm)
        with self.book.admit(action) as job:
            run = self._emulate if self.migration == "emulate" else self._live
            thread = threading.Thread(
                target=self._run, args=(run, action, dom), name=f"migrate-{action.vm}", daemon=True
            )
            self._threads[action.vm] = thread
            thread.start()
        return job

    def _run(self, run: Callable[[Migrate, Any], int], action: Migrate, dom: Any) -> None:
        try:
            moved = run(action, dom)
        except Exception as exc:  # libvirt's or ours: whatever it is, the migration failed and its slot is freed
            message = exc.get_error_message() if isinstance(exc, self._lv.libvirtError) else str(exc)
            if isinstance(exc, self._lv.libvirtError) and exc.get_error_code() == _ARGUMENT_UNSUPPORTED:
                message += " (libvirt's test driver cannot migrate: set cluster.libvirt.migration = 'emulate')"
            log.warning("migration of %s to %s failed: %s", action.vm, action.target, message)
            self.book.update(action.vm, state="failed", error=message)
        else:
            self.book.update(action.vm, state="completed", data_total=moved, data_processed=moved, data_remaining=0)

    def _live(self, action: Migrate, dom: Any) -> int:
        """libvirt's live migration, peer to peer; blocks until it ends. Returns the bytes copied."""
        lv = self._lv
        target = self._hosts[action.target]
        flags = lv.VIR_MIGRATE_LIVE | lv.VIR_MIGRATE_PEER2PEER | lv.VIR_MIGRATE_PERSIST_DEST
        flags |= lv.VIR_MIGRATE_UNDEFINE_SOURCE
        params: dict[str, Any] = {}
        if self.bandwidth_mib_s:
            params[lv.VIR_MIGRATE_PARAM_BANDWIDTH] = self.bandwidth_mib_s
        dom.migrateToURI3(target.migrate_uri or target.uri, params, flags)
        last = self.book.get(action.vm)
        return (last.data_processed or 0) if last else 0

    def _emulate(self, action: Migrate, dom: Any) -> int:
        """The test driver's stand-in for a migration: define and start the migratable XML on the target, then
        destroy and undefine the source copy. Returns the domain's memory (as if copied)."""
        lv = self._lv
        with self._lock:
            xml = dom.XMLDesc(lv.VIR_DOMAIN_XML_MIGRATABLE)
            running, persistent = bool(dom.isActive()), bool(dom.isPersistent())
            memory = int(dom.info()[2]) * KIB
            dest = self._conns[action.target]
            copy = dest.defineXML(xml) if persistent else dest.createXML(xml, 0)
            try:
                if persistent and running:
                    copy.create()
            except lv.libvirtError:
                with contextlib.suppress(lv.libvirtError):
                    copy.undefine()
                raise
            if running:
                dom.destroy()
            if persistent:
                dom.undefine()
        return memory

    def migrations(self) -> list[MigrationProgress]:
        """Every migration started: running ones with the bytes copied so far (jobStats), and finished ones once."""
        for job in self.book.running():
            self._poll(job)
        return self.book.report()

    def _poll(self, job: MigrationProgress) -> None:
        if self.migration == "emulate":
            return
        with contextlib.suppress(self._lv.libvirtError, VmNotFoundError):
            stats = self._lookup(job.source, job.vm).jobStats()
            self.book.update(
                job.vm,
                data_total=int(stats.get("data_total", 0)) or None,
                data_processed=int(stats.get("data_processed", 0)),
                data_remaining=int(stats.get("data_remaining", 0)),
            )

    def wait(self, vm: str, timeout: float) -> MigrationProgress | None:
        """Wait up to `timeout` s for a VM's migration thread to end; its latest progress."""
        thread = self._threads.get(vm)
        if thread is not None:
            thread.join(timeout)
        return self.book.get(vm)

    # --- resizing -------------------------------------------------------------------------------------------------

    def resize(self, action: Resize) -> None:
        """Set vCPUs and/or memory, live when the domain runs and in its definition when it has one."""
        check_resize(action)
        host = self._where(action.vm)
        dom = self._lookup(host, action.vm)
        lv = self._lv
        with self.book.fence.admit(action.epoch):
            try:
                running, persistent = bool(dom.isActive()), bool(dom.isPersistent())
                scopes = [
                    f
                    for f, on in ((lv.VIR_DOMAIN_AFFECT_LIVE, running), (lv.VIR_DOMAIN_AFFECT_CONFIG, persistent))
                    if on
                ]
                if action.vcpus is not None:
                    dom.setVcpusFlags(action.vcpus, _combined(scopes))
                if action.memory is not None:
                    for scope in scopes:  # some drivers refuse LIVE | CONFIG together for memory
                        dom.setMemoryFlags(action.memory // KIB, scope)
            except lv.libvirtError as exc:
                code = exc.get_error_code()
                what = f"cluster {self.name}: cannot resize {action.vm} on {host}: {exc.get_error_message()}"
                if code in (_INVALID_ARG, _OPERATION_INVALID, _NO_SUPPORT, _ARGUMENT_UNSUPPORTED, _NO_DOMAIN):
                    raise PermanentError(f"{what} (within the domain's maximum vCPUs and memory?)") from None
                raise TemporaryError(what) from None

    def close(self) -> None:
        """Close every connection (a migration still running goes on in libvirt, not here)."""
        for conn in self._conns.values():
            with contextlib.suppress(self._lv.libvirtError):
                conn.close()
        self._conns.clear()


def _combined(flags: list[int]) -> int:
    out = 0
    for flag in flags:
        out |= flag
    return out


def hosts_from(mapping: Mapping[str, str]) -> list[LibvirtHost]:
    """Hosts from a name -> URI mapping."""
    return [LibvirtHost(name, uri) for name, uri in mapping.items()]


def _open(
    config: Config, fence: EpochFence, slots: MigrationSlots, clock: Callable[[], float]
) -> tuple[LibvirtCluster, Inventory]:
    lv = config.cluster.libvirt
    hosts = [LibvirtHost(h.name, h.uri, h.migrate_uri) for h in lv.hosts]
    actuator = LibvirtCluster(config.cluster.name, hosts, fence, slots, lv.migration, lv.bandwidth_mib_s, clock)
    return actuator, Inventory(lv.power_model, lv.bandwidth_mib_s)


DRIVER = VmDriver(_open, store=True, requires="libvirt")  # `libvirt:`: the hosts of [cluster.libvirt]
