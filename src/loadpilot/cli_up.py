"""`loadpilot up`: the server, an agent, every configured pool and a controller on this machine, until Ctrl-C.

It prints where the API and the pools listen and shows a live view (control/view.py): each pool's size, CPU,
requests/s and p95, the leader and its epoch, and the controller's last actions with their reasons. Off a
terminal, or with --no-view, it prints plain lines instead and the children write to the same terminal; with the
view, each child writes to <state_dir>/logs/up-<child>.log. `--lb nginx` fronts every pool with a private nginx
(ports mode) instead of the shared socket. Ctrl-C (or SIGTERM) stops the controller, the pools (draining their
workers), the agent and the server, in that order, and leaves no process behind.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Annotated, Any, Literal

import typer

from loadpilot.config import DEFAULT_CONFIG_NAME, Config, parse_config
from loadpilot.errors import ConfigError, LoadpilotError

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="loadpilot.toml (default: ./loadpilot.toml when present, else defaults)"),
]
ViewOpt = Annotated[
    bool | None,
    typer.Option("--view/--no-view", help="a live view (default: when stdout is a terminal); else plain lines"),
]
LbOpt = Annotated[
    Literal["shared", "nginx"],
    typer.Option("--lb", help="shared: the pools' own setting; nginx: front every pool with nginx (ports mode)"),
]
ClusterOpt = Annotated[
    str | None,
    typer.Option("--cluster", help="also balance VMs: sim:<PlanetLab day dir or CSV>, libvirt: or openstack:"),
]
SpeedOpt = Annotated[
    float | None, typer.Option("--speed", help="sim: clusters: simulated seconds per real second (e.g. 600)")
]
SUMMARY_EVERY_S = 5.0
STOP_TIMEOUT_S = 30.0


class Child:
    """One process `up` runs: its name, the process, and where its output goes."""

    def __init__(self, name: str, args: list[str], log: IO[bytes] | None, log_path: Path | None) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        out = log if log is not None else None
        self.name, self.log_path = name, log_path
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "loadpilot", *args], env=env, stdout=out, stderr=subprocess.STDOUT if out else None
        )

    def describe_exit(self) -> str:
        """Which child ended and where to read why."""
        where = f"; see {self.log_path}" if self.log_path else "; see its messages above"
        return f"the {self.name} exited on its own with code {self.proc.returncode}{where}"


def up(
    config_path: ConfigOpt = None,
    view: ViewOpt = None,
    lb: LbOpt = "shared",
    cluster: ClusterOpt = None,
    speed: SpeedOpt = None,
) -> None:
    """Run the server, an agent, every configured pool and a controller on this machine until Ctrl-C."""
    from loadpilot.cli import _fail, _load
    from loadpilot.cli_cluster import cluster_config

    config = _load(config_path)
    if cluster is not None or speed is not None:
        try:
            config_path = cluster_config(config, config_path, cluster or config.cluster.url, speed)
        except LoadpilotError as exc:
            _fail(str(exc).splitlines())
        config = _load(config_path)
    if lb == "nginx":
        try:
            config_path = nginx_config(config, config_path)
        except LoadpilotError as exc:
            _fail(str(exc).splitlines())
        config = _load(config_path)
    show = sys.stdout.isatty() if view is None else view
    cfg = ["--config", str(config_path)] if config_path else []
    logs = config.state_path / "logs"
    if show:
        logs.mkdir(parents=True, exist_ok=True)
    where = f"http://{config.server.host}:{config.server.port}"
    # Ctrl-C and SIGTERM both stop everything. SIGINT is set explicitly: a shell starts background jobs with it
    # ignored, and Python then never turns it into KeyboardInterrupt.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
    children: list[Child] = []
    with ExitStack() as files:

        def start(name: str, *args: str) -> Child:
            log_path = logs / f"up-{name.replace(' ', '-')}.log" if show else None
            log = files.enter_context(open(log_path, "ab")) if log_path else None
            child = Child(name, [*args, *cfg], log, log_path)
            children.append(child)
            return child

        try:
            server = start("server", "server")
            _wait_healthy(f"{where}/api/v1/healthz", server)
            start("agent", "agent")
            for pool in config.pools:
                start(f"pool {pool.name}", "pool", "start", pool.name, "--foreground")
            start("controller", "controller")
            header = _header(config, where, cfg, logs if show else None)
            if not show:
                typer.echo(header)
            _watch(config, children, header, show)
        except KeyboardInterrupt:
            pass
        finally:
            _stop_all(config, children)


def _header(config: Config, where: str, cfg: list[str], logs: Path | None) -> str:
    pools = "".join(
        f"  app:        {p.name} at http://{p.host}:{p.port}/  ({p.mode}"
        f"{', ' + p.balancer.type if p.balancer.type != 'none' else ''}; min {p.min}, max {p.max}; "
        f"loadpilot pool status {' '.join([p.name, *cfg])})\n"
        for p in config.pools
    )
    return (
        f"\nloadpilot is up.\n  dashboard:  {where}/\n"
        f"  API:        {where}/api/v1  (docs {where}/docs, metrics {where}/metrics, "
        f"events {where}/api/v1/events)\n{pools}  store:      {config.store_url}\n"
        + (f"  logs:       {logs}/up-*.log\n" if logs else "")
        + "Ctrl-C stops everything.\n"
    )


def _watch(config: Config, children: list[Child], header: str, show: bool) -> None:
    """Refresh the view (or print lines) every second until a child ends on its own or Ctrl-C."""
    from loadpilot.control.view import LiveView
    from loadpilot.store import open_store

    try:
        store = open_store(config.store_url, config.store.sqlite_synchronous)
    except LoadpilotError:
        store = None  # the view shows the pools without events
    live_view = LiveView(config, store, header)
    try:
        if show:
            from rich.live import Live

            with Live(live_view.render(live_view.frame()), refresh_per_second=2, screen=False) as live:
                while _all_running(children):
                    time.sleep(1.0)
                    live.update(live_view.render(live_view.frame()))
        else:
            last_summary = 0.0
            while _all_running(children):
                frame = live_view.frame()
                summary = frame.at - last_summary >= SUMMARY_EVERY_S
                last_summary = frame.at if summary else last_summary
                for line in live_view.lines(frame, summary):
                    typer.echo(line)
                time.sleep(1.0)
    finally:
        if store is not None:
            store.close()
    ended = next(c for c in children if c.proc.poll() is not None)
    typer.echo(ended.describe_exit(), err=True)
    raise typer.Exit(1)


def _all_running(children: list[Child]) -> bool:
    return all(c.proc.poll() is None for c in children)


def _stop_all(config: Config, children: list[Child]) -> None:
    """TERM the children newest first (controller, pools, agent, server), wait, KILL what stays; then make sure no
    worker of a pool outlived its supervisor."""
    from loadpilot.act.pool.control import stop_leftovers
    from loadpilot.act.pool.state import PoolPaths

    for child in reversed(children):
        if child.proc.poll() is None:
            child.proc.send_signal(signal.SIGTERM)
        try:
            child.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            child.proc.kill()
            child.proc.wait()
    for pool in config.pools:
        stop_leftovers(PoolPaths.of(config.state_path, pool.name))


def _wait_healthy(url: str, child: Child, timeout: float = 20.0) -> None:
    import httpx

    from loadpilot.cli import _fail

    deadline = time.time() + timeout
    while time.time() < deadline:
        if child.proc.poll() is not None:
            _fail([child.describe_exit()], code=1)
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    _fail([f"the server did not answer {url} within {timeout:.0f} s"], code=1)


# --- --lb nginx -------------------------------------------------------------------------------------------------


def nginx_config(config: Config, config_path: Path | None) -> Path:
    """Write a copy of the config whose pools run in ports mode behind loadpilot's own nginx; its path.

    PermanentError (as ConfigError) when nginx is not installed or there is no pool to front. Relative paths are
    made absolute, since the copy lives in the state dir.
    """
    if not config.pools:
        raise ConfigError(["--lb nginx: no [[pools]] configured to put behind nginx"])
    source = config_path or Path.cwd() / DEFAULT_CONFIG_NAME  # what load_config read
    raw: dict[str, Any] = tomllib.loads(source.read_text(encoding="utf-8"))
    for i, pool in enumerate(config.pools):
        binary = pool.balancer.binary or shutil.which("nginx")
        if not binary or not Path(binary).exists():
            raise ConfigError(
                [
                    f"--lb nginx: nginx is not installed (pool {pool.name!r}); install it (Debian: apt-get install "
                    "nginx-light) or set pools.balancer.binary, or run without --lb"
                ]
            )
        entry = raw["pools"][i]
        entry["mode"] = "ports"
        entry["balancer"] = {**entry.get("balancer", {}), "type": "nginx"}
        entry["command"] = without_fd(pool.command)
        if pool.cwd:
            entry["cwd"] = str(config.path(pool.cwd))
    raw["state_dir"] = str(config.state_path.resolve())
    for section, key in (("auth", "signing_key_file"), ("agent", "spool_path")):
        value = raw.get(section, {}).get(key)
        if value:
            raw[section][key] = str(config.path(value).resolve())
    parse_config(raw)  # the copy must be as valid as the original
    import tomli_w

    path = config.state_path / "up-nginx.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(tomli_w.dumps(raw), encoding="utf-8")
    return path


def without_fd(command: list[str]) -> list[str]:
    """A pool command without its shared-socket arguments (`--fd {fd}` or `--fd={fd}`), for ports mode."""
    out: list[str] = []
    for arg in command:
        if "{fd}" in arg:
            if out and out[-1] in ("--fd", "-fd") and "=" not in arg:
                out.pop()
            continue
        out.append(arg)
    return out
