"""The OpenStack actuator: Nova through openstacksdk (`pip install 'loadpilot[openstack]'`).

Hosts are Nova's compute services as the hypervisors list shows them (the service's host name is what a live
migration targets); a host's VMs are the servers Nova places there (all projects: admin rights needed). A live
migration is Nova's `os-migrateLive` to a named host, checked by the scheduler (never forced); its progress is
Nova's record of the migration in progress (memory bytes total, processed, remaining), and it has ended once Nova
shows the server on the target (completed) or back on its source, active or in error (failed). A resize picks the
flavor with exactly the vCPUs and memory asked for, resizes to it and confirms the resize.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

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
from loadpilot.config import Config, OpenStackClusterConfig
from loadpilot.errors import MissingDependencyError, PermanentError, TemporaryError
from loadpilot.model import Migrate, Resize

log = logging.getLogger(__name__)

MIB = 1024 * 1024
# Microversion 2.30: a live migration to a named host is checked by the scheduler unless forced (we never force);
# 2.47: a server shows its flavor's vCPUs and RAM. Asked for explicitly, so the requests do not depend on the cloud.
COMPUTE_API_VERSION = "2.60"
RESIZE_TIMEOUT_S = 300.0


class NovaCluster:
    """A VmActuator over Nova: `conn` is an openstack.connection.Connection."""

    def __init__(
        self,
        name: str,
        conn: Any,
        fence: EpochFence,
        slots: MigrationSlots,
        block_migration: str = "auto",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.conn = conn
        self.block_migration: str | bool = {"true": True, "false": False}.get(block_migration, "auto")
        self.book = MigrationBook(fence, slots, clock)
        self.resize_timeout_s = RESIZE_TIMEOUT_S
        self.poll_s = 1.0

    @classmethod
    def from_config(
        cls,
        name: str,
        settings: OpenStackClusterConfig,
        fence: EpochFence,
        slots: MigrationSlots,
        clock: Callable[[], float] = time.time,
    ) -> NovaCluster:
        """Connect as [cluster.openstack] says (a clouds.yaml entry, or the credentials given there)."""
        try:
            import openstack
        except ImportError:
            raise MissingDependencyError("the OpenStack actuator", "openstack") from None
        options: dict[str, Any] = {"compute_api_version": COMPUTE_API_VERSION}
        if settings.cloud:
            options["cloud"] = settings.cloud
        else:
            password = settings.password.get_secret_value() if settings.password else os.environ.get("OS_PASSWORD")
            options.update(
                auth_url=settings.auth_url,
                username=settings.username,
                password=password or "",
                project_name=settings.project_name,
                user_domain_name=settings.user_domain_name,
                project_domain_name=settings.project_domain_name,
            )
            if settings.region_name:
                options["region_name"] = settings.region_name
        with _translated(f"cluster {name}: cannot connect to OpenStack"):
            conn = openstack.connect(**options)
        return cls(name, conn, fence, slots, settings.block_migration, clock)

    # --- reading --------------------------------------------------------------------------------------------------

    def hosts(self) -> list[HostInfo]:
        """Every compute host, with its hypervisor's vCPUs and memory."""
        with _translated(f"cluster {self.name}: cannot list the hypervisors"):
            out = []
            for hv in self.conn.compute.hypervisors(details=True):
                service = hv.service_details or {}
                host = service.get("host") or hv.name
                out.append(HostInfo(str(host), int(hv.vcpus or 0), int(hv.memory_size or 0) * MIB))
            return out

    def domains(self, host: str) -> list[Domain]:
        """The servers Nova has on one compute host (all projects)."""
        with _translated(f"cluster {self.name}: cannot list the servers of {host}"):
            servers = self.conn.compute.servers(details=True, all_projects=True, compute_host=host)
            return [self._domain(s) for s in servers if s.compute_host == host]

    def _domain(self, server: Any) -> Domain:
        flavor = server.flavor or {}
        vcpus, ram = flavor.get("vcpus", 0), flavor.get("ram", 0)
        running = server.status in ("ACTIVE", "MIGRATING", "RESIZE", "VERIFY_RESIZE")
        return Domain(server.id, server.name, server.compute_host, int(vcpus), int(ram) * MIB, running)

    def _server(self, vm: str) -> Any:
        """A server by id (VmNotFoundError when Nova has none)."""
        with _translated(f"cluster {self.name}: no server {vm!r} in Nova"):
            return self.conn.compute.get_server(vm)

    # --- migrating ------------------------------------------------------------------------------------------------

    def migrate(self, action: Migrate) -> MigrationProgress:
        """Ask Nova to live-migrate the server to the target host; returns at once (Nova migrates)."""
        if action.target == action.source:
            raise PermanentError(f"migration of {action.vm}: the target is its source ({action.source})")
        server = self._server(action.vm)
        if server.compute_host != action.source:
            raise VmNotFoundError(f"cluster {self.name}: {action.vm} is on {server.compute_host}, not {action.source}")
        with self.book.admit(action) as job, _translated(f"cluster {self.name}: Nova refused to migrate {action.vm}"):
            self.conn.compute.live_migrate_server(
                server, host=action.target, force=False, block_migration=self.block_migration
            )
        return job

    def migrations(self) -> list[MigrationProgress]:
        """Every migration started: running ones with Nova's memory counters, and finished ones once."""
        for job in self.book.running():
            try:
                self._poll(job)
            except (TemporaryError, VmNotFoundError) as exc:
                log.debug("cluster %s: progress of %s unknown for now: %s", self.name, job.vm, exc)
        return self.book.report()

    def _poll(self, job: MigrationProgress) -> None:
        with _translated(f"cluster {self.name}: cannot read the migrations of {job.vm}"):
            running = [m for m in self.conn.compute.server_migrations(job.vm) if m.status not in ("completed", "error")]
        if running:
            m = running[0]
            self.book.update(
                job.vm,
                data_total=m.memory_total_bytes,
                data_processed=m.memory_processed_bytes,
                data_remaining=m.memory_remaining_bytes,
            )
            return
        server = self._server(job.vm)
        if server.status == "MIGRATING":
            return
        if server.compute_host == job.target and server.status == "ACTIVE":
            self.book.update(job.vm, state="completed", data_remaining=0)
        else:
            why = f"Nova shows it on {server.compute_host}, status {server.status}"
            self.book.update(job.vm, state="failed", error=f"the migration did not happen: {why}")

    # --- resizing -------------------------------------------------------------------------------------------------

    def resize(self, action: Resize) -> None:
        """Resize to the flavor with those vCPUs and that memory, and confirm (waits for Nova, bounded)."""
        check_resize(action)
        server = self._server(action.vm)
        current = self._domain(server)
        vcpus = action.vcpus if action.vcpus is not None else current.vcpus
        ram_mb = (action.memory if action.memory is not None else current.memory) // MIB
        with _translated(f"cluster {self.name}: cannot list the flavors"):
            flavors = [f for f in self.conn.compute.flavors(details=True) if f.vcpus == vcpus and f.ram == ram_mb]
        if not flavors:
            raise PermanentError(
                f"cluster {self.name}: no flavor with {vcpus} vCPUs and {ram_mb} MiB to resize {action.vm} to; "
                "create one (openstack flavor create) or ask for a size a flavor has"
            )
        flavor = min(flavors, key=lambda f: f.disk or 0)
        with (
            self.book.fence.admit(action.epoch),
            _translated(f"cluster {self.name}: Nova refused to resize {action.vm}"),
        ):
            self.conn.compute.resize_server(server, flavor.id)
            deadline = time.monotonic() + self.resize_timeout_s
            while True:
                server = self.conn.compute.get_server(server.id)
                if server.status == "VERIFY_RESIZE":
                    break
                if server.status == "ERROR" or time.monotonic() > deadline:
                    raise TemporaryError(f"cluster {self.name}: resize of {action.vm} ended in {server.status}")
                time.sleep(self.poll_s)
            self.conn.compute.confirm_server_resize(server)

    def close(self) -> None:
        """Close the SDK's session."""
        close = getattr(self.conn, "close", None)
        if close is not None:
            close()


@contextmanager
def _translated(what: str) -> Iterator[None]:
    """openstacksdk's and keystoneauth's errors as loadpilot's: 5xx, 409 and connection trouble are temporary,
    other refusals permanent; the message says what was being done."""
    try:
        yield
    except (TemporaryError, PermanentError):
        raise
    except Exception as exc:
        from keystoneauth1 import exceptions as ksa
        from openstack import exceptions

        status = getattr(exc, "status_code", None) or getattr(exc, "http_status", None)
        detail = getattr(exc, "details", None) or str(exc)
        if isinstance(exc, exceptions.NotFoundException):
            raise VmNotFoundError(f"{what}: not found ({detail})") from None
        if isinstance(exc, ksa.Unauthorized | exceptions.HttpException | ksa.HttpError) and status in range(400, 500):
            if status == 409:  # the server is busy with another task
                raise TemporaryError(f"{what}: HTTP 409: {detail}") from None
            hint = "; check the credentials in [cluster.openstack]" if status in (401, 403) else ""
            raise PermanentError(f"{what}: HTTP {status}: {detail}{hint}") from None
        if isinstance(exc, exceptions.SDKException | ksa.ClientException | OSError):
            raise TemporaryError(f"{what}: {detail}") from None
        raise


def _open(
    config: Config, fence: EpochFence, slots: MigrationSlots, clock: Callable[[], float]
) -> tuple[NovaCluster, Inventory]:
    cluster = config.cluster
    actuator = NovaCluster.from_config(cluster.name, cluster.openstack, fence, slots, clock)
    return actuator, Inventory(cluster.openstack.power_model)


DRIVER = VmDriver(_open, store=True, requires="openstack")  # `openstack:`: Nova, [cluster.openstack]
