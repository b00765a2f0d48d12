"""One drill per danger, built for the topology at hand from the idea of the shipped drill
that rehearses the same failure (named in each builder). Its expectations are the safe
outcome, so the drill fails where the dangerous setting is and passes where it is not."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from stackdrill.api.commands import DrbdCommand, LvmCommand, ProbeCommand
from stackdrill.checks.expectations import (
    ExpectAckedWrites,
    Expectation,
    ExpectCommands,
    ExpectDrbd,
    ExpectExactlyOnce,
    ExpectLvm,
    ExpectOverlay,
    ExpectQuorum,
)
from stackdrill.dangers.model import Danger, DangerCode, DrillUnavailable
from stackdrill.drill.model import Drill, DrillSpec, Step, Workload
from stackdrill.drill.references import reference_problems
from stackdrill.faults import HostCrash, HostReboot, Partition
from stackdrill.topology import DrbdResource, Topology


@dataclass(frozen=True)
class Plan:
    """What a builder decides: how long, what happens when, what must hold at the end."""

    duration_s: float
    schedule: tuple[Step, ...]
    expect: tuple[Expectation, ...]
    description: str


Builder = Callable[[str, Topology], Plan]


def build_drill(danger: Danger, topology: Topology, builder: Builder) -> Drill:
    """The builder's plan as a loaded drill on `topology` (inline, so the drill carries
    exactly the topology it was built for), its names checked as a drill file's are."""
    plan = builder(danger.subject, topology)
    spec = DrillSpec(
        name=danger.drill_name, description=plan.description,
        topology=topology.model_dump(mode="json"), duration_s=plan.duration_s,
        workload=Workload(write_interval_s=1.0), schedule=plan.schedule, expect=plan.expect)
    problems = reference_problems(spec, topology)
    if problems:
        raise DrillUnavailable(f"{danger.drill_name}: " + "; ".join(
            f"{p.path}: {p.message}" for p in problems))
    return Drill(spec=spec, topology=topology,
                 source=f"<{danger.drill_name} for topology {topology.name}>")


def _resource(topology: Topology, name: str) -> DrbdResource:
    try:
        return topology.drbd_resource(name)
    except KeyError:
        raise DrillUnavailable(f"the topology has no DRBD resource {name!r}") from None


def _second(res: DrbdResource) -> tuple[str, str]:
    """(first, second): the first node Primary at start, and the other one."""
    first = res.primary[0] if res.primary else res.nodes[0]
    return first, next(n for n in res.nodes if n != first)


def refused_promotion(subject: str, topology: Topology) -> Plan:
    """The second `drbdadm primary` of a dual-primary pair (switch-primaries' idea)."""
    res = _resource(topology, subject)
    first, second = _second(res)
    return Plan(
        60.0,
        (Step(at=10, run=DrbdCommand(host=second, op="primary", resource=res.name)),),
        (ExpectCommands(succeeded=(0,)),
         ExpectDrbd(resource=res.name, nodes={first: {"role": "Primary"},
                                               second: {"role": "Primary"}}),
         ExpectExactlyOnce()),
        f"both nodes of {res.name} Primary, every instance running")


def never_connects(subject: str, topology: Topology) -> Plan:
    """The resource must be Connected on both nodes a minute after bring-up."""
    res = _resource(topology, subject)
    return Plan(
        60.0, (),
        (ExpectDrbd(resource=res.name,
                    nodes={n: {"connection": "Connected"} for n in res.nodes}),),
        f"{res.name} connects and replicates")


def split_brain_two_primaries(subject: str, topology: Topology) -> Plan:
    """split-brain-stonith's partition: no split brain, no acknowledged write lost."""
    res = _resource(topology, subject)
    a, b = res.nodes
    return Plan(
        200.0,
        (Step(at=40, id="cut", inject=Partition(groups=((a,), (b,)), network=res.network)),
         Step(at=100, heal="cut")),
        (ExpectDrbd(resource=res.name, split_brain=False), ExpectAckedWrites(max_lost=0)),
        f"a partition of {res.network} leaves {res.name} without a split brain")


def split_brain_one_primary(subject: str, topology: Topology) -> Plan:
    """split-brain-1pri: cut, the second node rebooted (back Secondary), link back. Safe
    is a split brain left to the operator: the Secondary keeps its own changes (UpToDate,
    StandAlone), where discard-secondary resyncs it from the Primary over them."""
    res = _resource(topology, subject)
    a, b = _second(res)
    return Plan(
        200.0,
        (Step(at=40, id="cut", inject=Partition(groups=((a,), (b,)), network=res.network)),
         Step(at=90, inject=HostReboot(host=b)),
         Step(at=100, heal="cut")),
        (ExpectDrbd(resource=res.name,
                    nodes={b: {"connection": "StandAlone", "disk": "UpToDate"}}),),
        f"a split brain of {res.name} with one Primary at reconnect leaves {b}'s "
        "acknowledged writes where they are")


def survivor_quorate(subject: str, topology: Topology) -> Plan:
    """quorum-no-two-node: a node dies for good (the one whose loss leaves the other short
    of votes, when one is); the other must stay quorate."""
    try:
        cluster = next(c for c in topology.clusters if c.name == subject)
    except StopIteration:
        raise DrillUnavailable(f"the topology has no cluster {subject!r}") from None
    if len(cluster.nodes) != 2:
        raise DrillUnavailable(f"cluster {subject} has {len(cluster.nodes)} nodes, not two")
    votes = {n: cluster.votes.get(n, 1) for n in cluster.nodes}
    survivor = min(cluster.nodes, key=lambda n: (votes[n], cluster.nodes.index(n)))
    lost = next(n for n in cluster.nodes if n != survivor)
    return Plan(
        120.0,
        (Step(at=30, id="loss", inject=HostCrash(host=lost, power_back=False)),),
        (ExpectQuorum(cluster=cluster.name, quorate={survivor: True}),),
        f"{survivor} stays quorate when {lost} is lost")


ROUNDS = 20  # lvm-local-race: twenty rounds make a lost change all but certain


def concurrent_lvcreate(subject: str, topology: Topology) -> Plan:
    """lvm-local-race: both nodes Primary, then rounds of simultaneous lvcreate; the VG
    must stay consistent."""
    try:
        vg = topology.volume_group(subject)
    except KeyError:
        raise DrillUnavailable(f"the topology has no volume group {subject!r}") from None
    res = _resource(topology, vg.pv.drbd or "")
    steps = [Step(at=5, run=DrbdCommand(host=n, op="primary", resource=res.name))
             for n in res.nodes if n not in res.primary]
    taken = {v.name for v in topology.volumes}
    for k in range(1, ROUNDS + 1):
        for j, host in enumerate(res.nodes):
            lv = _free_name(f"drill-{'ab'[j]}{k}", taken)
            steps.append(Step(at=30 + 10 * k, run=LvmCommand(
                host=host, op="lvcreate", vg=vg.name, lv=lv, extents=8)))
    return Plan(
        60.0 + 10 * ROUNDS, tuple(steps), (ExpectLvm(vg=vg.name),),
        f"simultaneous lvcreate on both nodes leaves {vg.name} consistent")


def _free_name(name: str, taken: set[str]) -> str:
    while name in taken:
        name += "x"
    taken.add(name)
    return name


def full_size_frames(subject: str, topology: Topology) -> Plan:
    """overlay-mtu-blackhole's probe: full-size frames at the overlay's own MTU must pass
    between two instances on different hosts."""
    try:
        ov = topology.overlay(subject)
    except KeyError:
        raise DrillUnavailable(f"the topology has no overlay {subject!r}") from None
    on = [i for i in topology.instances if i.overlay == ov.name]
    pair = next(((a, b) for a in on for b in on if a.host != b.host), None)
    if pair is None:
        raise DrillUnavailable(f"overlay {ov.name} needs two instances on different hosts "
                               "to probe between")
    src, dst = pair
    return Plan(  # tracepath gives up after 30 silent hops: time for that
        120.0,
        (Step(at=20, run=ProbeCommand(src=src.name, dst=dst.name, label="across")),),
        (ExpectOverlay(probes=("across",), mtu=ov.mtu),),
        f"{ov.mtu}-byte frames pass on {ov.name} from {src.host} to {dst.host}")


BUILDERS: dict[DangerCode, Builder] = {
    DangerCode.DRBD_DUAL_PRIMARY_NOT_ALLOWED: refused_promotion,
    DangerCode.DRBD_DUAL_PRIMARY_NOT_PROTOCOL_C: never_connects,
    DangerCode.DRBD_DUAL_PRIMARY_FENCING_DONT_CARE: split_brain_two_primaries,
    DangerCode.DRBD_AFTER_SB_1PRI_DISCARD_SECONDARY: split_brain_one_primary,
    DangerCode.COROSYNC_TWO_NODES_WITHOUT_TWO_NODE: survivor_quorate,
    DangerCode.LVM_LOCAL_LOCKING_ON_SHARED_VG: concurrent_lvcreate,
    DangerCode.OVERLAY_MTU_OVER_UNDERLAY: full_size_frames,
}
