"""A danger: a setting the real software accepts and runs, and that bites later.

Kept apart from `stackdrill.topology.semantic`, whose problems are errors (the real
software refuses the setting, or the lab cannot build it): a danger loads, runs, and is
demonstrated by a drill built for the very topology that holds it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stackdrill.drill.model import Drill
    from stackdrill.topology import Topology


class DangerCode(StrEnum):
    """Stable codes: a gate, a ticket or a suppression list may name them."""

    DRBD_DUAL_PRIMARY_NOT_ALLOWED = "drbd-dual-primary-not-allowed"
    DRBD_DUAL_PRIMARY_NOT_PROTOCOL_C = "drbd-dual-primary-not-protocol-c"
    DRBD_DUAL_PRIMARY_FENCING_DONT_CARE = "drbd-dual-primary-fencing-dont-care"
    DRBD_AFTER_SB_1PRI_DISCARD_SECONDARY = "drbd-after-sb-1pri-discard-secondary"
    COROSYNC_TWO_NODES_WITHOUT_TWO_NODE = "corosync-two-nodes-without-two-node"
    LVM_LOCAL_LOCKING_ON_SHARED_VG = "lvm-local-locking-on-shared-vg"
    OVERLAY_MTU_OVER_UNDERLAY = "overlay-mtu-over-underlay"


class DrillUnavailable(ValueError):
    """The topology lacks what the danger's drill needs (e.g. two instances on the overlay
    on different hosts to probe between): the danger stands, its demonstration cannot."""


@dataclass(frozen=True)
class Danger:
    """One dangerous setting found in a topology.

    `path` is where the setting is, spelt as the topology's error paths are
    (`drbd[0].fencing`); `subject` the name of what holds it (a DRBD resource, a cluster,
    a volume group, an overlay), which the drill is built around; `shows` what that drill
    is expected to show on this topology (which checks fail, what damage)."""

    code: DangerCode
    path: str
    setting: str
    why: str
    subject: str
    shows: str

    @property
    def drill_name(self) -> str:
        return f"danger-{self.code.value}"

    def drill(self, topology: Topology) -> Drill:
        """The drill that demonstrates this danger, built for `topology` (its hosts,
        resource, VG, cluster or overlay names). Its expectations are the safe outcome:
        it fails on a topology that holds the danger and passes once the setting is
        safe. Raises DrillUnavailable when the topology lacks what the drill needs."""
        from stackdrill.dangers.drills import BUILDERS, build_drill

        return build_drill(self, topology, BUILDERS[self.code])


Finder = Callable[["Topology"], list[Danger]]
