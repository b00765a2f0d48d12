"""Choosing victims: which host, resource or link a standard drill breaks, and why.

Every choice is deterministic (ties go to the first name in sorted order), so the same
topology always gets the same drills, and each comes with a sentence an operator can
check against their own picture of the stack.
"""

from __future__ import annotations

from dataclasses import dataclass

from stackdrill.topology import Topology
from stackdrill.topology.model import DrbdResource, Host, NetworkPurpose, Role


@dataclass(frozen=True)
class Choice:
    """A victim (a host name) and why it was chosen."""

    name: str
    why: str


def instances_on(topology: Topology, host: str) -> int:
    return sum(1 for i in topology.instances if i.host == host)


def compute_hosts(topology: Topology) -> tuple[Host, ...]:
    return topology.hosts_with(Role.COMPUTE)


def busiest_compute(topology: Topology, among: tuple[Host, ...] | None = None) -> Choice | None:
    """The compute host running the most instances (None when none runs any): its loss
    puts the most instances at stake."""
    hosts = compute_hosts(topology) if among is None else among
    counted = sorted(((instances_on(topology, h.name), h.name) for h in hosts),
                     key=lambda pair: (-pair[0], pair[1]))
    if not counted or counted[0][0] == 0:
        return None
    count, name = counted[0]
    total = len(topology.instances)
    tied = sum(1 for c, _n in counted if c == count) - 1
    why = (f"{name} runs {count} of the {total} instances, the most of any compute host"
           + (f" (tied with {tied} other{'s' if tied > 1 else ''}; first by name)" if tied else ""))
    return Choice(name, why)


def volumes_on(topology: Topology, resource: DrbdResource) -> tuple[str, ...]:
    """The volumes whose volume group lives on this DRBD resource."""
    vgs = {vg.name for vg in topology.volume_groups if vg.pv.drbd == resource.name}
    return tuple(v.name for v in topology.volumes if v.vg in vgs)


def busiest_resource(topology: Topology) -> DrbdResource | None:
    """The DRBD resource backing the most volumes (None without DRBD); a resource that is
    Primary somewhere at start wins a tie over one that is not."""
    if not topology.drbd:
        return None
    return sorted(topology.drbd, key=lambda r: (-len(volumes_on(topology, r)),
                                                not r.primary, r.name))[0]


def resource_why(topology: Topology, resource: DrbdResource) -> str:
    count = len(volumes_on(topology, resource))
    others = len(topology.drbd) - 1
    return (f"DRBD resource {resource.name} backs {count} volume{'s' * (count != 1)}"
            + (f", the most of the {len(topology.drbd)} resources" if others else ""))


def peer(resource: DrbdResource, host: str) -> str:
    return next(n for n in resource.nodes if n != host)


def only_on_management(topology: Topology, host: str) -> bool:
    """True when every network the host is on carries management traffic: cutting its
    management network then isolates the host entirely (a host loss, not a partition)."""
    on = [n for n in topology.networks if host in n.addresses]
    return all(NetworkPurpose.MANAGEMENT in n.purposes for n in on)
