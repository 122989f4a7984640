"""Plug-ins by name (plugins.py): every registered entry point loads and is what its group expects; an unknown name
is refused with the known ones; a driver whose library is missing says which extra to install."""

from __future__ import annotations

import shutil
import sys
import time
import tomllib
from pathlib import Path
from typing import get_args

import pytest

from loadpilot import plugins
from loadpilot.act.fencing import EpochFence
from loadpilot.act.pool.front import BalancerKind, build_balancer
from loadpilot.act.vm.base import MigrationSlots, VmDriver
from loadpilot.config import ScalingPolicyName, parse_config
from loadpilot.errors import MissingDependencyError, PermanentError
from tests.act.pool.conftest import pool_config

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
GROUPS = [plugins.COLLECTORS, plugins.STORES, plugins.VM_ACTUATORS, plugins.BALANCERS, plugins.SCALING_POLICIES]


def _declared(group: str) -> set[str]:
    """The names pyproject.toml registers in a group (the installed metadata must match: pip install -e .)."""
    entries = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["entry-points"]
    return set(entries[group])


@pytest.mark.parametrize("group", GROUPS)
def test_every_registered_name_loads(group: str) -> None:
    names = plugins.names(group)
    assert set(names) == _declared(group), "reinstall the entry points: .venv/bin/pip install --no-deps -e ."
    for name in names:
        assert plugins.load(group, name) is not None


@pytest.mark.parametrize(
    ("group", "what"),
    [
        (plugins.COLLECTORS, "collector"),
        (plugins.STORES, "store"),
        (plugins.VM_ACTUATORS, "VM actuator"),
        (plugins.BALANCERS, "balancer"),
        (plugins.SCALING_POLICIES, "scaling policy"),
    ],
)
def test_an_unknown_name_lists_the_known_ones(group: str, what: str) -> None:
    with pytest.raises(PermanentError) as exc:
        plugins.load(group, "no-such-plugin")
    assert str(exc.value) == f"unknown {what} 'no-such-plugin' (known: {', '.join(plugins.names(group))})"


def test_the_entries_are_what_their_users_call() -> None:
    drivers = {name: plugins.load(plugins.VM_ACTUATORS, name) for name in plugins.names(plugins.VM_ACTUATORS)}
    assert all(isinstance(d, VmDriver) for d in drivers.values())
    assert {n for n, d in drivers.items() if not d.store} == {"sim"}  # the simulated cluster is its own view
    extras = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    assert {d.requires for d in drivers.values()} - {""} <= set(extras)
    kinds = {name: plugins.load(plugins.BALANCERS, name) for name in plugins.names(plugins.BALANCERS)}
    assert all(isinstance(k, BalancerKind) for k in kinds.values())
    assert {n: k.binary for n, k in kinds.items() if k.binary} == {"nginx": "nginx", "haproxy": "haproxy"}
    # config.py's Literal of policy names (kept for validation) and the registered policies are the same names.
    assert set(plugins.names(plugins.SCALING_POLICIES)) == set(get_args(ScalingPolicyName))
    assert all(callable(plugins.load(plugins.SCALING_POLICIES, n)) for n in get_args(ScalingPolicyName))


@pytest.mark.parametrize(
    ("name", "module", "extra"), [("libvirt", "libvirt", "libvirt"), ("openstack", "openstack", "openstack")]
)
def test_a_vm_actuator_without_its_library_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, module: str, extra: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # `import libvirt` raises ImportError
    hosts = [{"name": "hv1", "uri": "test:///default"}]
    config = parse_config({"state_dir": str(tmp_path), "cluster": {"url": f"{name}:", "libvirt": {"hosts": hosts}}})
    driver: VmDriver = plugins.load(plugins.VM_ACTUATORS, name)
    fence = EpochFence(tmp_path / "epoch.json", "cluster test")
    with pytest.raises(MissingDependencyError, match=rf"pip install 'loadpilot\[{extra}\]'"):
        driver.open(config, fence, MigrationSlots(), time.time)


def test_a_balancer_whose_program_is_missing_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "which", lambda *_args, **_kwargs: None)
    pool = pool_config(balancer={"type": "haproxy"})
    with pytest.raises(PermanentError, match=r"haproxy is not installed \(apt-get install haproxy\)"):
        build_balancer(pool, tmp_path)
