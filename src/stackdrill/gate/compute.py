"""The standard drills that break a compute host: host loss, returning host, maintenance
reboot, management partition. The victim is the compute host running the most instances
(see choose.busiest_compute), so the drill puts the most at stake."""

from __future__ import annotations

from stackdrill.checks.expectations import (
    Expectation,
    ExpectCleanedReturningHost,
    ExpectExactlyOnce,
    ExpectFencingOrder,
    ExpectNotEvacuated,
    ExpectRecovered,
    ExpectSingleWriter,
)
from stackdrill.drill.model import RecoverSpec, Step
from stackdrill.faults import HostCrash, Partition
from stackdrill.gate import choose
from stackdrill.gate.drillkit import (
    FAULT_AT,
    RECOVERY_S,
    TITLES,
    data_kept,
    make_drill,
    overlay_kept,
    recover_step,
    survivors_take_over,
)
from stackdrill.gate.plan import GateDrill, NotApplicable, Planned
from stackdrill.recovery import Mode
from stackdrill.topology import Topology
from stackdrill.topology.model import NetworkPurpose


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
    probes, reachable = overlay_kept(topology, victim, FAULT_AT + RECOVERY_S)
    schedule = (recover_step(), Step(at=FAULT_AT, id="host-dies",
                                     inject=HostCrash(host=victim, power_back=False)), *probes)
    expect: tuple[Expectation, ...] = (
        ExpectExactlyOnce(), *data_kept(topology), ExpectRecovered(),
        ExpectFencingOrder(), *survivors_take_over(topology, victim), *reachable)
    drill = make_drill(topology, "host-loss", f"{victim} dies for good; its instances come back "
                       "elsewhere exactly once, no acknowledged write lost",
                       FAULT_AT + RECOVERY_S, schedule, expect)
    return GateDrill(drill, TITLES["host-loss"], victim, target.why)


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
    schedule = (recover_step(),
                Step(at=FAULT_AT, id="isolate",
                     inject=Partition(groups=((victim,), rest), network=mgmt.name)),
                Step(at=FAULT_AT + 240, heal="isolate"))
    expect: tuple[Expectation, ...] = (
        ExpectNotEvacuated(hosts=(victim,)), ExpectExactlyOnce(),
        *data_kept(topology))
    drill = make_drill(topology, name, f"{victim} loses its management network only; it is not "
                       "fenced or evacuated, nothing runs twice", FAULT_AT + 340, schedule, expect)
    return GateDrill(drill, TITLES[name], f"{victim} (network {mgmt.name})",
                     target.why + "; its other links stay up")


def returning_host(topology: Topology) -> Planned:
    """The busiest compute host dies, its instances are recovered elsewhere, then it
    powers on again: it must run none of them and never write to their volumes."""
    name = "returning-host"
    target = _evacuation_target(topology, name)
    if isinstance(target, NotApplicable):
        return target
    victim = target.name
    back_at = FAULT_AT + 340
    schedule = (recover_step(), Step(at=FAULT_AT, id="host-dies", inject=HostCrash(host=victim)),
                Step(at=back_at, heal="host-dies"))
    expect: tuple[Expectation, ...] = (
        ExpectExactlyOnce(), ExpectCleanedReturningHost(host=victim), ExpectSingleWriter(),
        *data_kept(topology), ExpectFencingOrder())
    drill = make_drill(topology, name, f"{victim} dies, its instances are recovered elsewhere, "
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
    schedule = (Step(at=30, recover=RecoverSpec(mode=Mode.MAINTENANCE, host=victim.name)),)
    expect: tuple[Expectation, ...] = (
        ExpectExactlyOnce(), *data_kept(topology), ExpectRecovered())
    drill = make_drill(topology, name, f"{victim.name} is drained, rebooted and its guests "
                       "resumed; every instance back, nothing lost", 500, schedule, expect)
    return GateDrill(drill, TITLES[name], victim.name, victim.why)
