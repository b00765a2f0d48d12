"""The standard drill set, built for one topology from typed values.

Each builder takes the topology and returns either a `GateDrill` (the drill, its victim
and why it was chosen) or `NotApplicable` with the reason. The drills are the shipped
ones (nova-host-failure, storage-primary-loss, disk-failure, mgmt-partition,
split-brain-1pri, returning-host-late, maintenance-reboot) with their victims, timings
and DRBD expectations worked out from the topology instead of written for one lab.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from stackdrill.checks.expectations import (
    ExpectAckedWrites,
    Expectation,
    ExpectCleanedReturningHost,
    ExpectDrbd,
    ExpectExactlyOnce,
    ExpectFencingOrder,
    ExpectNoIoErrors,
    ExpectNotEvacuated,
    ExpectRecovered,
    ExpectSingleWriter,
)
from stackdrill.drill.load import reference_problems
from stackdrill.drill.model import Drill, DrillSpec, RecoverSpec, Step, Workload
from stackdrill.faults import DiskFailure, HostCrash, HostReboot, Partition
from stackdrill.gate import choose
from stackdrill.gate.plan import GateDrill, NotApplicable, Planned
from stackdrill.recovery import Mode
from stackdrill.topology import Topology
from stackdrill.topology.model import DrbdResource, NetworkPurpose

FAULT_AT = 60.0  # lab seconds of steady state before the fault: heartbeats, writes
RECOVERY_S = 540.0  # after the fault, for detection, fencing and every evacuation
PARALLEL = 4  # instances recovered at once, as the shipped drills do
WRITES_PER_INSTANCE = 600  # the workload's interval grows with a long drill's length
# The source a built drill names: the report says where a drill came from.
SOURCE = "stackdrill gate"


def _workload(duration_s: float, instances: tuple[str, ...] | None = None,
              interval_s: float = 2.0) -> Workload:
    """A write every `interval_s`, longer for long drills (a full resync of a big disk)
    so each instance writes about WRITES_PER_INSTANCE records whatever the length."""
    interval = max(interval_s, math.ceil(duration_s / WRITES_PER_INSTANCE))
    return Workload(write_interval_s=interval, instances=instances or "all")


def _drill(topology: Topology, name: str, description: str, duration_s: float,
           schedule: tuple[Step, ...], expect: tuple[Expectation, ...],
           workload: Workload | None = None) -> Drill:
    """A drill checked as a loaded drill file is (every name it uses exists, every step
    before its end): a builder that made a drill the loader would refuse is a bug here."""
    spec = DrillSpec(name=name, description=description, topology=topology.name,
                     duration_s=duration_s, schedule=schedule, expect=expect,
                     workload=workload or _workload(duration_s))
    problems = reference_problems(spec, topology)
    if problems:
        raise AssertionError(f"gate drill {name} on {topology.name} is inconsistent: "
                             + "; ".join(p.render(name) for p in problems))
    return Drill(spec=spec, topology=topology, source=f"{SOURCE}: {name} on {topology.name}")


def _recover() -> Step:
    return Step(at=0, recover=RecoverSpec(parallel=PARALLEL))


def _survivors_take_over(topology: Topology, victim: str) -> tuple[Expectation, ...]:
    """For each DRBD resource the victim was a node of and that backs volumes: the peer
    ends Primary with UpToDate data (promoted if it was not), as DRBD leaves a survivor
    that took over (drbdadm status: role:Primary disk:UpToDate)."""
    return tuple(
        ExpectDrbd(resource=r.name,
                   nodes={choose.peer(r, victim): {"role": "Primary", "disk": "UpToDate"}})
        for r in topology.drbd if victim in r.nodes and choose.volumes_on(topology, r))


def _evacuation_target(topology: Topology, name: str) -> NotApplicable | choose.Choice:
    """The compute host to lose, or why losing one cannot be rehearsed here."""
    title = TITLES[name]
    victim = choose.busiest_compute(topology)
    if victim is None:
        return NotApplicable(name, title, "no compute host runs an instance: nothing to "
                             "recover")
    others = [h.name for h in choose.compute_hosts(topology) if h.name != victim.name]
    if not others:
        return NotApplicable(name, title, f"one compute host ({victim.name}): nowhere to "
                             "evacuate its instances")
    return victim


def host_loss(topology: Topology) -> Planned:
    """The busiest compute host dies for good: its instances come back elsewhere exactly
    once, nothing acknowledged lost, fenced before anything starts elsewhere."""
    target = _evacuation_target(topology, "host-loss")
    if isinstance(target, NotApplicable):
        return target
    victim = target.name
    schedule = (_recover(), Step(at=FAULT_AT, id="host-dies",
                                 inject=HostCrash(host=victim, power_back=False)))
    expect: tuple[Expectation, ...] = (
        ExpectExactlyOnce(), ExpectAckedWrites(max_lost=0), ExpectRecovered(),
        ExpectFencingOrder(), *_survivors_take_over(topology, victim))
    drill = _drill(topology, "host-loss", f"{victim} dies for good; its instances come back "
                   "elsewhere exactly once, no acknowledged write lost",
                   FAULT_AT + RECOVERY_S, schedule, expect)
    return GateDrill(drill, TITLES["host-loss"], victim, target.why)


def _storage_target(topology: Topology, name: str) -> NotApplicable | DrbdResource:
    resource = choose.busiest_resource(topology)
    if resource is None:
        return NotApplicable(name, TITLES[name], "no DRBD resource: no replicated storage")
    if not choose.volumes_on(topology, resource):
        return NotApplicable(name, TITLES[name], "no volume lives on a DRBD resource")
    return resource


def storage_primary_loss(topology: Topology) -> Planned:
    """The Primary of the busiest DRBD resource dies for good: its peer is promoted and
    every guest writes again with no acknowledged write lost."""
    resource = _storage_target(topology, "storage-primary-loss")
    if isinstance(resource, NotApplicable):
        return resource
    if not resource.primary:
        return NotApplicable("storage-primary-loss", TITLES["storage-primary-loss"],
                             f"DRBD resource {resource.name} has no Primary at start")
    victim = resource.primary[0]
    running = choose.instances_on(topology, victim)
    why = (f"{victim} is the Primary of {resource.name}; "
           + choose.resource_why(topology, resource)
           + (f"; it also runs {running} instance{'s' * (running != 1)}" if running else ""))
    schedule = (_recover(), Step(at=FAULT_AT, id="primary-dies",
                                 inject=HostCrash(host=victim, power_back=False)))
    expect: tuple[Expectation, ...] = (
        ExpectExactlyOnce(), ExpectAckedWrites(max_lost=0), ExpectRecovered(),
        ExpectFencingOrder(), *_survivors_take_over(topology, victim))
    drill = _drill(topology, "storage-primary-loss", f"the DRBD Primary {victim} of "
                   f"{resource.name} dies; its peer takes over, no acknowledged write lost",
                   FAULT_AT + RECOVERY_S, schedule, expect)
    return GateDrill(drill, TITLES["storage-primary-loss"], victim, why)


def full_resync_s(topology: Topology, resource: DrbdResource) -> float:
    """How long a full resync of the resource takes at its resync rate, or at what its
    replication network carries if that is less (KiB/s, as DRBD counts)."""
    link_kib = topology.network(resource.network).bandwidth_mbit * 1e6 / 8 / 1024
    return resource.size_gb * 1024 * 1024 / min(resource.resync_rate_kib, link_kib)


def disk_failure(topology: Topology) -> Planned:
    """The backing disk under the Primary of the busiest resource fails and is replaced:
    no workload sees an I/O error (on-io-error detach), and a full resync brings the
    replaced disk back UpToDate and Connected."""
    resource = _storage_target(topology, "disk-failure")
    if isinstance(resource, NotApplicable):
        return resource
    victim = resource.primary[0] if resource.primary else resource.nodes[0]
    other = choose.peer(resource, victim)
    why = (f"disk {resource.disk} of {victim}, "
           + ("the Primary's" if resource.primary else "a node's") + " backing disk of "
           + choose.resource_why(topology, resource))
    replaced_at = FAULT_AT + 90
    duration = math.ceil(replaced_at + 1.3 * full_resync_s(topology, resource) + 120)
    after = {"disk": "UpToDate", "connection": "Connected"}
    nodes = {victim: ({"role": "Primary"} if resource.primary else {}) | after, other: after}
    schedule = (Step(at=FAULT_AT, id="disk-fails",
                     inject=DiskFailure(host=victim, disk=resource.disk)),
                Step(at=replaced_at, heal="disk-fails"))
    expect: tuple[Expectation, ...] = (
        ExpectNoIoErrors(), ExpectAckedWrites(max_lost=0), ExpectExactlyOnce(),
        ExpectDrbd(resource=resource.name, nodes=nodes))
    writers = _writers_on(topology, resource)
    drill = _drill(topology, "disk-failure", f"disk {resource.disk} under {victim} fails "
                   "and is replaced; no I/O error reaches a guest, the resync completes",
                   duration, schedule, expect, _workload(duration, writers))
    return GateDrill(drill, TITLES["disk-failure"], f"{victim}:{resource.disk}", why)


def _writers_on(topology: Topology, resource: DrbdResource) -> tuple[str, ...] | None:
    """The instances with a volume on the resource (the others' writes prove nothing
    here and cost time in a long drill); None (all) when that is every instance."""
    volumes = set(choose.volumes_on(topology, resource))
    chosen = tuple(i.name for i in topology.instances if volumes & set(i.volumes))
    return None if len(chosen) == len(topology.instances) else chosen


def mgmt_partition(topology: Topology) -> Planned:
    """The busiest compute host loses its management network only: its storage links
    and power controller say it is alive, so it must not be fenced or evacuated."""
    name = "mgmt-partition"
    mgmt = next((n for n in topology.networks if NetworkPurpose.MANAGEMENT in n.purposes), None)
    if mgmt is None:
        return NotApplicable(name, TITLES[name], "no management network")
    on_mgmt = tuple(h for h in choose.compute_hosts(topology) if h.name in mgmt.addresses)
    if not on_mgmt:
        return NotApplicable(name, TITLES[name], f"no compute host on the management network "
                             f"{mgmt.name}")
    partitionable = tuple(h for h in on_mgmt if not choose.only_on_management(topology, h.name))
    if not partitionable:
        return NotApplicable(name, TITLES[name], f"every compute host reaches the others only "
                             f"over the management network {mgmt.name}: cutting it isolates "
                             "the host (that is host loss)")
    target = choose.busiest_compute(topology, partitionable) or choose.Choice(
        partitionable[0].name, "the first compute host by name (none runs an instance)")
    victim = target.name
    rest = tuple(h for h in mgmt.addresses if h != victim)
    if not rest:
        return NotApplicable(name, TITLES[name], f"{victim} is alone on {mgmt.name}")
    schedule = (_recover(),
                Step(at=FAULT_AT, id="isolate",
                     inject=Partition(groups=((victim,), rest), network=mgmt.name)),
                Step(at=FAULT_AT + 240, heal="isolate"))
    expect: tuple[Expectation, ...] = (
        ExpectNotEvacuated(hosts=(victim,)), ExpectExactlyOnce(),
        ExpectAckedWrites(max_lost=0))
    drill = _drill(topology, name, f"{victim} loses its management network only; it is not "
                   "fenced or evacuated, nothing runs twice", FAULT_AT + 340, schedule, expect)
    return GateDrill(drill, TITLES[name], f"{victim} (network {mgmt.name})",
                     target.why + "; its other links stay up")


def _split_resource(topology: Topology) -> DrbdResource | None:
    """A dual-primary resource (where split brain can happen) first, else the busiest."""
    dual = [r for r in topology.drbd if r.allow_two_primaries and len(r.primary) == 2
            and choose.volumes_on(topology, r)]
    return sorted(dual, key=lambda r: r.name)[0] if dual else choose.busiest_resource(topology)


def split_brain(topology: Topology) -> Planned:
    """The replication link of a DRBD resource is cut while its Primary (or both, when
    dual-primary) write, then restored: no acknowledged write may be lost, and the
    resource ends as DRBD leaves it under the configured after-sb policy."""
    name = "split-brain"
    resource = _split_resource(topology)
    if resource is None:
        return NotApplicable(name, TITLES[name], "no DRBD resource: no replication link")
    a, b = resource.nodes
    victim = f"link {a}-{b} on {resource.network} ({resource.name})"
    cut = Step(at=40, id="cut", inject=Partition(groups=((a,), (b,)), network=resource.network))
    if resource.allow_two_primaries and len(resource.primary) == 2:
        return _dual_primary_split(topology, resource, cut, victim)
    schedule = (_recover(), cut.model_copy(update={"at": FAULT_AT}),
                Step(at=FAULT_AT + 120, heal="cut"))
    nodes = {n: {"disk": "UpToDate", "connection": "Connected"} for n in resource.nodes}
    for primary in resource.primary:
        nodes[primary] = {"role": "Primary"} | nodes[primary]
    expect: tuple[Expectation, ...] = (
        ExpectDrbd(resource=resource.name, split_brain=False, nodes=nodes),
        ExpectAckedWrites(max_lost=0), ExpectExactlyOnce())
    why = (f"the replication link of {resource.name} ({choose.resource_why(topology, resource)}"
           "); single-primary: cutting it must not let the peer become a second Primary")
    drill = _drill(topology, name, f"the replication link of {resource.name} is cut and "
                   "restored; no split brain, the peer resyncs", FAULT_AT + 240, schedule,
                   expect)
    return GateDrill(drill, TITLES[name], victim, why)


def _dual_primary_split(topology: Topology, resource: DrbdResource, cut: Step,
                        victim: str) -> GateDrill:
    """Both Primaries write while cut apart. With `fencing resource-and-stonith` one side
    shoots the other and no split brain can happen (split-brain-stonith). Without it
    nothing stops both writing; the second Primary is rebooted before the link returns
    (as an operator or a watchdog does; it comes back Secondary), so the handshake meets
    one Primary and after-sb-1pri decides whose writes survive (split-brain-1pri). Either
    way the claim is the operator's: no split brain, no acknowledged write lost."""
    a, b = resource.primary
    stonith = resource.fencing == "resource-and-stonith"
    demote = () if stonith else (Step(at=90, inject=HostReboot(host=b)),)
    schedule = (cut, *demote, Step(at=100, heal="cut"))
    expect: tuple[Expectation, ...] = (
        ExpectDrbd(resource=resource.name, split_brain=False),
        ExpectAckedWrites(max_lost=0))
    why = (f"the replication link of dual-primary {resource.name}; both {a} and {b} write "
           f"while cut; fencing {resource.fencing}"
           + ("" if stonith else f", so {b} is rebooted before the link returns and "
              f"after-sb-1pri ({resource.after_sb_1pri}) decides at the reconnect"))
    drill = _drill(topology, "split-brain", f"split brain on dual-primary {resource.name}: "
                   "both Primaries write while cut apart; no split brain may remain and no "
                   "acknowledged write be lost", 200, schedule, expect,
                   _workload(200, interval_s=1.0))
    return GateDrill(drill, TITLES["split-brain"], victim, why)


def returning_host(topology: Topology) -> Planned:
    """The busiest compute host dies, its instances are recovered elsewhere, then it
    powers on again: it must run none of them and never write to their volumes."""
    name = "returning-host"
    target = _evacuation_target(topology, name)
    if isinstance(target, NotApplicable):
        return target
    victim = target.name
    back_at = FAULT_AT + 340
    schedule = (_recover(), Step(at=FAULT_AT, id="host-dies", inject=HostCrash(host=victim)),
                Step(at=back_at, heal="host-dies"))
    expect: tuple[Expectation, ...] = (
        ExpectExactlyOnce(), ExpectCleanedReturningHost(host=victim), ExpectSingleWriter(),
        ExpectAckedWrites(max_lost=0), ExpectFencingOrder())
    drill = _drill(topology, name, f"{victim} dies, its instances are recovered elsewhere, "
                   "then it powers on: it runs none of them", back_at + 300, schedule, expect)
    return GateDrill(drill, TITLES[name], victim, target.why + "; it powers on again after "
                     "the recovery")


def maintenance_reboot(topology: Topology) -> Planned:
    """The busiest compute host is drained, rebooted cleanly and its guests resumed:
    every instance back and writing, nothing lost."""
    name = "maintenance-reboot"
    victim = choose.busiest_compute(topology)
    if victim is None:
        return NotApplicable(name, TITLES[name], "no compute host runs an instance: nothing "
                             "to drain")
    schedule = (Step(at=30, recover=RecoverSpec(mode=Mode.MAINTENANCE, host=victim.name,
                                                parallel=PARALLEL)),)
    expect: tuple[Expectation, ...] = (
        ExpectExactlyOnce(), ExpectAckedWrites(max_lost=0), ExpectRecovered())
    drill = _drill(topology, name, f"{victim.name} is drained, rebooted and its guests "
                   "resumed; every instance back, nothing lost", 500, schedule, expect)
    return GateDrill(drill, TITLES[name], victim.name, victim.why)


@dataclass(frozen=True)
class Standard:
    """One drill of the standard set: its name, title and builder."""

    name: str
    title: str
    build: Callable[[Topology], Planned]


TITLES = {
    "host-loss": "Host loss",
    "storage-primary-loss": "Storage primary loss",
    "disk-failure": "Disk failure",
    "mgmt-partition": "Management partition",
    "split-brain": "Split brain",
    "returning-host": "Returning host",
    "maintenance-reboot": "Maintenance reboot",
}
STANDARD: tuple[Standard, ...] = tuple(
    Standard(name, TITLES[name], build) for name, build in (
        ("host-loss", host_loss), ("storage-primary-loss", storage_primary_loss),
        ("disk-failure", disk_failure), ("mgmt-partition", mgmt_partition),
        ("split-brain", split_brain), ("returning-host", returning_host),
        ("maintenance-reboot", maintenance_reboot)))


def standard_drills(topology: Topology) -> list[Planned]:
    """Every standard drill for this topology, in the set's order."""
    return [standard.build(topology) for standard in STANDARD]
