"""The `loadpilot.toml` schema, its defaults and its validation.

Every setting has a default that works on one machine with nothing installed. Unknown keys are errors, so a
typo is never silently ignored, and every problem is reported as `field.path: message`.
"""

from __future__ import annotations

import os
import re
import shlex
import socket
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from loadpilot.errors import ConfigError

DEFAULT_CONFIG_NAME = "loadpilot.toml"
ENV_SIGNING_KEY = "LOADPILOT_SIGNING_KEY"
ENV_READ_TOKEN = "LOADPILOT_READ_TOKEN"  # noqa: S105 (a variable name, not a secret)
ENV_STORE_URL = "LOADPILOT_STORE_URL"

# What a pool's command may contain: each worker's port, the shared socket's fd, names, and loadpilot's Python.
COMMAND_PLACEHOLDERS = ("{port}", "{fd}", "{worker}", "{pool}", "{host}", "{python}")

PositiveSeconds = Annotated[float, Field(gt=0)]
Port = Annotated[int, Field(ge=1, le=65535)]
DEFAULT_METRICS_HOST = "127.0.0.1"


def parse_listen(value: str) -> tuple[str, int]:
    """Split a `metrics_listen` value ("host:port", "[::1]:port", ":port" or "port") into (host, port).

    The host defaults to 127.0.0.1 (never every interface unless asked); port 0 asks the system for a free one.
    Raises ValueError saying what is wrong.
    """
    text = value.strip()
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = "", text
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"write an IPv6 address in brackets, e.g. [::1]:9102 (got {value!r})")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"expected host:port with a port 0..65535, e.g. 127.0.0.1:9102 (got {value!r})")
    return host or DEFAULT_METRICS_HOST, int(port_text)


def _check_listen(value: str) -> str:
    """A `metrics_listen` value: empty (no listener) or host:port."""
    if value:
        parse_listen(value)
    return value


MetricsListen = Annotated[str, AfterValidator(_check_listen)]


class _Section(BaseModel):
    """A config table: unknown keys are errors, values are checked on assignment too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ServerConfig(_Section):
    """`[server]`: the HTTP API that receives samples and answers queries."""

    host: str = "127.0.0.1"
    port: Port = 8470
    max_body_bytes: Annotated[int, Field(ge=1024)] = 8 * 1024 * 1024
    max_clock_skew_s: PositiveSeconds = 300.0
    read_auth: Literal["auto", "token", "none"] = "auto"
    read_token: SecretStr | None = None
    retention_check_s: PositiveSeconds = 300.0

    @property
    def is_loopback(self) -> bool:
        """True when the server only listens on this machine."""
        return self.host in ("127.0.0.1", "localhost", "::1") or self.host.startswith("127.")

    def read_token_value(self) -> str | None:
        """The read token from the config or the environment, if any."""
        if self.read_token is not None:
            return self.read_token.get_secret_value()
        return os.environ.get(ENV_READ_TOKEN) or None

    @property
    def reads_need_token(self) -> bool:
        """Reads need the token when asked to, or by default when the server listens beyond loopback."""
        if self.read_auth == "auto":
            return not self.is_loopback
        return self.read_auth == "token"

    @model_validator(mode="after")
    def _token_when_needed(self) -> ServerConfig:
        if self.reads_need_token and not self.read_token_value():
            raise ValueError(
                f"read_token: reads need a token (read_auth={self.read_auth!r}, host={self.host!r}); "
                f'set server.read_token or {ENV_READ_TOKEN}, or read_auth = "none"'
            )
        return self


class StoreConfig(_Section):
    """`[store]`: where samples and events are kept."""

    url: str = ""  # empty: sqlite:///<state_dir>/loadpilot.db
    retention_s: PositiveSeconds = 7 * 24 * 3600.0
    sqlite_synchronous: Literal["normal", "full"] = "full"

    @model_validator(mode="after")
    def _known_scheme(self) -> StoreConfig:
        if self.url and not self.url.startswith(("sqlite://", "postgresql://", "postgres://")):
            raise ValueError("url: must start with sqlite:/// or postgresql://")
        return self


class AuthConfig(_Section):
    """`[auth]`: the shared key that signs every write (HMAC-SHA256)."""

    signing_key: SecretStr | None = None
    signing_key_file: str = ""  # empty: <state_dir>/signing.key, created on first use


class CollectorEntry(BaseModel):
    """One `[[agent.collectors]]` entry: a collector type and its options (checked by the collector)."""

    model_config = ConfigDict(extra="allow")

    type: str
    enabled: bool = True

    def options(self) -> dict[str, Any]:
        """The entry's keys other than `type` and `enabled`, for the collector to validate."""
        return dict(self.model_extra or {})


def _default_collectors() -> list[CollectorEntry]:
    return [CollectorEntry(type="host")]


class AgentConfig(_Section):
    """`[agent]`: what to sample, how often, and how to ship it."""

    id: str = ""  # empty: this machine's host name
    server_url: str = "http://127.0.0.1:8470"
    interval_s: Annotated[float, Field(ge=0.1, le=3600)] = 5.0
    max_batch_samples: Annotated[int, Field(ge=1, le=100_000)] = 5_000
    spool_path: str = ""  # empty: <state_dir>/spool-<id>.db
    spool_max_bytes: Annotated[int, Field(ge=64 * 1024)] = 64 * 1024 * 1024
    request_timeout_s: PositiveSeconds = 10.0
    backoff_initial_s: PositiveSeconds = 0.5
    backoff_max_s: PositiveSeconds = 30.0
    flush_timeout_s: Annotated[float, Field(ge=0)] = 5.0
    collectors: list[CollectorEntry] = Field(default_factory=_default_collectors)
    metrics_listen: MetricsListen = ""  # host:port for the agent's Prometheus /metrics; empty: none

    @model_validator(mode="after")
    def _backoff_order(self) -> AgentConfig:
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValueError("backoff_max_s: must be >= agent.backoff_initial_s")
        if not self.server_url.startswith(("http://", "https://")):
            raise ValueError("server_url: must start with http:// or https://")
        return self


class HealthConfig(_Section):
    """`[pools.health]`: how the supervisor knows a worker is alive and ready (an HTTP GET on its own port)."""

    path: str = "/healthz"  # empty: no HTTP check; a worker is ready once it has run for `start_s`
    interval_s: PositiveSeconds = 1.0
    timeout_s: PositiveSeconds = 1.0
    failures: Annotated[int, Field(ge=1, le=100)] = 3  # consecutive failed checks: leave the balancer, then TERM
    start_timeout_s: PositiveSeconds = 30.0  # not ready this long after start: counted as a crash
    start_s: Annotated[float, Field(ge=0)] = 1.0  # with no HTTP check: running this long means ready
    metrics_path: str = "/metrics"  # Prometheus text with http_requests_total etc.; empty: none

    @field_validator("path", "metrics_path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if value and not value.startswith("/"):
            raise ValueError("must start with / (or be empty)")
        return value


class RestartConfig(_Section):
    """`[pools.restart]`: how dead workers come back, and when the supervisor gives up on one."""

    backoff_initial_s: Annotated[float, Field(ge=0)] = 0.5
    backoff_max_s: PositiveSeconds = 30.0
    max_crashes: Annotated[int, Field(ge=1)] = 5  # this many crashes within window_s: the worker is failed
    window_s: PositiveSeconds = 60.0
    stable_s: PositiveSeconds = 10.0  # ready this long: the backoff starts again from backoff_initial_s


class BalancerConfig(_Section):
    """`[pools.balancer]`: the proxy in front of a `ports` pool (a `shared` pool needs none: the kernel balances)."""

    type: Literal["none", "nginx", "haproxy"] = "none"
    binary: str = ""  # empty: nginx or haproxy from PATH (or /usr/sbin)
    method: Literal["least_conn", "round_robin"] = "least_conn"
    retries: Annotated[int, Field(ge=1, le=10)] = 3  # tries of one request across workers
    # nginx: failures within fail_timeout_s that take a worker out of rotation. 0 (off): a dead local worker
    # refuses at once and the request goes to the next, and a busy one's 503 does not bench it for
    # fail_timeout_s; the supervisor's health checks take out a worker that hangs.
    max_fails: Annotated[int, Field(ge=0)] = 0
    fail_timeout_s: PositiveSeconds = 10.0
    connect_timeout_s: PositiveSeconds = 1.0
    read_timeout_s: PositiveSeconds = 60.0
    retry_non_idempotent: bool = False  # also retry POSTs on another worker (only if the app is idempotent)


class StepRule(_Section):
    """One `steps` entry: while metric / target is within [lower, upper), change the size by `adjustment`.

    Bounds are ratios to the target (1.25: 25 % above it), so one set of rules fits every metric. `type` is how
    the adjustment applies, as in AWS step scaling and Heat: "change" adds workers, "exact" sets the size,
    "percent" adds that percentage of the current size (at least `min_adjustment` workers).
    """

    lower: Annotated[float, Field(ge=0)] | None = None  # empty: no lower bound
    upper: Annotated[float, Field(gt=0)] | None = None  # empty: no upper bound
    adjustment: float
    type: Literal["change", "exact", "percent"] = "change"
    min_adjustment: Annotated[int, Field(ge=1)] = 1

    @model_validator(mode="after")
    def _bounded(self) -> StepRule:
        if self.lower is None and self.upper is None:
            raise ValueError("lower: give lower, upper or both")
        if self.lower is not None and self.upper is not None and self.upper <= self.lower:
            raise ValueError(f"upper: must be > lower ({self.lower})")
        if self.type != "percent" and self.adjustment != int(self.adjustment):
            raise ValueError(f"adjustment: a whole number of workers for type {self.type!r}")
        if self.type == "exact" and self.adjustment < 0:
            raise ValueError("adjustment: an exact size must be >= 0")
        return self


def _default_steps() -> list[StepRule]:
    return [
        StepRule(lower=1.25, adjustment=50, type="percent"),
        StepRule(lower=1.1, upper=1.25, adjustment=10, type="percent"),
        StepRule(lower=0.5, upper=0.8, adjustment=-10, type="percent"),
        StepRule(upper=0.5, adjustment=-25, type="percent"),
    ]


_INF = float("inf")
ScalingPolicyName = Literal["target", "step", "threshold", "predictive", "hpa", "kpa", "static"]
ScalingMetric = Literal["cpu", "rps_per_worker", "latency_p95", "in_flight", "query"]


class ScalingCheck(_Section):
    """One check of a pool's load: a policy, the per-worker metric it watches and that metric's target."""

    policy: ScalingPolicyName = "target"
    metric: ScalingMetric = "cpu"
    target: Annotated[float, Field(gt=0)] = 0.7  # per worker, in the metric's unit (cpu: cores; latency: s)
    tolerance: Annotated[float, Field(ge=0, lt=1)] = 0.1  # target, hpa: no change within target x (1 +- this)
    steps: list[StepRule] = Field(default_factory=_default_steps)  # step, threshold
    k: Annotated[int, Field(ge=1, le=100)] = 3  # threshold: a step fires when its band held k ...
    n: Annotated[int, Field(ge=1, le=100)] = 5  # ... of the last n evaluations
    horizon_s: Annotated[float, Field(ge=0)] = 30.0  # predictive: how far ahead to size for
    # target, predictive: keep the size a burst needed this long after it (0: off; decide/scaling/bursts.py)
    burst_memory_s: Annotated[float, Field(ge=0)] = 0.0
    size: Annotated[int, Field(ge=0, le=1024)] = 0  # static: the fixed size; 0: the pool's max
    # metric = "query": a PromQL query answered by [control] prometheus_url, the value per worker; {pool}: the name
    query: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> ScalingCheck:
        if self.k > self.n:
            raise ValueError(f"k: must be <= n ({self.n})")
        if self.metric == "query" and not self.query.strip():
            raise ValueError('query: metric = "query" needs a PromQL query')
        if self.query and self.metric != "query":
            raise ValueError(f'query: only read when metric = "query" (metric is {self.metric!r})')
        if self.policy == "predictive" and self.metric == "latency_p95":
            raise ValueError("metric: predictive forecasts load, so it needs cpu, rps_per_worker or in_flight")
        if self.burst_memory_s and self.policy not in ("target", "predictive"):
            raise ValueError(f"burst_memory_s: only target and predictive remember bursts (policy is {self.policy!r})")
        if self.policy == "kpa" and self.metric not in ("in_flight", "rps_per_worker"):
            raise ValueError("metric: kpa scales on in_flight (concurrency) or rps_per_worker")
        bands = sorted(enumerate(self.steps), key=lambda s: -_INF if s[1].lower is None else s[1].lower)
        for i in range(1, len(bands)):
            low, (j, high) = bands[i - 1][1], bands[i]
            end = _INF if low.upper is None else low.upper
            start = -_INF if high.lower is None else high.lower
            if start < end:
                raise ValueError(f"steps[{j}].lower: overlaps another step's band (bands must not overlap)")
        return self


class AutoscaleConfig(ScalingCheck):
    """`[pools.autoscale]`: the pool's main check (the keys above), more `checks`, and the guards around them.

    Guards apply to whatever the checks recommend: bounds (min, max), the largest step per evaluation (the larger
    of a count and a percentage; 0 and 0: no limit), a cooldown per direction, a scale-in stabilisation window
    (the highest recommendation within it wins, as HPA's), and no scale-in while a scale is still in progress.
    """

    enabled: bool = False
    interval_s: PositiveSeconds = 15.0
    checks: list[ScalingCheck] = Field(default_factory=list)  # more checks: the safest wins (out > none > in)
    max_step_up: Annotated[int, Field(ge=0)] = 4
    max_step_up_pct: Annotated[float, Field(ge=0)] = 100.0
    max_step_down: Annotated[int, Field(ge=0)] = 0
    max_step_down_pct: Annotated[float, Field(ge=0, le=100)] = 0.0
    cooldown_up_s: Annotated[float, Field(ge=0)] = 0.0  # after a scale-out, before the next scale-out
    cooldown_down_s: Annotated[float, Field(ge=0)] = 0.0  # after any scaling, before a scale-in
    stabilisation_down_s: Annotated[float, Field(ge=0)] = 300.0
    hold_while_scaling: Literal["in", "all", "off"] = "in"  # in: no scale-in mid-scale; all: no decision at all


class PoolConfig(_Section):
    """One `[[pools]]` entry: a set of identical worker processes started from one command."""

    name: str
    command: list[str]
    min: Annotated[int, Field(ge=0, le=1024)] = 1
    max: Annotated[int, Field(ge=1, le=1024)] = 4
    initial: Annotated[int, Field(ge=0, le=1024)] | None = None  # empty: min
    mode: Literal["shared", "ports"] = "shared"
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8480  # where clients connect (shared socket or balancer)
    worker_ports: tuple[Port, Port] = (8481, 8580)  # each worker's own port: `{port}` in the command
    drain_s: Annotated[float, Field(ge=0)] = 5.0  # scale-in: out of the balancer this long before TERM
    stop_timeout_s: PositiveSeconds = 10.0  # TERM, then KILL after this long
    cpu_quota: Annotated[float, Field(ge=0)] = 0.0  # cores per worker through cgroups; 0: no limit
    cwd: str = ""
    env: dict[str, str] = Field(default_factory=dict)
    tick_s: PositiveSeconds = 0.5
    metrics_listen: MetricsListen = ""  # host:port for the supervisor's Prometheus /metrics; empty: none
    health: HealthConfig = Field(default_factory=HealthConfig)
    restart: RestartConfig = Field(default_factory=RestartConfig)
    balancer: BalancerConfig = Field(default_factory=BalancerConfig)
    autoscale: AutoscaleConfig = Field(default_factory=AutoscaleConfig)

    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}", value):
            raise ValueError("use letters, digits, '_', '-' or '.', at most 63, starting with a letter or digit")
        return value

    @field_validator("command", mode="before")
    @classmethod
    def _split_command(cls, value: object) -> object:
        """A string is split like a shell would split words (never run by a shell)."""
        return shlex.split(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _consistent(self) -> PoolConfig:
        if not self.command:
            raise ValueError("command: must not be empty")
        text = " ".join(self.command)
        if self.max < self.min:
            raise ValueError(f"max: must be >= min ({self.min})")
        if self.initial is not None and not self.min <= self.initial <= self.max:
            raise ValueError(f"initial: must be within min..max ({self.min}..{self.max})")
        low, high = self.worker_ports
        if high < low:
            raise ValueError("worker_ports: the first port must be <= the second")
        if "{port}" in text and high - low + 1 < self.max:
            raise ValueError(f"worker_ports: {high - low + 1} ports for up to {self.max} workers")
        if self.mode == "shared" and "{fd}" not in text:
            raise ValueError("command: mode 'shared' passes the listening socket as {fd}; put {fd} in the command")
        if self.mode == "ports" and "{port}" not in text:
            raise ValueError("command: mode 'ports' gives each worker a port as {port}; put {port} in the command")
        if self.mode == "shared" and self.balancer.type != "none":
            raise ValueError("balancer.type: a 'shared' pool is balanced by the kernel; use mode = 'ports' for a proxy")
        if self.mode == "ports" and self.balancer.type != "none" and self.port == 0:
            raise ValueError("port: the balancer needs a port to listen on")
        if self.health.path and "{port}" not in text:
            raise ValueError("health.path: an HTTP check needs each worker's own port; add {port} or set path = ''")
        for placeholder in re.findall(r"{[^}]*}", text):
            if placeholder not in COMMAND_PLACEHOLDERS:
                raise ValueError(
                    f"command: unknown placeholder {placeholder} (known: {' '.join(COMMAND_PLACEHOLDERS)})"
                )
        return self

    @property
    def initial_size(self) -> int:
        """How many workers the pool starts with."""
        return self.min if self.initial is None else self.initial


COORD_SCHEMES = ("file://", "redis://", "etcd3+http://", "etcd3+https://", "zookeeper://")


class CoordinationConfig(_Section):
    """`[coordination]`: agents share the shared resources and controllers elect a leader, through tooz."""

    enabled: bool = False
    url: str = ""  # empty: file://<state_dir>/coord (one machine); redis://, etcd3+http://, zookeeper://host:2181
    namespace: str = "loadpilot"  # groups and records of one cluster; several clusters may share a backend
    member_id: str = ""  # empty: the agent's id
    member_timeout_s: Annotated[float, Field(ge=0, le=3600)] = 0.0  # 0: 10 s on file://, 5 s elsewhere
    tick_s: Annotated[float, Field(ge=0.05, le=60)] = 1.0
    replicas: Literal[1, 2] = 1
    weight: Annotated[float, Field(gt=0, le=1000)] = 1.0
    drain_timeout_s: PositiveSeconds = 30.0

    @field_validator("namespace")
    @classmethod
    def _plain_namespace(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}", value):
            raise ValueError("use letters, digits, '_', '-' or '.', at most 63, starting with a letter or digit")
        return value

    @model_validator(mode="after")
    def _usable(self) -> CoordinationConfig:
        if self.url.startswith("kazoo://"):
            raise ValueError("url: write kazoo:// URLs as zookeeper://host:2181")
        if self.url and not self.url.startswith(COORD_SCHEMES):
            raise ValueError(f"url: must start with {', '.join(COORD_SCHEMES)}")
        timeout = self.member_timeout_s or (10.0 if not self.url or self.url.startswith("file://") else 5.0)
        if timeout < 3 * self.tick_s:
            raise ValueError(
                f"member_timeout_s: {timeout:g} s is less than 3 ticks of {self.tick_s:g} s; a leader must renew "
                "its lease several times per member timeout"
            )
        return self


class ControlConfig(_Section):
    """`[control]`: the controller's reconcile loop (`loadpilot controller`; `loadpilot up` runs one)."""

    tick_s: Annotated[float, Field(ge=0.1, le=60)] = 2.0  # observe -> decide -> act for every autoscaled pool
    retry_initial_s: PositiveSeconds = 1.0  # a temporary actuator error: retry after this, doubling ...
    retry_max_s: PositiveSeconds = 30.0  # ... up to this
    metrics_listen: MetricsListen = ""  # host:port for the controller's Prometheus /metrics; empty: none
    prometheus_url: str = ""  # Prometheus' HTTP API, for checks with metric = "query": http://127.0.0.1:9090
    prometheus_timeout_s: Annotated[float, Field(gt=0, le=60)] = 2.0

    @field_validator("prometheus_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")


def cluster_schemes() -> tuple[str, ...]:
    """The cluster.url schemes: one per VM actuator registered (`loadpilot.vm_actuators`), e.g. sim:, libvirt:."""
    from loadpilot import plugins  # entry points, read only when a cluster is configured

    return tuple(f"{name}:" for name in plugins.names(plugins.VM_ACTUATORS))


class LibvirtHostEntry(_Section):
    """One `[[cluster.libvirt.hosts]]` entry: a hypervisor's name in the cluster and its libvirt URI."""

    name: Annotated[str, Field(min_length=1)]
    uri: Annotated[str, Field(min_length=1)]  # qemu+ssh://hv1/system; test:///path/node.xml in tests
    migrate_uri: str = ""  # how the source's libvirtd reaches this host (peer to peer); empty: uri


class LibvirtClusterConfig(_Section):
    """`[cluster.libvirt]`: the hosts, and how a migration is carried out."""

    hosts: list[LibvirtHostEntry] = Field(default_factory=list)
    # live: libvirt's migrateToURI3 (live, peer to peer); emulate: move the domain by hand (libvirt's test driver
    # has no migration; for tests and demos only)
    migration: Literal["live", "emulate"] = "live"
    bandwidth_mib_s: Annotated[int, Field(ge=0)] = 0  # 0: libvirt's default
    power_model: Literal["hp-ml110-g4", "hp-ml110-g5"] = "hp-ml110-g5"

    @model_validator(mode="after")
    def _unique_hosts(self) -> LibvirtClusterConfig:
        names = [h.name for h in self.hosts]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise ValueError(f"hosts[{i}].name: {name!r} is used by another host")
        return self


class OpenStackClusterConfig(_Section):
    """`[cluster.openstack]`: how to reach Nova. `cloud` names an entry of clouds.yaml; or give auth_url and the
    credentials here (the password may come from OS_PASSWORD instead)."""

    cloud: str = ""
    auth_url: str = ""
    username: str = ""
    password: SecretStr | None = None
    project_name: str = ""
    user_domain_name: str = "Default"
    project_domain_name: str = "Default"
    region_name: str = ""
    block_migration: Literal["auto", "true", "false"] = "auto"
    power_model: Literal["hp-ml110-g4", "hp-ml110-g5"] = "hp-ml110-g5"


class SimClusterConfig(_Section):
    """`[cluster.sim]`: the simulated cluster's hosts and how fast its time runs."""

    hosts: Annotated[int, Field(ge=1, le=100_000)] = 800
    speed: Annotated[float, Field(gt=0, le=1_000_000)] = 600.0  # simulated seconds per real second


class ClusterConfig(_Section):
    """`[cluster]`: VM load balancing and consolidation by the controller (leader only), off by default.

    `url` picks the cluster: `sim:<PlanetLab day dir or CSV>` (the simulated cluster), `libvirt:` (the hosts of
    [cluster.libvirt]) or `openstack:` (Nova, [cluster.openstack]).
    """

    enabled: bool = False
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")] = "default"
    url: str = ""
    strategy: str = "ours"  # a VM strategy's name (loadpilot simulate vms --strategy): lr-mmt-1.2, drs, ...
    interval_s: PositiveSeconds = 300.0  # one decision per interval
    max_migrations: Annotated[int, Field(ge=1, le=10_000)] = 2  # in flight at once, in the whole cluster
    max_migrations_per_host: Annotated[int, Field(ge=1, le=1000)] = 1  # leaving or arriving, per host
    seed: int = 0  # for the strategies that draw at random
    sim: SimClusterConfig = Field(default_factory=SimClusterConfig)
    libvirt: LibvirtClusterConfig = Field(default_factory=LibvirtClusterConfig)
    openstack: OpenStackClusterConfig = Field(default_factory=OpenStackClusterConfig)

    @field_validator("strategy")
    @classmethod
    def _known_strategy(cls, value: str) -> str:
        from loadpilot.decide.vms.strategies import StrategyError, make_strategy  # pure; imported only when set

        try:
            make_strategy(value)
        except StrategyError as exc:
            raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _usable(self) -> ClusterConfig:
        if self.url and not self.url.startswith(schemes := cluster_schemes()):
            raise ValueError(f"url: must start with {', '.join(schemes)} (got {self.url!r})")
        if self.enabled and not self.url:
            raise ValueError("url: an enabled cluster needs a url (sim:<trace dir>, libvirt: or openstack:)")
        if self.url == "sim:":
            raise ValueError("url: sim: needs a trace, e.g. sim:../shared/data/planetlab/20110303")
        if self.enabled and self.url.startswith("libvirt:") and not self.libvirt.hosts:
            raise ValueError("libvirt.hosts: a libvirt cluster needs at least one [[cluster.libvirt.hosts]] entry")
        if self.max_migrations_per_host > self.max_migrations:
            raise ValueError(f"max_migrations_per_host: must be <= max_migrations ({self.max_migrations})")
        return self

    @property
    def kind(self) -> str:
        """The url's scheme: the VM actuator's name (sim, libvirt, openstack)."""
        return self.url.split(":", 1)[0]

    @property
    def sim_trace(self) -> str:
        """The trace a sim: url names."""
        return self.url.removeprefix("sim:")


class Config(_Section):
    """The whole `loadpilot.toml`."""

    state_dir: str = ".loadpilot"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    server: ServerConfig = Field(default_factory=ServerConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    agent: AgentConfig = Field(default_factory=AgentConfig)
    pools: list[PoolConfig] = Field(default_factory=list)
    coordination: CoordinationConfig = Field(default_factory=CoordinationConfig)
    control: ControlConfig = Field(default_factory=ControlConfig)
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)

    # Where relative paths in this config are resolved from: the config file's folder, or the working directory.
    base_dir: Path = Field(default_factory=Path.cwd, exclude=True)

    def path(self, value: str) -> Path:
        """Resolve a path from the config against the config file's folder."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else (self.base_dir / p)

    @property
    def state_path(self) -> Path:
        """The folder for loadpilot's own files (database, spool, keys, pid files)."""
        return self.path(self.state_dir)

    @property
    def store_url(self) -> str:
        """The store URL, from the environment, the config, or the embedded SQLite default."""
        url = os.environ.get(ENV_STORE_URL) or self.store.url
        return url or f"sqlite:///{self.state_path / 'loadpilot.db'}"

    @property
    def agent_id(self) -> str:
        """This agent's name: the configured id, else the host name."""
        return self.agent.id or socket.gethostname()

    @property
    def coordination_url(self) -> str:
        """The coordination backend's URL: the configured one, or a tooz file:// directory in the state dir."""
        return self.coordination.url or f"file://{self.state_path.resolve() / 'coord'}"

    def coordination_options(self) -> dict[str, Any]:
        """The `[coordination]` settings as loadpilot.coord.CoordSettings takes them, paths resolved."""
        c = self.coordination
        return {
            "url": self.coordination_url,
            "namespace": c.namespace,
            "member_timeout_s": c.member_timeout_s,
            "tick_s": c.tick_s,
            "replicas": c.replicas,
            "drain_timeout_s": c.drain_timeout_s,
        }

    @property
    def coordination_member_id(self) -> str:
        """This agent's id in the coordination groups: the configured one, else the agent's id."""
        return self.coordination.member_id or self.agent_id

    @property
    def signing_key_path(self) -> Path:
        """The file holding the shared signing key when none is given in the config or the environment."""
        return self.path(self.auth.signing_key_file) if self.auth.signing_key_file else self.state_path / "signing.key"

    def signing_key_value(self) -> str | None:
        """The signing key given in the config, if any (the environment and the key file come after it)."""
        return self.auth.signing_key.get_secret_value() if self.auth.signing_key else None

    @model_validator(mode="after")
    def _unique_pool_names(self) -> Config:
        names = [p.name for p in self.pools]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise ValueError(f"pools[{i}].name: {name!r} is used by another pool")
        return self

    @model_validator(mode="after")
    def _prometheus_for_queries(self) -> Config:
        if self.control.prometheus_url:
            return self
        for i, pool in enumerate(self.pools):
            checks: list[tuple[str, ScalingCheck]] = [("autoscale", pool.autoscale)]
            checks += [(f"autoscale.checks[{j}]", c) for j, c in enumerate(pool.autoscale.checks)]
            for where, check in checks:
                if check.metric == "query":
                    raise ValueError(
                        f"control.prometheus_url: pools[{i}].{where} reads a Prometheus query; "
                        'set [control] prometheus_url (e.g. "http://127.0.0.1:9090")'
                    )
        return self

    def pool(self, name: str) -> PoolConfig:
        """The pool called `name`; ConfigError listing the known pools otherwise."""
        for p in self.pools:
            if p.name == name:
                return p
        known = ", ".join(p.name for p in self.pools) or "none configured"
        raise ConfigError([f"pools: no pool named {name!r} (known: {known})"])

    @property
    def spool_file(self) -> Path:
        """Where the agent keeps batches the server has not acknowledged yet."""
        if self.agent.spool_path:
            return self.path(self.agent.spool_path)
        return self.state_path / f"spool-{self.agent_id}.db"


def _field_path(loc: tuple[int | str, ...]) -> str:
    """Turn a pydantic location into the dotted path a user would type: agent.collectors[0].type."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.startswith("function-") or part.startswith("value_error"):
            continue
        else:
            out += f".{part}" if out else part
    return out


def problems_from(error: ValidationError, prefix: str = "") -> list[str]:
    """Format a pydantic error as one `field.path: message` line per problem."""
    lines = []
    for err in error.errors():
        path = _field_path(tuple(err["loc"]))
        msg = str(err["msg"]).removeprefix("Value error, ")
        if ":" in msg.split(" ")[0]:  # a model validator named the field itself: "read_token: ..."
            sub, msg = msg.split(":", 1)
            path = f"{path}.{sub}" if path else sub
            msg = msg.strip()
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see examples/loadpilot.toml)"
        full = f"{prefix}{path}" if not prefix or not path else f"{prefix}.{path}"
        lines.append(f"{full or prefix or '(top level)'}: {msg}")
    return lines


def parse_config(data: dict[str, Any], base_dir: Path | None = None) -> Config:
    """Validate a parsed TOML document; raise ConfigError with every problem found."""
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(problems_from(exc)) from None
    if base_dir is not None:
        config.base_dir = base_dir
    return config


def load_config(path: str | Path | None) -> Config:
    """Load a config file; with no path, ./loadpilot.toml when present, else the built-in defaults."""
    if path is None:
        default = Path.cwd() / DEFAULT_CONFIG_NAME
        if not default.exists():
            return Config()
        path = default
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read the config file ({exc.strerror})"]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML ({exc})"]) from None
    return parse_config(data, base_dir=path.resolve().parent)
