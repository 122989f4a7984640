"""VM actuators: one interface (base.VmActuator: hosts, domains per host, live migration with progress, resize),
epoch-fenced and limited in concurrent migrations, over three kinds of cluster:

- libvirt.py    libvirt connections, one per host (migrateToURI3; an explicit emulated migration for libvirt's test
                driver, which has none)
- openstack.py  Nova through openstacksdk (os-migrateLive to a named host, resize to a flavor)
- the simulated cluster lives in loadpilot.sim.cluster_actuator (sim/ may use act/, act/ never reaches sim/)

libvirt-python and openstacksdk are optional and imported only when an actuator of theirs is built.
"""

from loadpilot.act.vm.base import (
    Domain,
    HostInfo,
    MigrationLimitError,
    MigrationProgress,
    MigrationSlots,
    VmActuator,
    VmNotFoundError,
)

__all__ = [
    "Domain",
    "HostInfo",
    "MigrationLimitError",
    "MigrationProgress",
    "MigrationSlots",
    "VmActuator",
    "VmNotFoundError",
]
