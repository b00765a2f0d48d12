"""Storage nodes a link fault may cost their power: the cluster's fence race.

A cut on a power-fenced cluster's network splits its membership; a quorate partition
then fences the members it lost (dlm_controld enable_fencing). With `two_node` both
halves stay quorate and race, and the static delay per node id decides: the lowest id
always wins (pcmk_delay_base as deployed; `backends/sim/cluster.py` models exactly
that), so a link fault on *either* node of a two-node cluster powers the other one off
— even the node whose own link failed survives if its id is lower. Nothing powers a
fenced host on again, so for the oracle the loser is a host that went down: its DRBD
copy is gone and its peer writes alone from then on. Larger clusters: every member the
fault separates may be the one fenced (the majority decides; kept conservative).
"""

from __future__ import annotations

from stackdrill.faults import Fault, LinkDown, PacketLoss, Partition
from stackdrill.topology import ClusterFencing, ClusterSpec, Topology


def _separated(fault: Fault, cluster: ClusterSpec) -> set[str]:
    """Members the fault may cut off from some other member on the cluster network."""
    members = set(cluster.nodes)
    if isinstance(fault, Partition):
        if fault.network is not None and fault.network != cluster.network:
            return set()
        sides = [set(g) & members for g in fault.groups]
        sides = [s for s in sides if s]
        return set().union(*sides) if len(sides) > 1 else set()
    if isinstance(fault, (LinkDown, PacketLoss)) and fault.network == cluster.network:
        hit = members & set(fault.targets())
        return members if hit and len(members) > 1 else set()
    return set()


def fence_victims(fault: Fault, topology: Topology) -> frozenset[str]:
    """Cluster members that `fault` may get powered off by their own cluster."""
    victims: set[str] = set()
    for cluster in topology.clusters:
        if cluster.fencing is not ClusterFencing.POWER:
            continue
        cut = _separated(fault, cluster)
        if len(cluster.nodes) == 2 and cut:
            victims.add(cluster.nodes[1])  # the higher node id loses the race
        else:
            victims |= cut
    return frozenset(victims)
