"""`loadpilot up --lb nginx` rewrites the config so every pool runs in ports mode behind nginx."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import tomli_w

from loadpilot.cli_up import nginx_config, without_fd
from loadpilot.config import load_config
from loadpilot.errors import ConfigError


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (["{python}", "-m", "app", "--fd", "{fd}", "--port", "{port}"], ["{python}", "-m", "app", "--port", "{port}"]),
        (["app", "--fd={fd}", "--port", "{port}"], ["app", "--port", "{port}"]),
        (["app", "--port", "{port}"], ["app", "--port", "{port}"]),
    ],
)
def test_the_shared_socket_arguments_are_dropped(command: list[str], expected: list[str]) -> None:
    assert without_fd(command) == expected


def _write(tmp_path: Path, **pool: object) -> Path:
    data = {
        "state_dir": "state",
        "auth": {"signing_key_file": "key"},
        "pools": [
            {
                "name": "logsift",
                "command": ["{python}", "-m", "loadpilot.apps.logsift", "--fd", "{fd}", "--port", "{port}"],
                "cwd": "work",
                **pool,
            }
        ],
    }
    path = tmp_path / "loadpilot.toml"
    path.write_text(tomli_w.dumps(data))
    return path


def test_the_copy_runs_the_pools_behind_nginx_with_absolute_paths(tmp_path: Path) -> None:
    source = _write(tmp_path, balancer={"method": "round_robin"})
    config = load_config(source)
    copy = nginx_config(config, source)
    raw = tomllib.loads(copy.read_text())
    pool = raw["pools"][0]
    assert pool["mode"] == "ports"
    assert pool["balancer"] == {"method": "round_robin", "type": "nginx"}
    assert "{fd}" not in pool["command"] and "--fd" not in pool["command"]
    assert pool["cwd"] == str(tmp_path / "work")
    assert raw["state_dir"] == str((tmp_path / "state").resolve())
    assert raw["auth"]["signing_key_file"] == str((tmp_path / "key").resolve())
    assert copy.parent == config.state_path
    assert load_config(copy).pools[0].balancer.type == "nginx"


def test_no_nginx_is_a_clear_error(tmp_path: Path) -> None:
    source = _write(tmp_path, balancer={"binary": str(tmp_path / "no-such-nginx")})
    with pytest.raises(ConfigError, match="nginx is not installed"):
        nginx_config(load_config(source), source)


def test_no_pool_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "loadpilot.toml"
    path.write_text('state_dir = "state"\n')
    with pytest.raises(ConfigError, match=r"no \[\[pools\]\]"):
        nginx_config(load_config(path), path)
