"""The balancer a pool's config asks for: the shared socket, nginx, HAProxy, or none (workers on their ports)."""

from __future__ import annotations

import shutil
from pathlib import Path

from loadpilot.act.lb.base import Balancer
from loadpilot.config import PoolConfig
from loadpilot.errors import PermanentError


def _binary(configured: str, name: str) -> str:
    found = configured or shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")
    if not found:
        raise PermanentError(f"pools.balancer.type = {name!r} but {name} is not installed (apt-get install {name})")
    return found


def build_balancer(pool: PoolConfig, workdir: Path) -> Balancer:
    """Create (not start) the balancer of a pool."""
    b = pool.balancer
    if pool.mode == "shared":
        from loadpilot.act.lb.shared import SharedSocketBalancer

        return SharedSocketBalancer(pool.host, pool.port)
    if b.type == "nginx":
        from loadpilot.act.lb.nginx import NginxBalancer

        return NginxBalancer(
            pool.host,
            pool.port,
            workdir,
            binary=_binary(b.binary, "nginx"),
            max_fails=b.max_fails,
            fail_timeout_s=b.fail_timeout_s,
            retries=b.retries,
            connect_timeout_s=b.connect_timeout_s,
            read_timeout_s=b.read_timeout_s,
            method=b.method,
            retry_non_idempotent=b.retry_non_idempotent,
            drain_timeout_s=max(pool.drain_s, pool.stop_timeout_s),
        )
    if b.type == "haproxy":
        from loadpilot.act.lb.haproxy import HAProxyBalancer

        return HAProxyBalancer(
            pool.host,
            pool.port,
            workdir,
            slots=pool.max + 1,  # a removed worker's slot is freed at the next update; +1 for a rolling restart
            binary=_binary(b.binary, "haproxy"),
            retries=b.retries,
            method="leastconn" if b.method == "least_conn" else "roundrobin",
            connect_timeout_s=b.connect_timeout_s,
            read_timeout_s=b.read_timeout_s,
            retry_non_idempotent=b.retry_non_idempotent,
            drain_timeout_s=max(pool.drain_s, pool.stop_timeout_s),
        )
    from loadpilot.act.lb.direct import DirectBalancer

    return DirectBalancer(pool.host, pool.port)
