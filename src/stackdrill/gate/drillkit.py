"""What every standard drill of the gate shares: timings, titles, the workload, and the
one way a drill is made from typed values and checked as a loaded drill file is."""

from __future__ import annotations

import math

from stackdrill.api.commands import ProbeCommand
from stackdrill.checks.expectations import (
    ExpectAckedWrites,
    Expectation,
    ExpectDrbd,
    ExpectOverlay,
)
from stackdrill.drill.load import reference_problems
from stackdrill.drill.model import Drill, DrillSpec, RecoverSpec, Step, Workload
from stackdrill.gate import choose
from stackdrill.topology import Topology

FAULT_AT = 60.0  # lab seconds of steady state before the fault: heartbeats, writes
RECOVERY_S = 540.0  # after the fault, for detection, fencing and every evacuation
WRITES_PER_INSTANCE = 600  # the workload's interval grows with a long drill's length
# The source a built drill names: the report says where a drill came from.
SOURCE = "stackdrill gate"


def workload(duration_s: float, instances: tuple[str, ...] | None = None,
             interval_s: float = 2.0) -> Workload:
    """A write every `interval_s`, longer for long drills (a full resync of a big disk)
    so each instance writes about WRITES_PER_INSTANCE records whatever the length."""
    interval = max(interval_s, math.ceil(duration_s / WRITES_PER_INSTANCE))
    return Workload(write_interval_s=interval, instances=instances or "all")


def make_drill(topology: Topology, name: str, description: str, duration_s: float,
               schedule: tuple[Step, ...], expect: tuple[Expectation, ...],
               writes: Workload | None = None) -> Drill:
    """A drill checked as a loaded drill file is (every name it uses exists, every step
    before its end): a builder that made a drill the loader would refuse is a bug here."""
    spec = DrillSpec(name=name, description=description, topology=topology.name,
                     duration_s=duration_s, schedule=schedule, expect=expect,
                     workload=writes or workload(duration_s))
    problems = reference_problems(spec, topology)
    if problems:
        raise AssertionError(f"gate drill {name} on {topology.name} is inconsistent: "
                             + "; ".join(p.render(name) for p in problems))
    return Drill(spec=spec, topology=topology, source=f"{SOURCE}: {name} on {topology.name}")


def data_kept(topology: Topology) -> tuple[Expectation, ...]:
    """No acknowledged write lost, where an instance has a volume to write to: instances
    without volumes write nothing, and a check with nothing to check fails (it does not
    pass), so it is asked only where there is data to keep."""
    if any(i.volumes for i in topology.instances):
        return (ExpectAckedWrites(max_lost=0),)
    return ()


def overlay_kept(topology: Topology, victim: str, end_s: float
                 ) -> tuple[tuple[Step, ...], tuple[Expectation, ...]]:
    """The seed's overlay check around a host loss: an instance of the victim on an
    overlay is probed (arping, ping, full-size ping, tracepath) from an instance on
    another host before the fault and after its recovery, so it must come back with its
    MAC and IP reachable at the overlay's MTU. Nothing when no such pair exists."""
    for inst in (i for i in topology.instances if i.host == victim and i.overlay):
        peer = next((i for i in topology.instances if i.overlay == inst.overlay
                     and i.host != victim), None)
        if peer is None:
            continue
        overlay = next(o for o in topology.overlays if o.name == inst.overlay)
        steps = tuple(Step(at=at, run=ProbeCommand(src=peer.name, dst=inst.name, label=label))
                      for at, label in ((FAULT_AT - 50, "before"), (end_s - 50, "after")))
        return steps, (ExpectOverlay(probes=("before", "after"), mtu=overlay.mtu),)
    return (), ()


def recover_step() -> Step:
    """The engine at its defaults: the gate rehearses the recovery an operator would run,
    so its parallelism follows the lab's capacity, as the engine's own default does."""
    return Step(at=0, recover=RecoverSpec())


def survivors_take_over(topology: Topology, victim: str) -> tuple[Expectation, ...]:
    """For each DRBD resource the victim was a node of and that backs volumes: the peer
    ends Primary with UpToDate data (promoted if it was not), as DRBD leaves a survivor
    that took over (drbdadm status: role:Primary disk:UpToDate)."""
    return tuple(
        ExpectDrbd(resource=r.name,
                   nodes={choose.peer(r, victim): {"role": "Primary", "disk": "UpToDate"}})
        for r in topology.drbd if victim in r.nodes and choose.volumes_on(topology, r))


TITLES = {
    "host-loss": "Host loss",
    "storage-primary-loss": "Storage primary loss",
    "disk-failure": "Disk failure",
    "mgmt-partition": "Management partition",
    "split-brain": "Split brain",
    "returning-host": "Returning host",
    "maintenance-reboot": "Maintenance reboot",
}
