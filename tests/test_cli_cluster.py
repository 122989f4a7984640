"""`loadpilot up --cluster URL --speed N`: the config copy it runs with, and the options it refuses (exit 2)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import tomli_w

from loadpilot.cli_cluster import cluster_config
from loadpilot.config import load_config
from loadpilot.errors import ConfigError


def write_config(tmp_path: Path, **extra: object) -> Path:
    path = tmp_path / "loadpilot.toml"
    path.write_text(tomli_w.dumps({"state_dir": "state", "control": {"tick_s": 2.0}, **extra}))
    return path


def test_a_sim_cluster_is_enabled_in_a_copy_with_absolute_paths_and_a_tick_per_half_interval(tmp_path: Path) -> None:
    path = write_config(tmp_path, cluster={"strategy": "lr-mmt-1.2"})
    (tmp_path / "trace").mkdir()
    copy = cluster_config(load_config(path), path, "sim:trace", 600.0)
    assert copy == tmp_path / "state" / "up-cluster.toml"
    raw = tomllib.loads(copy.read_text())
    assert raw["cluster"]["enabled"] is True
    assert raw["cluster"]["strategy"] == "lr-mmt-1.2"  # the rest of the section is kept
    assert raw["cluster"]["url"] == f"sim:{Path.cwd() / 'trace'}"  # relative to where `up` was run
    assert raw["cluster"]["sim"]["speed"] == 600.0
    assert raw["control"]["tick_s"] == 0.25  # 300 s / 600 / 2
    assert raw["state_dir"] == str((tmp_path / "state").resolve())
    assert load_config(copy).cluster.enabled


@pytest.mark.parametrize(
    ("url", "speed", "message"),
    [
        ("vmware:x", None, "--cluster: must start with libvirt:, openstack:, sim:"),
        ("sim:trace", 0.0, "--speed: must be > 0"),
        ("openstack:", 10.0, "--speed: only a simulated cluster"),
    ],
)
def test_bad_options_are_named(tmp_path: Path, url: str, speed: float | None, message: str) -> None:
    path = write_config(tmp_path)
    with pytest.raises(ConfigError, match=message):
        cluster_config(load_config(path), path, url, speed)


def test_up_exits_2_naming_the_option_before_starting_anything(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "loadpilot", "up", "--config", str(path), "--cluster", "vmware:x", "--no-view"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "--cluster: must start with libvirt:, openstack:, sim:" in done.stderr
    assert not (tmp_path / "state" / "logs").exists()


def test_a_trace_named_in_the_config_is_found_from_the_configs_folder(tmp_path: Path) -> None:
    path = write_config(tmp_path, cluster={"url": "sim:trace"})
    config = load_config(path)
    copy = cluster_config(config, path, config.cluster.url, 60.0)  # `up --speed 60` alone
    raw = tomllib.loads(copy.read_text())
    assert raw["cluster"]["url"] == f"sim:{(tmp_path / 'trace').resolve()}"
    assert raw["control"]["tick_s"] == 2.0  # 300 s / 60 / 2 = 2.5 s: the configured tick is shorter already
