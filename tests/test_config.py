"""Configuration: defaults that work, and every problem named by its field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from loadpilot.cli import app
from loadpilot.config import Config, load_config, parse_config
from loadpilot.errors import ConfigError

EXAMPLE = Path(__file__).parent.parent / "examples" / "loadpilot.toml"
runner = CliRunner()


def problems(data: dict[str, object]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    return info.value.problems


def test_defaults_work_on_one_machine() -> None:
    config = Config()
    assert config.server.host == "127.0.0.1" and config.server.port == 8470
    assert config.store_url.startswith("sqlite:///") and config.store_url.endswith("loadpilot.db")
    assert not config.server.reads_need_token
    assert [c.type for c in config.agent.collectors] == ["host"]


def test_the_example_is_valid_and_complete() -> None:
    config = load_config(EXAMPLE)
    assert config.base_dir == EXAMPLE.parent.resolve()
    assert config.state_path == EXAMPLE.parent.resolve() / ".loadpilot"
    # Every setting of every section is written out in the example, so users see them all.
    text = EXAMPLE.read_text()
    for section in ("server", "store", "agent", "coordination", "control"):
        for name in type(getattr(config, section)).model_fields:
            shown = f"{name} =" in text or f"[[{section}.{name}]]" in text
            assert shown, f"{section}.{name} missing from the example"
    pool = config.pools[0]
    for part in (pool, pool.health, pool.restart, pool.balancer, pool.autoscale):
        for name in type(part).model_fields:
            shown = f"{name} =" in text or name in ("health", "restart", "balancer", "autoscale")
            assert shown, f"pools.{name} missing"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"stat_dir": "x"}, "stat_dir: unknown key"),
        ({"server": {"prot": 1}}, "server.prot: unknown key"),
        ({"server": {"port": 0}}, "server.port: Input should be greater than or equal to 1"),
        ({"agent": {"interval_s": "fast"}}, "agent.interval_s: Input should be a valid number"),
        ({"agent": {"backoff_initial_s": 9, "backoff_max_s": 1}}, "agent.backoff_max_s: must be >= "),
        ({"agent": {"server_url": "ftp://x"}}, "agent.server_url: must start with http"),
        ({"agent": {"collectors": [{"enabled": True}]}}, "agent.collectors[0].type: Field required"),
        ({"store": {"url": "mysql://x"}}, "store.url: must start with sqlite"),
        ({"server": {"host": "0.0.0.0"}}, "server.read_token: reads need a token"),
        ({"pools": [{"name": "w", "command": "app {fd} {port}", "min": 3, "max": 2}]}, "pools[0].max: must be >= min"),
        ({"pools": [{"name": "w", "command": "app {fd} {port}", "initial": 9}]}, "pools[0].initial: must be within"),
        ({"pools": [{"name": "w", "command": "app {port}"}]}, "pools[0].command: mode 'shared' passes"),
        ({"pools": [{"name": "w", "command": "app {fd}", "mode": "ports"}]}, "pools[0].command: mode 'ports'"),
        ({"pools": [{"name": "w", "command": "app {fd} {port} {prot}"}]}, "pools[0].command: unknown placeholder"),
        ({"pools": [{"name": "w", "command": ""}]}, "pools[0].command: must not be empty"),
        ({"pools": [{"name": "a b", "command": "app {fd} {port}"}]}, "pools[0].name: use letters"),
        ({"pools": [{"name": "w", "command": "x {fd} {port}", "helth": {}}]}, "pools[0].helth: unknown key"),
        ({"pools": [{"name": "w", "command": "x {fd} {port}", "health": {"path": "hz"}}]}, "pools[0].health.path: "),
        (
            {"pools": [{"name": "w", "command": "x {fd} {port}", "balancer": {"type": "nginx"}}]},
            "pools[0].balancer.type: a 'shared' pool is balanced by the kernel",
        ),
        (
            {"pools": [{"name": "w", "command": "x {fd} {port}", "max": 8, "worker_ports": [9000, 9003]}]},
            "pools[0].worker_ports: 4 ports for up to 8 workers",
        ),
        (
            {"pools": [{"name": "w", "command": "x {fd} {port}"}, {"name": "w", "command": "x {fd} {port}"}]},
            "pools[1].name: 'w' is used by another pool",
        ),
        *(
            ({"pools": [{"name": "w", "command": "x {fd} {port}", "autoscale": autoscale}]}, f"pools[0].autoscale.{e}")
            for autoscale, e in [
                ({"policy": "magic"}, "policy: Input should be"),
                ({"metric": "memory"}, "metric: Input should be"),
                ({"target": 0}, "target: Input should be greater than 0"),
                ({"k": 6, "n": 5}, "k: must be <= n (5)"),
                ({"policy": "predictive", "metric": "latency_p95"}, "metric: predictive forecasts load"),
                ({"policy": "kpa", "metric": "cpu"}, "metric: kpa scales on in_flight"),
                ({"steps": [{"adjustment": 1}]}, "steps[0].lower: give lower, upper or both"),
                ({"steps": [{"lower": 2, "upper": 1, "adjustment": 1}]}, "steps[0].upper: must be > lower"),
                ({"steps": [{"lower": 1, "adjustment": 1.5}]}, "steps[0].adjustment: a whole number"),
                (
                    {"steps": [{"lower": 1, "adjustment": 1}, {"lower": 1.2, "adjustment": 2}]},
                    "steps[1].lower: overlaps",
                ),
                ({"max_step_down_pct": 150}, "max_step_down_pct: Input should be less than or equal to 100"),
                ({"hold_while_scaling": "maybe"}, "hold_while_scaling: Input should be"),
                ({"checks": [{"policy": "step", "k": 9}]}, "checks[0].k: must be <= n (5)"),
                ({"stabilization_down_s": 60}, "stabilization_down_s: unknown key"),
            ]
        ),
    ],
)
def test_each_problem_names_its_field(data: dict[str, object], expected: str) -> None:
    assert any(p.startswith(expected) for p in problems(data)), problems(data)


def test_every_problem_is_reported_at_once() -> None:
    found = problems({"server": {"port": -1, "colour": 1}, "agent": {"interval_s": 0}})
    assert len(found) == 3


def test_secrets_may_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOADPILOT_READ_TOKEN", "t0k")
    config = parse_config({"server": {"host": "0.0.0.0"}})
    assert config.server.reads_need_token and config.server.read_token_value() == "t0k"
    monkeypatch.setenv("LOADPILOT_STORE_URL", "postgresql://db/lp")
    assert config.store_url == "postgresql://db/lp"


def test_cli_check_ok_and_exit_codes(tmp_path: Path) -> None:
    result = runner.invoke(app, ["config", "check", str(EXAMPLE)])
    assert (result.exit_code, result.stdout.strip()) == (0, "ok")
    bad = tmp_path / "bad.toml"
    bad.write_text('[agent]\ninterval_s = 0\n[[agent.collectors]]\ntype = "host"\n')
    result = runner.invoke(app, ["config", "check", str(bad)])
    assert result.exit_code == 2
    assert "agent.interval_s: Input should be greater than or equal to 0.1" in result.stderr


def test_cli_check_names_collector_problems(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[[agent.collectors]]\ntype = "hots"\n'
        '[[agent.collectors]]\ntype = "process"\nname = "x"\npattern = "x"\ncolour = 1\n'
    )
    result = runner.invoke(app, ["config", "check", str(bad), "--json"])
    assert result.exit_code == 2
    doc = json.loads(result.stdout)
    assert doc["ok"] is False
    assert any(p.startswith("agent.collectors[0].type: unknown collector 'hots'") for p in doc["problems"])
    assert any(p.startswith("agent.collectors[1].colour: unknown key") for p in doc["problems"])


def test_cli_check_unreadable_and_not_toml(tmp_path: Path) -> None:
    assert runner.invoke(app, ["config", "check", str(tmp_path / "none.toml")]).exit_code == 2
    broken = tmp_path / "broken.toml"
    broken.write_text("[server\n")
    result = runner.invoke(app, ["config", "check", str(broken)])
    assert result.exit_code == 2 and "not valid TOML" in result.stderr


def test_cli_show_fills_in_defaults_and_masks_secrets(tmp_path: Path) -> None:
    cfg = tmp_path / "lp.toml"
    cfg.write_text('[auth]\nsigning_key = "s3cret"\n[agent]\nid = "a1"\n')
    result = runner.invoke(app, ["config", "show", str(cfg), "--json"])
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["store"]["url"] == f"sqlite:///{tmp_path / '.loadpilot' / 'loadpilot.db'}"
    assert doc["agent"]["spool_path"] == str(tmp_path / ".loadpilot" / "spool-a1.db")
    assert "s3cret" not in result.stdout
    toml_out = runner.invoke(app, ["config", "show", str(cfg)])
    assert toml_out.exit_code == 0 and "[server]" in toml_out.stdout and "port = 8470" in toml_out.stdout


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.startswith("loadpilot ")
