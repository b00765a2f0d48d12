"""Declared damage: what a random schedule may legitimately break, decided before it runs.

A random drill is judged against invariants that hold for every schedule, except
where the schedule itself makes a loss legitimate. That exception is computed
here from the schedule alone (never from the run), so a run cannot excuse itself:

- **Unrecoverable instances.** Hosts a fault may leave unusable as a target
  ("unsure": a host-level fault, or a link fault on its management or storage
  path; every compute host when the controller that collects heartbeats is hit)
  are taken out, and the displaced instances (those on unsure hosts) are placed
  on the remaining hosts with the engine's own rules: capacity with Nova's
  allocation ratios and anti-affinity groups. If all fit, no instance may end up
  unrecoverable. If not, at most `displaced - max placeable` may, and only with
  a reason from the engine.
- **Divergence.** On a dual-primary DRBD resource (no resource fencing in the
  shipped topology), any fault that may cut the replication path while both
  sides write lets the two copies diverge, by design (the seed's own warning):
  a split brain on reconnect, or a peer's writes missing from the copy that
  survives. Lost acknowledged writes are then accepted, but only those acknowledged
  after the first such fault: everything acknowledged before it was on both
  disks (protocol C) and must survive.
- **A lone copy, then it goes.** Any DRBD resource: when a fault may cut a node from
  its peer (a link fault on the replication path of either, or the peer itself down)
  and later a disk of that resource fails or one of its nodes goes down, the writes
  acknowledged in between may have existed on that copy alone (resource-level fencing
  lets a primary go on writing without its peer). They may be lost, the resource may
  have no up-to-date replica left (its instances may be unrecoverable), and writes may
  stop. The same for a replaced disk whose resync source is cut off (see
  `lone_copies`), and for a link fault on a power-fencing cluster's network that splits
  the resource's nodes: the fence race powers one of them off for good (a cut, and the
  loss of that copy, at once); and for a link fault that cuts a node off the controller:
  the engine may fence it, leaving its peer the only copy; and for a hung Primary that
  thaws just before the engine's power-off lands (`fencerace.thawed_while_fenced`).
  Everything acknowledged before the first such cut must survive.
- **A blind control plane.** The controller collects every heartbeat. Lost for good
  while a storage host may be down, the engine never sees the storage host it holds (the
  last replica: never fenced) heartbeat again, so that failover cannot finish and writes
  may stop (`_blind_to_storage_for_good`).
- **Protocol A.** The DRBD model predicts the acknowledged writes still on the
  wire when a primary died; the lost count must equal that prediction (unless a lone
  copy or divergence declares losses: those are judged by when they were acknowledged).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from stackdrill.drill.model import Drill, Step
from stackdrill.faults import (
    DiskFailure,
    Fault,
    HostCrash,
    HostHang,
    HostReboot,
    LinkDown,
    PacketLoss,
    Partition,
    RateLimit,
)
from stackdrill.fuzz.fencerace import thawed_while_fenced
from stackdrill.fuzz.targets import Targets
from stackdrill.recovery.config import RecoveryConfig
from stackdrill.topology import ClusterFencing, DrbdResource, NetworkPurpose, Topology

HOST_FAULTS = (HostCrash, HostHang, HostReboot)
LINK_FAULTS = (LinkDown, PacketLoss, Partition, RateLimit)
PATH_CUT = "a storage path stays cut"
BLIND = "the controller is lost for good while a storage host may be down"


@dataclass(frozen=True)
class Damage:
    """What the schedule may break; everything else must hold."""

    unsure_hosts: frozenset[str]  # compute hosts that may not be usable targets
    displaced: frozenset[str]  # instances on unsure hosts
    may_be_unrecoverable: frozenset[str]  # displaced instances that may not fit anywhere
    max_unrecoverable: int
    split_brain_possible: bool  # dual-primary divergence declared (see diverge_from)
    diverge_from: float | None  # dual-primary: writes after this may diverge (no fencing)
    protocol_a: bool  # lost acked writes must equal the model's prediction
    may_stall: bool = False  # a storage path stays broken to the end: writes may stop
    lone_copy_from: float | None = None  # a copy written alone, then lost: writes after
    stall_reason: str = "a storage path stays cut"  # PATH_CUT or BLIND
    # displaced instances whose storage a fault that is never healed may keep out of
    # reach to the end: the engine may still be retrying them, or have them queued behind
    # an attempt that is, when the drill ends. (Not a lone copy whose holder may come
    # back: then the engine must finish, and a pending instance is its failure.)
    out_of_reach: frozenset[str] = frozenset()

    @property
    def losses_from(self) -> float | None:
        """Writes acknowledged after this may be lost (divergence or a lone copy)."""
        times = [t for t in (self.diverge_from, self.lone_copy_from) if t is not None]
        return min(times) if times else None

    def describe(self) -> str:
        parts = []
        if self.may_be_unrecoverable:
            parts.append(f"up to {self.max_unrecoverable} of "
                         f"{', '.join(sorted(self.may_be_unrecoverable))} may be unrecoverable")
        if self.split_brain_possible:
            parts.append(f"dual-primary divergence from t={self.diverge_from:g}s "
                         "(acked writes after it may be lost)")
        if self.lone_copy_from is not None:
            parts.append(f"a copy written alone from t={self.lone_copy_from:g}s, then lost "
                         "(acked writes after it may be lost)")
        if self.protocol_a:
            parts.append("protocol A" if self.losses_from is not None
                         else "protocol A (lost writes = model prediction)")
        if self.may_stall:
            parts.append(f"{self.stall_reason}: writes may stop")
        if self.out_of_reach:
            parts.append(f"{', '.join(sorted(self.out_of_reach))} may still be pending or "
                         "retried at the end (storage or controller out of reach for good)")
        return "; ".join(parts) or "none: every instance recovered, no acked write lost"


def _touches(fault: Fault, host: str, networks: set[str]) -> bool:
    """A link-level fault on one of `networks` (or on all networks) affecting `host`."""
    if isinstance(fault, Partition):
        return host in fault.targets() and (fault.network is None or fault.network in networks)
    net = getattr(fault, "network", None)
    return bool(host in fault.targets() and net in networks)


def unsure_hosts(topology: Topology, faults: list[Fault]) -> frozenset[str]:
    targets = Targets.of(topology)
    mgmt = set(targets.management)
    paths = mgmt | {n.name for n in topology.networks_for(NetworkPurpose.STORAGE)}
    paths |= set(targets.replication)
    paths |= {n.name for n in topology.networks_for(NetworkPurpose.TUNNEL)}  # verify pings
    unsure: set[str] = set()
    for fault in faults:
        if isinstance(fault, Partition):
            unsure |= _partitioned(fault, targets, mgmt, paths)
            continue
        for ctl in targets.controller:
            hit_ctl = isinstance(fault, HOST_FAULTS) and ctl in fault.targets()
            if hit_ctl or (isinstance(fault, LINK_FAULTS) and _touches(fault, ctl, mgmt)):
                unsure |= set(targets.compute)  # the control plane is blind
        for host in targets.compute:
            hit = isinstance(fault, (*HOST_FAULTS, DiskFailure)) and host in fault.targets()
            if hit or (isinstance(fault, LINK_FAULTS) and _touches(fault, host, paths)):
                unsure.add(host)
    return frozenset(unsure)


def _partitioned(fault: Partition, targets: Targets, mgmt: set[str],
                 paths: set[str]) -> set[str]:
    """Compute hosts a partition may make unusable: on the management path, those cut off
    from the controller; on a storage, replication or tunnel path, every one it names."""
    hosts = {h for h in fault.targets() if h in targets.compute}
    if fault.network is not None and fault.network not in paths:
        return set()
    if fault.network is not None and fault.network not in mgmt:
        return hosts
    with_ctl = next((set(g) for g in fault.groups if set(g) & set(targets.controller)), set())
    return hosts - with_ctl if fault.network is not None else hosts


def max_placeable(topology: Topology, displaced: list[str], hosts: list[str],
                  config: RecoveryConfig | None = None) -> int:
    """The most displaced instances that fit on `hosts` at once (exhaustive; tiny labs)."""
    cfg = config or RecoveryConfig()
    cap = {h: [topology.host(h).vcpus * cfg.cpu_allocation_ratio,
               topology.host(h).ram_mb * cfg.ram_allocation_ratio] for h in hosts}
    groups: dict[str, set[str]] = {h: set() for h in hosts}
    for inst in topology.instances:
        if inst.host in cap and inst.name not in displaced:
            flavor = topology.flavors[inst.flavor]
            cap[inst.host][0] -= flavor.vcpus
            cap[inst.host][1] -= flavor.ram_mb
            if inst.anti_affinity:
                groups[inst.host].add(inst.anti_affinity)
    best = 0
    options: list[str | None] = [*hosts, None]
    for assignment in itertools.product(options, repeat=len(displaced)):
        used = {h: [0.0, 0.0] for h in hosts}
        seen: dict[str, set[str]] = {h: set(g) for h, g in groups.items()}
        ok, placed = True, 0
        for name, host in zip(displaced, assignment, strict=True):
            if host is None:
                continue
            inst = topology.instance(name)
            flavor = topology.flavors[inst.flavor]
            used[host][0] += flavor.vcpus
            used[host][1] += flavor.ram_mb
            group = inst.anti_affinity
            if (used[host][0] > cap[host][0] or used[host][1] > cap[host][1]
                    or (group is not None and group in seen[host])):
                ok = False
                break
            if group is not None:
                seen[host].add(group)
            placed += 1
        if ok:
            best = max(best, placed)
    return best


def _diverge_from(drill: Drill) -> float | None:
    """When a dual-primary resource may first lose its peer while both sides write."""
    times: list[float] = []
    for res in drill.topology.drbd:
        if not (res.allow_two_primaries and len(res.primary) > 1):
            continue
        nodes = set(res.nodes)
        for step, fault in drill.faults():
            hit = isinstance(fault, (*HOST_FAULTS, DiskFailure)) and nodes & set(fault.targets())
            if hit or (isinstance(fault, LINK_FAULTS)
                       and any(_touches(fault, n, {res.network}) for n in nodes)):
                times.append(step.at)
    return min(times) if times else None


def _cut_off(fault: Fault, node: str, peer: str, network: str) -> bool:
    """The fault may separate `node` from `peer` on the replication path."""
    if isinstance(fault, (*HOST_FAULTS, DiskFailure)):
        return peer in fault.targets()
    if isinstance(fault, Partition):
        return any(node in g for g in fault.groups) and any(peer in g for g in fault.groups) \
            and not any(node in g and peer in g for g in fault.groups) \
            and (fault.network is None or fault.network == network)
    return isinstance(fault, (LinkDown, PacketLoss)) and (  # a rate limit cuts nothing
        _touches(fault, node, {network}) or _touches(fault, peer, {network}))


def _destroys(fault: Fault, res: DrbdResource, topology: Topology) -> bool:
    """The fault may take a node's copy of `res` away for the rest of the drill: its disk
    fails, or its host goes down (a storage node the engine or the cluster fenced stays
    off: nothing powers a fenced host on again), or the cluster fences it."""
    if isinstance(fault, DiskFailure):
        return fault.host in res.nodes and fault.disk == res.disk
    if isinstance(fault, LINK_FAULTS):
        return _cluster_fences(fault, res, topology)
    return isinstance(fault, HOST_FAULTS) and bool(set(res.nodes) & set(fault.targets()))


def _cluster_fences(fault: Fault, res: DrbdResource, topology: Topology) -> bool:
    """A link fault splitting the nodes of `res` on the network of a power-fencing cluster
    they both belong to: the partition's fence race (dlm_controld fences a lost member; in
    a two_node cluster both halves stay quorate and race) powers one of them off for good,
    whichever holds the data — the race knows membership, not disks. DRBD's own path may
    be intact: the copy goes with its host, as in a crash. Only a link that is down or
    partitioned splits the membership (packet loss is retransmitted within the token
    timeout; the simulator's corosync ignores it too)."""
    a, b = res.nodes[0], res.nodes[-1]
    return isinstance(fault, (LinkDown, Partition)) and any(
        c.fencing is ClusterFencing.POWER and {a, b} <= set(c.nodes)
        and (_cut_off(fault, a, b, c.network) or _cut_off(fault, b, a, c.network))
        for c in topology.clusters)


def _engine_fences(fault: Fault, res: DrbdResource, topology: Topology) -> set[str]:
    """Nodes of `res` a link fault may cut off the controller on the management network:
    the engine, corroborated by guests that lost their path to it, may declare such a node
    down and fence it (it holds back only the last replica), and a fenced node stays off:
    its peer is then the only copy."""
    targets = Targets.of(topology)
    mgmt = set(targets.management)
    out: set[str] = set()
    for node in res.nodes:
        if isinstance(fault, Partition):
            if (fault.network is None or fault.network in mgmt) and any(
                    _cut_off(fault, node, ctl, fault.network or "") for ctl in targets.controller):
                out.add(node)
        elif isinstance(fault, (LinkDown, PacketLoss)) and _touches(fault, node, mgmt):
            out.add(node)
    return out


def _cuts(fault: Fault, res: DrbdResource, topology: Topology,
          lost: frozenset[str] | None = None) -> bool:
    """The fault may leave one node of `res` writing alone: its replication path is cut,
    or the cluster or the engine fences its peer — for the engine, a peer other than the
    node whose copy is `lost` later (fencing the node that is lost anyway loses nothing)."""
    a, b = res.nodes[0], res.nodes[-1]
    if _cut_off(fault, a, b, res.network) or _cut_off(fault, b, a, res.network):
        return True
    if not isinstance(fault, LINK_FAULTS):
        return False
    nodes = set(res.nodes) if lost is None else set(lost)
    return _cluster_fences(fault, res, topology) or any(
        nodes - {fenced} for fenced in _engine_fences(fault, res, topology))


def _cut_while_off_the_controller(drill: Drill, res: DrbdResource, step: Step,
                                  fault: Fault) -> list[float]:
    """*A node off the controller, then cut from its peer*: `fault` cuts a node of `res`
    off the management network. The engine does not fence it for that alone (its peers
    still see it), but once a later cut stops its replication too, the controller has its
    corroboration and fences it — after the node, still Primary, has acknowledged writes
    alone for as long as DRBD took to declare the peer lost (resource-only fencing, its
    fence-peer handler unable to reach the cluster). Those writes go with it (random seed
    7828: the mgmt link down at 53.5 s, the replication cut at 94.7 s). The times of such
    cuts while `fault` is in force."""
    if not isinstance(fault, LINK_FAULTS) or not _engine_fences(fault, res, drill.topology):
        return []
    until = next((s.at for s in drill.spec.schedule if s.heal is not None
                  and s.heal == step.id), math.inf)
    cut_off = _engine_fences(fault, res, drill.topology)
    return [s.at for s, f in drill.faults()
            if step.at <= s.at < until and any(
                _cut_off(f, node, peer, res.network)
                for node in cut_off for peer in res.nodes if peer != node)]


def _lost_nodes(fault: Fault, res: DrbdResource) -> frozenset[str]:
    """The nodes of `res` whose copy a destroying fault takes (a cluster's fence race: either)."""
    if isinstance(fault, DiskFailure):
        return frozenset({fault.host})
    if isinstance(fault, HOST_FAULTS):
        return frozenset(set(res.nodes) & set(fault.targets()))
    return frozenset(res.nodes)


def lone_copies(drill: Drill) -> tuple[float | None, frozenset[str]]:
    """(when acknowledged writes of a DRBD resource may first have existed on one copy that
    a later fault took away, the resources that may be left without an up-to-date replica).

    Two double faults do that, and DRBD 8.4 gives the writes up in both:
    - *a cut, then the lone copy goes*: after the replication path is cut, the Primary goes
      on writing alone (resource-only fencing: the fence-peer handler failing does not
      suspend I/O, drbd_state.c only freezes for resource-and-stonith); if its disk fails
      or its host goes down later, those writes are on no surviving disk.
    - *a replaced disk, then its resync source is cut off*: a healed disk failure is a new
      disk that attaches Inconsistent and becomes SyncTarget of a full sync (drbd_nl.c
      drbd_adm_attach, drbd_receiver.c drbd_sync_handshake). A write pending on the peer
      when the connection is lost completes on the local disk alone (drbd_req.c:
      CONNECTION_LOST_WHILE_PENDING clears RQ_NET_OK, `ok = LOCAL_OK || NET_OK`) and is
      marked out of sync, so the resumed resync overwrites it with the peer's older block.
    Everything acknowledged before the cut was on both disks and must survive."""
    steps = drill.faults()
    healed = {s.heal: s.at for s in drill.spec.schedule if s.heal is not None}
    times: list[float] = []
    hit: set[str] = set()
    for res in drill.topology.drbd:
        for later, fault in steps:
            if not _destroys(fault, res, drill.topology):
                continue
            lost = _lost_nodes(fault, res)
            before = [s.at for s, f in steps
                      if s.at < later.at and _cuts(f, res, drill.topology, lost)]
            after: list[tuple[float, Fault]] = []
            if isinstance(fault, DiskFailure) and later.id in healed:
                after = [(s.at, f) for s, f in steps
                         if s.at > healed[later.id] and _cuts(f, res, drill.topology)]
            times += before + [t for t, _f in after]
            if before or any(isinstance(f, HOST_FAULTS) for _t, f in after):
                hit.add(res.name)  # the copy left may never come back: no replica at all
    for res in drill.topology.drbd:
        for step, fault in steps:
            cuts = _cut_while_off_the_controller(drill, res, step, fault)
            times += cuts
            if cuts:
                hit.add(res.name)  # the fenced writer had the newest data
    race_from, raced = thawed_while_fenced(drill)
    times += [race_from] if race_from is not None else []
    return (min(times) if times else None), frozenset(hit | raced)


def _on_resources(topology: Topology, resources: frozenset[str]) -> frozenset[str]:
    """Instances with a volume on one of the DRBD `resources`."""
    vgs = {vg.name for vg in topology.volume_groups if vg.pv.drbd in resources}
    return frozenset(i.name for i in topology.instances
                     if any(topology.volume(v).vg in vgs for v in i.volumes))


def declared_damage(drill: Drill) -> Damage:
    topology = drill.topology
    faults = [f for _s, f in drill.faults()]
    unsure = unsure_hosts(topology, faults)
    displaced = sorted(i.name for i in topology.instances if i.host in unsure)
    usable = sorted(h for h in Targets.of(topology).compute if h not in unsure)
    fit = max_placeable(topology, displaced, usable)
    may = frozenset(displaced) if fit < len(displaced) else frozenset()
    most = len(displaced) - fit if may else 0
    lone_from, lone = lone_copies(drill)
    on_lost = _on_resources(topology, lone)
    cut_off = _on_resources(topology, _cut_for_good(drill)) & frozenset(displaced)
    # every instance whose data may be gone may be unrecoverable, wherever it could fit;
    # of the other displaced ones at most those that do not fit
    if controller_isolated_for_good(drill):
        cut_off = frozenset(displaced)  # no flow can start once it is cut off
    stuck = on_lost | cut_off
    most = min(len(may | stuck), len(stuck) + min(most, len(may - stuck)))
    stranded = stuck - may
    protocol_a = any(r.protocol.value == "A" for r in topology.drbd)
    diverge = _diverge_from(drill)
    path_cut = _storage_path_stays_cut(drill) or bool(lone)
    blind = not path_cut and _blind_to_storage_for_good(drill)
    return Damage(unsure, frozenset(displaced), may | stranded, most,
                  diverge is not None, diverge, protocol_a, path_cut or blind, lone_from,
                  stall_reason=BLIND if blind else PATH_CUT, out_of_reach=cut_off)


def _cut_for_good(drill: Drill) -> frozenset[str]:
    """DRBD resources a never-healed link fault may cut off from the compute hosts at one
    of their nodes: while that node stays Primary (alive, so nobody fences it) no other
    path to the data exists — DRBD refuses a second Primary — so an instance that must
    move may find no usable volume path (iscsiadm cannot log in) and is given up.

    The same holds for a replication cut that is never healed after a disk of the
    resource failed: a Primary that lost its disk stays Primary, Diskless, serving
    through its peer (on-io-error detach); once the peer is cut off it has neither local
    nor remote data and fails every request (drbd_req.c, "IO ERROR: neither local nor
    remote data"). Its returning disk cannot attach, the peer having moved on (drbd_nl.c
    drbd_adm_attach: "Can only attach to the data we lost last"), and nothing fences a
    Primary that is alive, so the UpToDate peer is never promoted (random seed 3014)."""
    paths = {n.name for n in drill.topology.networks_for(NetworkPurpose.STORAGE)}
    healed = {s.heal for s in drill.spec.schedule if s.heal is not None}
    cut: set[str] = set()
    disk_lost: set[str] = set()
    for step, fault in drill.faults():
        if isinstance(fault, DiskFailure):
            disk_lost |= {r.name for r in drill.topology.drbd if fault.host in r.nodes}
        net = getattr(fault, "network", None)
        if step.id in healed or not isinstance(fault, LINK_FAULTS):
            continue
        cut |= {r.name for r in drill.topology.drbd
                if set(r.nodes) & set(fault.targets())
                and (net is None or net in paths
                     or (net == r.network and r.name in disk_lost))}
    return frozenset(cut)


def _storage_path_stays_cut(drill: Drill) -> bool:
    """A link fault on a storage or replication network that is never healed: an instance
    whose volume crosses it cannot write, and nothing in the stack is meant to fix that
    (the engine recovers hosts, not links). Losing a whole storage node is not excused:
    replication exists so that the volumes survive it."""
    topology = drill.topology
    paths = {n.name for n in topology.networks_for(NetworkPurpose.STORAGE)}
    paths |= {r.network for r in topology.drbd}
    healed = {s.heal for s in drill.spec.schedule if s.heal is not None}
    for step, fault in drill.faults():
        if step.id in healed or not isinstance(fault, LINK_FAULTS):
            continue
        net = getattr(fault, "network", None)
        if net is None or net in paths:
            return True
    return False


def _blind_to_storage_for_good(drill: Drill) -> bool:
    """The controller, where every heartbeat goes, is lost for good (crashed without power
    coming back, or hung or crashed and never healed) and a fault may take a storage host
    down or off the management path. The engine holds a storage host that has the last
    replica instead of fencing it, and waits to see it heartbeat again; with the
    controller gone it never does, so its guests' storage failover cannot finish."""
    targets = Targets.of(drill.topology)
    mgmt = set(targets.management)
    return _controller_lost_for_good(drill) and any(
        (isinstance(f, HOST_FAULTS) and set(f.targets()) & set(targets.storage))
        or (isinstance(f, LINK_FAULTS) and any(_touches(f, h, mgmt) for h in targets.storage))
        for _step, f in drill.faults())


def _controller_lost_for_good(drill: Drill) -> bool:
    """A controller crashed without power coming back, or hung or crashed and never healed."""
    controllers = set(Targets.of(drill.topology).controller)
    healed = {s.heal for s in drill.spec.schedule if s.heal is not None}
    return any(isinstance(f, (HostCrash, HostHang)) and set(f.targets()) & controllers
               and (step.id not in healed or (isinstance(f, HostCrash) and not f.power_back))
               for step, f in drill.faults())


def controller_isolated_for_good(drill: Drill) -> bool:
    """The controller, which receives every heartbeat and drives every flow, never reaches
    a compute host again: it is lost for good, or a fault that is never healed cuts it off
    every compute host on the management network. From then on the engine can neither see
    a host return nor start a flow, so whatever it had not recovered stays as it was: a
    failed host's instances stay pending (random seed 2628: cmp1, holding the only
    up-to-date copy, boots at 121 s and the controller is cut off at 127 s)."""
    if _controller_lost_for_good(drill):
        return True
    targets = Targets.of(drill.topology)
    mgmt = set(targets.management)
    healed = {s.heal for s in drill.spec.schedule if s.heal is not None}
    for step, fault in drill.faults():
        if step.id in healed:
            continue
        for ctl in targets.controller:
            if isinstance(fault, LinkDown) and _touches(fault, ctl, mgmt):
                return True
            if isinstance(fault, Partition) and (fault.network is None or fault.network in mgmt) \
                    and all(_cut_off(fault, ctl, h, fault.network or "") for h in targets.compute):
                return True
    return False
