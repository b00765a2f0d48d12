"""Declared limits: refuse a drill a backend cannot realise, before anything starts."""

from __future__ import annotations

from stackdrill.api import Capabilities
from stackdrill.api.commands import ClusterCommand, DiskCommand, DrbdCommand, LvmCommand
from stackdrill.drill.model import Drill
from stackdrill.errors import UnsupportedError
from stackdrill.topology import IscsiInitiator, Topology
from stackdrill.topology.semantic import VXLAN_OVERHEAD


def features_needed(topology: Topology) -> dict[str, str]:
    """feature -> the topology part that needs it. A plain volume group is only where
    volumes live, which any backend with volumes realises; LVM itself is needed by LVM
    commands and checks (see `unsupported`) and by clustered locking."""
    needed: dict[str, str] = {}
    if topology.drbd:
        needed["drbd"] = f"drbd[0] ({topology.drbd[0].name})"
    needed |= _dangerous_settings(topology)
    for i, vg in enumerate(topology.volume_groups):
        if vg.locking.value in ("clustered", "lvmlockd"):
            needed["clustered-lvm"] = f"volume_groups[{i}].locking ({vg.locking.value})"
            break
    for i, vg in enumerate(topology.volume_groups):
        if vg.locking.value == "lvmlockd" and vg.lock_manager == "sanlock":
            needed["sanlock"] = f"volume_groups[{i}].lock_manager (sanlock)"
            break
    if topology.clusters:
        needed["cluster"] = f"clusters[0] ({topology.clusters[0].name})"
    for i, cluster in enumerate(topology.clusters):
        if cluster.fencing.value == "power":
            needed["cluster-power-fencing"] = f"clusters[{i}].fencing (power)"
            break
    if topology.overlays:
        needed["overlay"] = f"overlays[0] ({topology.overlays[0].name})"
    for i, ov in enumerate(topology.overlays):
        off = [name for name, on in (("announce", ov.announce), ("guest_ipv6", ov.guest_ipv6))
               if not on]
        if off:
            needed["overlay-switches"] = f"overlays[{i}].{off[0]} ({ov.name}: false)"
            break
    return needed | _volume_features(topology)


def _dangerous_settings(topology: Topology) -> dict[str, str]:
    """Settings the real software accepts and then acts on in its own way (it refuses a
    second Primary or the net options at bring-up; the kernel sends an overlay frame larger
    than its underlay carries): a backend that realises them must do what the real software
    does, so only those that declare it run them."""
    needed: dict[str, str] = {}
    for i, res in enumerate(topology.drbd):
        if len(res.primary) > 1 and not res.allow_two_primaries:
            needed["drbd-refused-settings"] = f"drbd[{i}].primary ({res.name}: two, " \
                "allow_two_primaries false)"
        elif res.allow_two_primaries and res.protocol.value != "C":
            needed["drbd-refused-settings"] = f"drbd[{i}].protocol ({res.name}: " \
                f"{res.protocol.value} with allow_two_primaries)"
    nets = {n.name: n for n in topology.networks}
    for i, ov in enumerate(topology.overlays):
        net = nets.get(ov.network)
        if net is not None and ov.mtu > net.mtu - VXLAN_OVERHEAD:
            needed["overlay-mtu-over-underlay"] = f"overlays[{i}].mtu ({ov.mtu} over " \
                f"{net.name}'s {net.mtu})"
    return needed


def _volume_features(topology: Topology) -> dict[str, str]:
    """Instances, volumes they reach over the network, and the initiators' timeouts."""
    needed: dict[str, str] = {}
    if topology.instances:
        needed["instances"] = "instances"
    for i, inst in enumerate(topology.instances):
        remote = [v for v in inst.volumes if inst.host not in topology.replica_hosts(v)]
        if remote:
            needed["network-volumes"] = (f"instances[{i}] ({inst.name} on {inst.host}, "
                                         f"{remote[0]} held elsewhere)")
            break
    if topology.iscsi != IscsiInitiator():
        changed = [f"{k}: {v}" for k, v in topology.iscsi.model_dump().items()
                   if v != IscsiInitiator.model_fields[k].default]
        needed["iscsi-timeouts"] = f"iscsi ({', '.join(changed)})"
    return needed


# faults under which TCP's throughput is set by its loss recovery or MSS, not the link rate
LOSSY_FAULTS = ("packet_loss", "underlay_mtu")


def _throughput_under_loss(drill: Drill) -> str | None:
    """Where a drill measures throughput while it also loses or refuses frames: what TCP
    then carries (retransmits, a lowered MSS) is real-backend only."""
    steps = drill.spec.schedule
    lossy = next((i for i, s in enumerate(steps)
                  if s.inject is not None and s.inject.kind in LOSSY_FAULTS), None)
    probe = next((i for i, s in enumerate(steps)
                  if s.run is not None and s.run.tool == "iperf3"), None)
    if lossy is None or probe is None:
        return None
    return f"schedule[{probe}].run (iperf3) with schedule[{lossy}].inject"


_TOOL_FEATURES: dict[type, str] = {LvmCommand: "lvm", DrbdCommand: "drbd", DiskCommand: "drbd",
                                   ClusterCommand: "cluster"}


def _command_feature(command: object) -> str | None:
    """The feature a command needs: its tool's, and a disk swap its own (no real backend
    swaps a disk in a running guest yet; save and restore are `dd` on any DRBD lab)."""
    if isinstance(command, DiskCommand) and command.op == "replace":
        return "disk-swap"
    return _TOOL_FEATURES.get(type(command))


def unsupported(drill: Drill, backend: str, caps: Capabilities) -> list[str]:
    """Everything in the drill the backend declared it cannot do, one line each."""
    problems = []
    lossy = _throughput_under_loss(drill)
    if lossy is not None and "throughput-under-loss" not in caps.features:
        problems.append(f"{lossy}: backend {backend!r} does not model TCP throughput while "
                        "frames are lost or refused")
    for step_index, step in enumerate(drill.spec.schedule):
        if step.inject is not None and not caps.supports_fault(step.inject.kind):
            problems.append(f"schedule[{step_index}].inject: backend {backend!r} cannot "
                            f"realise fault {step.inject.kind!r}")
        command = step.run
        feature = _command_feature(command) if command is not None else None
        if feature is not None and feature not in caps.features:
            problems.append(f"schedule[{step_index}].run: backend {backend!r} has no {feature}")
    for i, expectation in enumerate(drill.spec.expect):
        if expectation.check == "lvm_consistent" and "lvm" not in caps.features:
            problems.append(f"expect[{i}]: backend {backend!r} cannot observe LVM "
                            "(no device-mapper)")
    return problems + topology_unsupported(drill.topology, backend, caps)


def topology_unsupported(topology: Topology, backend: str, caps: Capabilities) -> list[str]:
    """What of the topology itself the backend declared it cannot realise (also checked
    by `stackdrill up`, before a lab that could not do what it says is brought up)."""
    return [f"topology {where}: backend {backend!r} cannot realise {feature}"
            for feature, where in features_needed(topology).items()
            if feature not in caps.features]


def ensure_supported(drill: Drill, backend: str, caps: Capabilities) -> None:
    problems = unsupported(drill, backend, caps)
    if problems:
        raise UnsupportedError(f"{drill.source}: " + f"\n{drill.source}: ".join(problems))
