"""The standard drills that break replicated storage: storage primary loss, disk failure,
split brain. Each takes the DRBD resource backing the most volumes (a dual-primary one
first for split brain) and says which and why; without DRBD they do not apply."""

from __future__ import annotations

import math

from stackdrill.checks.expectations import (
    ExpectAckedWrites,
    Expectation,
    ExpectDrbd,
    ExpectExactlyOnce,
    ExpectFencingOrder,
    ExpectNoIoErrors,
    ExpectRecovered,
)
from stackdrill.drill.model import Step
from stackdrill.faults import DiskFailure, HostCrash, HostReboot, Partition
from stackdrill.gate import choose
from stackdrill.gate.drillkit import (
    FAULT_AT,
    RECOVERY_S,
    TITLES,
    make_drill,
    recover_step,
    survivors_take_over,
    workload,
)
from stackdrill.gate.plan import GateDrill, NotApplicable, Planned
from stackdrill.topology import Topology
from stackdrill.topology.model import DrbdResource


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
    schedule = (recover_step(), Step(at=FAULT_AT, id="primary-dies",
                                 inject=HostCrash(host=victim, power_back=False)))
    expect: tuple[Expectation, ...] = (
        ExpectExactlyOnce(), ExpectAckedWrites(max_lost=0), ExpectRecovered(),
        ExpectFencingOrder(), *survivors_take_over(topology, victim))
    drill = make_drill(topology, "storage-primary-loss", f"the DRBD Primary {victim} of "
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
    drill = make_drill(topology, "disk-failure", f"disk {resource.disk} under {victim} fails "
                       "and is replaced; no I/O error reaches a guest, the resync completes",
                       duration, schedule, expect, workload(duration, writers))
    return GateDrill(drill, TITLES["disk-failure"], f"{victim}:{resource.disk}", why)


def _writers_on(topology: Topology, resource: DrbdResource) -> tuple[str, ...] | None:
    """The instances with a volume on the resource (the others' writes prove nothing
    here and cost time in a long drill); None (all) when that is every instance."""
    volumes = set(choose.volumes_on(topology, resource))
    chosen = tuple(i.name for i in topology.instances if volumes & set(i.volumes))
    return None if len(chosen) == len(topology.instances) else chosen


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
    schedule = (recover_step(), cut.model_copy(update={"at": FAULT_AT}),
                Step(at=FAULT_AT + 120, heal="cut"))
    nodes = {n: {"disk": "UpToDate", "connection": "Connected"} for n in resource.nodes}
    for primary in resource.primary:
        nodes[primary] = {"role": "Primary"} | nodes[primary]
    expect: tuple[Expectation, ...] = (
        ExpectDrbd(resource=resource.name, split_brain=False, nodes=nodes),
        ExpectAckedWrites(max_lost=0), ExpectExactlyOnce())
    why = (f"the replication link of {resource.name} ({choose.resource_why(topology, resource)}"
           "); single-primary: cutting it must not let the peer become a second Primary")
    drill = make_drill(topology, name, f"the replication link of {resource.name} is cut and "
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
    drill = make_drill(topology, "split-brain", f"split brain on dual-primary {resource.name}: "
                       "both Primaries write while cut apart; no split brain may remain and no "
                       "acknowledged write be lost", 200, schedule, expect,
                       workload(200, interval_s=1.0))
    return GateDrill(drill, TITLES["split-brain"], victim, why)
