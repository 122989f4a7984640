"""`[coordination]` and the http_probe collector in loadpilot.toml: defaults, and problems named by field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from loadpilot.config import Config, parse_config
from loadpilot.coord import CoordSettings
from loadpilot.errors import ConfigError
from loadpilot.sense.collectors import check_collectors


def problems(data: dict[str, object]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    return info.value.problems


def test_coordination_is_off_and_embedded_by_default(tmp_path: Path) -> None:
    config = parse_config({"state_dir": str(tmp_path), "agent": {"id": "web-1"}})
    assert not config.coordination.enabled
    assert config.coordination_url == f"file://{tmp_path.resolve() / 'coord'}"
    assert config.coordination_member_id == "web-1"
    settings = CoordSettings(**config.coordination_options())
    assert settings.kind == "file" and settings.member_timeout == 10.0 and settings.replicas == 1
    redis = CoordSettings(**{**config.coordination_options(), "url": "redis://db:6379"})
    assert redis.member_timeout == 5.0 and redis.lease_s == 5.0 and redis.margin_s == 1.0


def test_zookeeper_is_a_backend_with_a_5_s_member_timeout(tmp_path: Path) -> None:
    config = parse_config({"state_dir": str(tmp_path), "coordination": {"url": "zookeeper://zk1:2181"}})
    settings = CoordSettings(**config.coordination_options())
    assert settings.kind == "zookeeper" and settings.member_timeout == 5.0 and settings.lease_s == 5.0
    longer = CoordSettings(url="zookeeper://zk1:2181", member_timeout_s=12)
    assert longer.member_timeout == 12.0


def test_a_missing_kazoo_names_the_extra_to_install() -> None:
    code = (
        "import sys; sys.modules['kazoo'] = None\n"  # as if kazoo were not installed
        "from loadpilot.coord.backend import CoordSettings, connect\n"
        "from loadpilot.errors import MissingDependencyError\n"
        "try:\n"
        "    connect(CoordSettings(url='zookeeper://127.0.0.1:9'), 'm')\n"
        "except MissingDependencyError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert "zookeeper coordination backend" in done.stdout
    assert "pip install 'loadpilot[coord]'" in done.stdout


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"coordination": {"url": "mysql://x"}}, "coordination.url: must start with file://"),
        ({"coordination": {"url": "kazoo://zk:2181"}}, "coordination.url: write kazoo:// URLs as zookeeper://"),
        ({"coordination": {"replicas": 3}}, "coordination.replicas: Input should be 1 or 2"),
        ({"coordination": {"weight": 0}}, "coordination.weight: Input should be greater than 0"),
        ({"coordination": {"namespace": "a b"}}, "coordination.namespace: use letters"),
        ({"coordination": {"tick_s": 4}}, "coordination.member_timeout_s: 10 s is less than 3 ticks of 4 s"),
        ({"coordination": {"url": "redis://r", "tick_s": 2}}, "coordination.member_timeout_s: 5 s is less than"),
        ({"coordination": {"member_timeout_s": 2}}, "coordination.member_timeout_s: 2 s is less than 3 ticks"),
        ({"coordination": {"replica": 2}}, "coordination.replica: unknown key"),
    ],
)
def test_each_problem_names_its_field(data: dict[str, object], expected: str) -> None:
    found = problems(data)
    assert any(p.startswith(expected) for p in found), found


def test_http_probe_options_are_checked_by_the_collector() -> None:
    config = Config.model_validate(
        {
            "agent": {
                "collectors": [
                    {"type": "http_probe", "targets": ["http://a/", {"url": "ftp://b"}], "timeout_s": 0},
                ]
            }
        }
    )
    found = check_collectors(config)
    assert "agent.collectors[0].targets[1].url: must start with http:// or https://" in found
    assert any(p.startswith("agent.collectors[0].timeout_s: Input should be greater than 0") for p in found)


def test_an_http_probe_target_needs_an_id_the_server_stores() -> None:
    """A longer resource id would get every batch of the agent refused (422), with the host's samples in it."""
    long_url = "http://example.test/" + "x" * 240
    targets = [long_url, {"url": long_url, "id": "short"}, {"url": "http://a/", "id": "i" * 257}]
    config = Config.model_validate({"agent": {"collectors": [{"type": "http_probe", "targets": targets}]}})
    found = check_collectors(config)
    assert any(p.startswith("agent.collectors[0].targets[0].url: the resource id") for p in found), found
    assert any(p.startswith("agent.collectors[0].targets[2].id: the resource id") for p in found), found
    assert not any("targets[1]" in p for p in found), found
