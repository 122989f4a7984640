"""DESIGN.md's package map, enforced: each part of loadpilot imports only what it may."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "src" / "loadpilot"

# What a module may import besides the standard library, by module or package (DESIGN.md, "Packages").
STDLIB_ONLY = {"model", "errors", "clock", "wakeup"}
# decide/ is pure: it must never reach anything that does I/O.
DECIDE_FORBIDDEN = {"sense", "act", "store", "server", "coord", "transport", "control", "cli", "sim", "loadgen"}


def _imports(path: Path) -> set[str]:
    """Top-level names a file imports ('loadpilot.store' for loadpilot's own modules)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return {n if n.startswith("loadpilot.") else n.split(".")[0] for n in names}


def _files(part: str) -> list[Path]:
    single = PACKAGE / f"{part}.py"
    return [single] if single.exists() else sorted((PACKAGE / part).rglob("*.py"))


@pytest.mark.parametrize("part", sorted(STDLIB_ONLY))
def test_core_types_use_the_standard_library_only(part: str) -> None:
    for path in _files(part):
        foreign = {
            name
            for name in _imports(path)
            if name != "__future__"
            and name.split(".")[0] not in sys.stdlib_module_names
            and name not in {f"loadpilot.{p}" for p in STDLIB_ONLY}
        }
        assert not foreign, f"{path.relative_to(PACKAGE)} imports {sorted(foreign)}"


def test_decide_does_no_io() -> None:
    files = _files("decide")
    assert files
    for path in files:
        reached = {name.split(".")[1] for name in _imports(path) if name.startswith("loadpilot.")}
        assert not reached & DECIDE_FORBIDDEN, (
            f"{path.relative_to(PACKAGE)} imports {sorted(reached & DECIDE_FORBIDDEN)}"
        )


# Scaling decisions are plain arithmetic: the standard library, the value types and the settings' types only.
SCALING_MAY_REACH = {"model", "config", "errors", "decide"}
# The simulator drives decide's code in a simulated world; it never reaches the live machinery. It finds the
# scaling policies by name as a controller does (plugins: entry points, the standard library only).
SIM_MAY_REACH = {"model", "config", "errors", "clock", "decide", "act", "sim", "plugins"}


def test_scaling_policies_use_the_standard_library_only() -> None:
    files = _files("decide/scaling")
    assert files
    for path in files:
        names = _imports(path)
        reached = {name.split(".")[1] for name in names if name.startswith("loadpilot.")}
        foreign = {
            n for n in names if not n.startswith("loadpilot.") and n.split(".")[0] not in sys.stdlib_module_names
        }
        assert reached <= SCALING_MAY_REACH and not foreign, f"{path.relative_to(PACKAGE)} imports {sorted(names)}"


def test_sim_reaches_only_the_decision_code_and_value_types() -> None:
    files = _files("sim")
    assert files
    for path in files:
        reached = {name.split(".")[1] for name in _imports(path) if name.startswith("loadpilot.")}
        assert reached <= SIM_MAY_REACH, f"{path.relative_to(PACKAGE)} imports {sorted(reached - SIM_MAY_REACH)}"


# act/ turns decisions into effects; it may know the config and the value types, never the store or the server.
# It finds its balancers by name (plugins: entry points, the standard library only).
ACT_MAY_REACH = {"model", "config", "errors", "clock", "wakeup", "act", "plugins"}
# logsift is a workload, not part of loadpilot: it must run with its own dependencies alone.
LOGSIFT_DEPENDENCIES = {"drain3", "fastapi", "uvicorn", "starlette", "prometheus_client", "pydantic"}


def test_plugins_use_the_standard_library_only() -> None:
    # act/ and sim/ may reach plugins.py because it finds entry points and imports nothing else of loadpilot's.
    names = _imports(PACKAGE / "plugins.py")
    foreign = {n for n in names if n != "__future__" and n.split(".")[0] not in sys.stdlib_module_names}
    assert foreign <= {"loadpilot.errors"}, sorted(foreign)


def test_act_reaches_only_model_and_config() -> None:
    for path in _files("act"):
        reached = {name.split(".")[1] for name in _imports(path) if name.startswith("loadpilot.")}
        assert reached <= ACT_MAY_REACH, f"{path.relative_to(PACKAGE)} imports {sorted(reached - ACT_MAY_REACH)}"


# loadgen/ runs on a machine under test with nothing but the standard library and psutil.
LOADGEN_DEPENDENCIES = {"psutil"}
LOADGEN_MAY_REACH = {"loadpilot.errors"}


def test_loadgen_imports_only_the_standard_library_and_psutil() -> None:
    files = _files("loadgen")
    assert files
    for path in files:
        foreign = {
            name
            for name in _imports(path)
            if not name.startswith("loadpilot.loadgen")
            and name not in LOADGEN_MAY_REACH
            and name.split(".")[0] not in sys.stdlib_module_names | LOADGEN_DEPENDENCIES
        }
        assert not foreign, f"{path.relative_to(PACKAGE)} imports {sorted(foreign)}"


# coord/ sits on tooz: it may reach its backends' clients and loadpilot's value types, never the config or I/O above.
COORD_MAY_REACH = {"model", "errors", "clock", "coord"}
COORD_DEPENDENCIES = {"tooz", "redis", "etcd3gw", "kazoo"}


def test_coord_reaches_only_tooz_and_the_value_types() -> None:
    files = _files("coord")
    assert files
    for path in files:
        names = _imports(path)
        reached = {name.split(".")[1] for name in names if name.startswith("loadpilot.")}
        foreign = {
            n
            for n in names
            if not n.startswith("loadpilot.") and n.split(".")[0] not in sys.stdlib_module_names | COORD_DEPENDENCIES
        }
        assert reached <= COORD_MAY_REACH and not foreign, f"{path.relative_to(PACKAGE)} imports {sorted(names)}"


def test_logsift_imports_only_its_own_dependencies() -> None:
    files = _files("apps/logsift")
    assert files
    for path in files:
        foreign = {
            name
            for name in _imports(path)
            if not name.startswith("loadpilot.apps.logsift")
            and name.split(".")[0] not in sys.stdlib_module_names | LOGSIFT_DEPENDENCIES
        }
        assert not foreign, f"{path.relative_to(PACKAGE)} imports {sorted(foreign)}"


def test_no_relative_import_hides_from_these_checks() -> None:
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = [n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.ImportFrom) and n.level]
        assert not relative, f"{path.relative_to(PACKAGE)} uses a relative import"


# The VM actuators' drivers are optional: act/vm/ imports libvirt and openstacksdk only where an actuator is built.
VM_DRIVERS = {"libvirt", "openstack", "keystoneauth1"}


def test_vm_actuators_import_their_drivers_only_when_built() -> None:
    files = _files("act/vm")
    assert files
    for path in files:
        tree = ast.parse(path.read_text())
        top: set[str] = set()
        for node in tree.body:  # module level only: imports inside functions run when an actuator is built
            if isinstance(node, ast.Import):
                top.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                top.add(node.module.split(".")[0])
        assert not top & VM_DRIVERS, f"{path.relative_to(PACKAGE)} imports {sorted(top & VM_DRIVERS)} at module level"
