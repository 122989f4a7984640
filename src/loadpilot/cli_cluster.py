"""`loadpilot up --cluster URL [--speed N]`: run the controller's VM half against a cluster named on the command
line, e.g. the simulated cluster replaying a PlanetLab day 600 times faster than real time:

    loadpilot up --cluster sim:../shared/data/planetlab/20110303 --speed 600

`up` writes a copy of the config with `[cluster] enabled = true` and that url (and speed) into the state dir,
and runs every child with it, as `--lb nginx` does. With a simulated cluster the controller ticks once per
simulated interval (interval_s / speed / 2, at least 0.1 s), so it decides on every interval as the simulator
does, as long as one tick takes less than that.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from loadpilot.config import DEFAULT_CONFIG_NAME, Config, cluster_schemes, parse_config
from loadpilot.errors import ConfigError

MIN_TICK_S = 0.1


def cluster_config(config: Config, config_path: Path | None, url: str, speed: float | None) -> Path:
    """Write a copy of the config whose [cluster] is enabled on `url`; its path. ConfigError (naming --cluster
    or --speed) for a url or speed the config would refuse."""
    if not url.startswith(schemes := cluster_schemes()):
        raise ConfigError([f"--cluster: must start with {', '.join(schemes)} (got {url!r})"])
    if speed is not None and not speed > 0:
        raise ConfigError([f"--speed: must be > 0 (got {speed:g})"])
    source = config_path or Path.cwd() / DEFAULT_CONFIG_NAME
    raw: dict[str, Any] = tomllib.loads(source.read_text(encoding="utf-8")) if source.exists() else {}
    cluster = dict(raw.get("cluster", {}))
    if url.startswith("sim:"):
        trace = url.removeprefix("sim:")
        # the copy lives in the state dir: no relative path (one given here is from the working directory, one from
        # the config from the config's folder)
        where = config.path(trace) if url == config.cluster.url else Path(trace).expanduser()
        url = f"sim:{where.resolve()}"
        sim = dict(cluster.get("sim", {}))
        if speed is not None:
            sim["speed"] = speed
        cluster["sim"] = sim
    elif speed is not None:
        raise ConfigError(["--speed: only a simulated cluster (--cluster sim:<trace>) runs faster than real time"])
    cluster.update(enabled=True, url=url)
    raw["cluster"] = cluster
    raw["state_dir"] = str(config.state_path.resolve())
    for section, key in (("auth", "signing_key_file"), ("agent", "spool_path")):
        value = raw.get(section, {}).get(key)
        if value:
            raw[section][key] = str(config.path(value).resolve())
    for pool in raw.get("pools", []):
        if pool.get("cwd"):
            pool["cwd"] = str(config.path(pool["cwd"]).resolve())
    checked = parse_config(raw)
    if url.startswith("sim:"):
        tick = max(MIN_TICK_S, checked.cluster.interval_s / checked.cluster.sim.speed / 2)
        control = dict(raw.get("control", {}))
        control["tick_s"] = min(float(control.get("tick_s", checked.control.tick_s)), tick)
        raw["control"] = control
        parse_config(raw)
    import tomli_w

    path = config.state_path / "up-cluster.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(tomli_w.dumps(raw), encoding="utf-8")
    return path
