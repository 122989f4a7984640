"""The balancer a pool's config asks for, found by name through the `loadpilot.balancers` entry points.

A `shared` pool is balanced by the kernel (`shared`); a `ports` pool by the proxy `[pools.balancer] type` names
(`nginx`, `haproxy`) or by nothing (`none`: the workers on their ports). Each entry is a `BalancerKind`: a factory
`(pool, workdir) -> Balancer` that declares the program it runs, and imports its balancer only when called.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from loadpilot import plugins
from loadpilot.act.lb.base import Balancer
from loadpilot.config import PoolConfig
from loadpilot.errors import PermanentError


def _binary(configured: str, name: str) -> str:
    found = configured or shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")
    if not found:
        raise PermanentError(f"pools.balancer.type = {name!r} but {name} is not installed (apt-get install {name})")
    return found


@dataclass(frozen=True, slots=True)
class BalancerKind:
    """A `loadpilot.balancers` entry: called with a pool and its work directory, it creates (not starts) the pool's
    balancer. `binary` is the program the balancer runs ("" none): pools.balancer.binary, else found on the PATH
    (PermanentError naming the package to install when it is not)."""

    build: Callable[[PoolConfig, Path, str], Balancer]  # (pool, workdir, the binary's path or "")
    binary: str = ""

    def __call__(self, pool: PoolConfig, workdir: Path) -> Balancer:
        """The pool's balancer, not started."""
        return self.build(pool, workdir, _binary(pool.balancer.binary, self.binary) if self.binary else "")


def build_balancer(pool: PoolConfig, workdir: Path) -> Balancer:
    """Create (not start) the balancer of a pool."""
    kind: BalancerKind = plugins.load(plugins.BALANCERS, "shared" if pool.mode == "shared" else pool.balancer.type)
    return kind(pool, workdir)


def _shared(pool: PoolConfig, workdir: Path, binary: str) -> Balancer:
    from loadpilot.act.lb.shared import SharedSocketBalancer

    return SharedSocketBalancer(pool.host, pool.port)


def _nginx(pool: PoolConfig, workdir: Path, binary: str) -> Balancer:
    from loadpilot.act.lb.nginx import NginxBalancer

    b = pool.balancer
    return NginxBalancer(
        pool.host,
        pool.port,
        workdir,
        binary=binary,
        max_fails=b.max_fails,
        fail_timeout_s=b.fail_timeout_s,
        retries=b.retries,
        connect_timeout_s=b.connect_timeout_s,
        read_timeout_s=b.read_timeout_s,
        method=b.method,
        retry_non_idempotent=b.retry_non_idempotent,
        drain_timeout_s=max(pool.drain_s, pool.stop_timeout_s),
    )


def _haproxy(pool: PoolConfig, workdir: Path, binary: str) -> Balancer:
    from loadpilot.act.lb.haproxy import HAProxyBalancer

    b = pool.balancer
    return HAProxyBalancer(
        pool.host,
        pool.port,
        workdir,
        slots=pool.max + 1,  # a removed worker's slot is freed at the next update; +1 for a rolling restart
        binary=binary,
        retries=b.retries,
        method="leastconn" if b.method == "least_conn" else "roundrobin",
        connect_timeout_s=b.connect_timeout_s,
        read_timeout_s=b.read_timeout_s,
        retry_non_idempotent=b.retry_non_idempotent,
        drain_timeout_s=max(pool.drain_s, pool.stop_timeout_s),
    )


def _direct(pool: PoolConfig, workdir: Path, binary: str) -> Balancer:
    from loadpilot.act.lb.direct import DirectBalancer

    return DirectBalancer(pool.host, pool.port)


# The entries of pyproject.toml's `loadpilot.balancers` group.
SHARED = BalancerKind(_shared)
NGINX = BalancerKind(_nginx, binary="nginx")
HAPROXY = BalancerKind(_haproxy, binary="haproxy")
NONE = BalancerKind(_direct)
