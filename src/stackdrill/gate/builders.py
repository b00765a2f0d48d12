"""The standard drill set, built for one topology from typed values.

Each builder (in gate.compute and gate.storage) takes the topology and returns either a
`GateDrill` (the drill, its victim and why it was chosen) or `NotApplicable` with the
reason. The drills are the shipped
ones (nova-host-failure, storage-primary-loss, disk-failure, mgmt-partition,
split-brain-1pri, returning-host-late, maintenance-reboot) with their victims, timings
and DRBD expectations worked out from the topology instead of written for one lab.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from stackdrill.gate.compute import host_loss, maintenance_reboot, mgmt_partition, returning_host
from stackdrill.gate.drillkit import TITLES
from stackdrill.gate.plan import Planned
from stackdrill.gate.storage import disk_failure, split_brain, storage_primary_loss
from stackdrill.topology import Topology

__all__ = ["STANDARD", "TITLES", "Standard", "standard_drills"]


@dataclass(frozen=True)
class Standard:
    """One drill of the standard set: its name, title and builder."""

    name: str
    title: str
    build: Callable[[Topology], Planned]


STANDARD: tuple[Standard, ...] = tuple(
    Standard(name, TITLES[name], build) for name, build in (
        ("host-loss", host_loss), ("storage-primary-loss", storage_primary_loss),
        ("disk-failure", disk_failure), ("mgmt-partition", mgmt_partition),
        ("split-brain", split_brain), ("returning-host", returning_host),
        ("maintenance-reboot", maintenance_reboot)))


def standard_drills(topology: Topology) -> list[Planned]:
    """Every standard drill for this topology, in the set's order."""
    return [standard.build(topology) for standard in STANDARD]
