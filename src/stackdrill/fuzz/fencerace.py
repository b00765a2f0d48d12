"""Fence races the oracle declares: a cluster's fence race, and a hang that thaws mid-fence.

Storage nodes a link fault may cost their power (`fence_victims`):

A cut on a power-fenced cluster's network splits its membership; a quorate partition
then fences the members it lost (dlm_controld enable_fencing). With `two_node` both
halves stay quorate and race, and the static delay per node id decides: the lowest id
always wins (pcmk_delay_base as deployed; `backends/sim/cluster.py` models exactly
that), so a link fault on *either* node of a two-node cluster powers the other one off
— even the node whose own link failed survives if its id is lower. Nothing powers a
fenced host on again, so for the oracle the loser is a host that went down: its DRBD
copy is gone and its peer writes alone from then on. Larger clusters: every member the
fault separates may be the one fenced (the majority decides; kept conservative).

A hung DRBD Primary the engine fences may thaw just before the power-off lands and
write alone first (`thawed_while_fenced`).
"""

from __future__ import annotations

from stackdrill.drill.model import Drill
from stackdrill.faults import Fault, HostHang, LinkDown, PacketLoss, Partition
from stackdrill.fuzz.targets import Targets
from stackdrill.recovery.config import RecoveryConfig
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


def thawed_while_fenced(drill: Drill, config: RecoveryConfig | None = None
                        ) -> tuple[float | None, frozenset[str]]:
    """(when, DRBD resources) a hung Primary may have written alone just before the engine's
    power-off landed: the engine declares a host down once its heartbeat is older than the
    grace (its last beat came up to one interval before the hang) and powers it off a few
    seconds later; a hang healed in that window thaws a host whose peer dropped the link long
    ago. With resource-only fencing nothing freezes its I/O (drbd-8.4 drbd_state.c
    sanitize_state: `if (fp == FP_STONITH && …) ns.susp_fen = 1`, stonith only), so its
    guests' writes are acknowledged on its disk alone — then the power-off takes that disk
    away. Its peer is stale (the engine refuses to start from
    it: the instances may be unrecoverable) and the writes acked after the hang are lost.
    A hang healed earlier rejoins unfenced; one healed later thaws a host already off."""
    cfg = config or RecoveryConfig()
    earliest = cfg.grace_s - cfg.heartbeat_interval_s
    latest = cfg.grace_s + cfg.heartbeat_interval_s  # detection, poll and IPMI, with margin
    healed = {s.heal: s.at for s in drill.spec.schedule if s.heal is not None}
    compute = set(Targets.of(drill.topology).compute)
    times: list[float] = []
    hit: set[str] = set()
    for step, fault in drill.faults():
        if not isinstance(fault, HostHang) or fault.host not in compute \
                or step.id not in healed or not earliest <= healed[step.id] - step.at <= latest:
            continue
        for res in drill.topology.drbd:
            if fault.host in res.primary:
                times.append(step.at)
                hit.add(res.name)
    return (min(times) if times else None), frozenset(hit)
