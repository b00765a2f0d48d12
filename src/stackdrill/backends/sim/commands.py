"""Operator commands a drill runs on the simulated lab: lvm (incl. lvmlockd lockspaces),
drbdadm, disk swaps, the cluster stack (start, stop, fence acknowledgement), overlay and
throughput probes.

Each command takes simulated time; its outcome (success, or the error the real tool
would print) is recorded under the step's label for expectations and reports.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import simpy

from stackdrill.api import CommandFinished, CommandIssued, CommandResult, OverlayProbe
from stackdrill.api.commands import (
    ClusterCommand,
    Command,
    DiskCommand,
    DrbdCommand,
    LvmCommand,
    ProbeCommand,
    ThroughputCommand,
)
from stackdrill.backends.sim import disk_copies
from stackdrill.backends.sim.cluster_stack import StackRefused
from stackdrill.backends.sim.drbd import DrbdResourceSim
from stackdrill.backends.sim.drivers import TOOL_REFUSALS
from stackdrill.backends.sim.lvm import LvmHost
from stackdrill.backends.sim.throughput import throughput

if TYPE_CHECKING:
    from stackdrill.backends.sim.lab import SimLab


# an operator command also refuses a name it does not know, or a value out of range
COMMAND_REFUSALS: tuple[type[Exception], ...] = (*TOOL_REFUSALS, StackRefused, KeyError,
                                                ValueError)


def execute(lab: SimLab, command: Command, label: str) -> None:
    env = lab.kernel.env
    lab.kernel.emit(CommandIssued(label))

    def run() -> Generator[simpy.Event, Any, None]:
        started = env.now
        try:
            outcome = yield from _dispatch(lab, command)
        except COMMAND_REFUSALS as exc:  # as the tool says
            outcome = CommandResult(ok=False, detail=f"{type(exc).__name__}: {exc}")
        result = replace(outcome, started=started, finished=env.now)
        lab.results[label] = result
        lab.kernel.emit(CommandFinished(label, result.ok))

    env.process(run())


# lvm: every operation takes the time the host's LVM takes (locks, metadata writes)
_LVM_OPS: dict[str, Callable[[LvmHost, LvmCommand], simpy.Event]] = {
    "lvcreate": lambda lvm, c: lvm.lvcreate(c.vg, c.lv or "", c.extents or 1),
    "lvextend": lambda lvm, c: lvm.lvextend(c.vg, c.lv or "", c.extents or 1),
    "lvremove": lambda lvm, c: lvm.lvremove(c.vg, c.lv or ""),
    "activate": lambda lvm, c: lvm.activate(c.vg, c.lv or "", c.mode),
    "deactivate": lambda lvm, c: lvm.deactivate(c.vg, c.lv or ""),
    "refresh": lambda lvm, c: lvm.refresh(c.vg),
    "lock-start": lambda lvm, c: lvm.lock_start(c.vg),
    "lock-stop": lambda lvm, c: lvm.lock_stop(c.vg),
}

# drbdadm: a role change is an event to wait for; the others take effect at once
_DRBD_OPS: dict[str, Callable[[DrbdResourceSim, DrbdCommand], simpy.Event | None]] = {
    "primary": lambda res, c: res.promote(c.host, force=c.force),
    "secondary": lambda res, c: res.demote(c.host),
    "connect": lambda res, c: res.connect(c.host),
    "discard-my-data": lambda res, c: res.connect(c.host, discard_my_data=True),
    "disconnect": lambda res, c: res.disconnect(c.host, force=c.force),
    "attach": lambda res, c: res.attach(c.host),
    "detach": lambda res, c: res.detach(c.host, force=c.force),
    "outdate": lambda res, c: res.outdate(c.host),
    "verify": lambda res, c: res.verify(c.host),
    "invalidate": lambda res, c: res.invalidate(c.host),
    "invalidate-remote": lambda res, c: res.invalidate_remote(c.host),
    "suspend-io": lambda res, c: res.suspend_io(c.host),
    "resume-io": lambda res, c: res.resume_io_cmd(c.host),
    "pause-sync": lambda res, c: res.pause_sync(c.host),
    "resume-sync": lambda res, c: res.resume_sync(c.host),
}


def _dispatch(lab: SimLab, command: Command) -> Generator[simpy.Event, Any, CommandResult]:
    match command:
        case LvmCommand():
            yield _LVM_OPS[command.op](lab.lvm_hosts[command.host], command)
            return CommandResult(ok=True, detail=f"{command.op} {command.vg}/{command.lv or ''}"
                                                 f" on {command.host}")
        case DrbdCommand():
            done = _DRBD_OPS[command.op](lab.drbd[command.resource], command)
            if done is not None:
                yield done
            return CommandResult(ok=True, detail=f"drbdadm {command.op} {command.resource}"
                                                 f" on {command.host}")
        case DiskCommand(host=host, disk=disk, op="save"):
            disk_copies.save(lab, host, disk)
            return CommandResult(ok=True, detail=f"disk save {host}/{disk}")
        case DiskCommand(host=host, disk=disk, op="restore"):
            disk_copies.restore(lab, host, disk)
            return CommandResult(ok=True, detail=f"disk restore {host}/{disk}")
        case DiskCommand(host=host, disk=disk):
            lab.disks[(host, disk)].replace()
            return CommandResult(ok=True)
        case ClusterCommand():
            return (yield from _cluster(lab, command))
        case ProbeCommand(src=src, dst=dst):
            return (yield from _probe(lab, src, dst))
        case ThroughputCommand():
            return (yield from throughput(lab, command))
    raise ValueError(f"unknown command {command!r}")


def _cluster(lab: SimLab, command: ClusterCommand
             ) -> Generator[simpy.Event, Any, CommandResult]:
    """fence_ack_manual; `systemctl stop dlm corosync` (refused while lvmlockd or clvmd
    hold lockspaces on the node); `systemctl start corosync dlm` (done once joined)."""
    cluster = lab.clusters[command.cluster]
    node = command.node
    if command.op == "fence_ack_manual":
        cluster.ack_manual_fence(node)
        return CommandResult(ok=True)
    if command.op == "stop":
        cluster.stop_stack(node, lab.lvm_hosts[node].lockspaces() if node in lab.lvm_hosts
                           else ())
    else:
        yield cluster.start_stack(node)
    return CommandResult(ok=True, detail=f"cluster stack {command.op} on {node}")


def _probe(lab: SimLab, src: str, dst: str) -> Generator[simpy.Event, Any, CommandResult]:
    """arping, small ping, full-size DF ping, tracepath: what an operator runs by hand."""
    target = lab.topology.instance(dst)
    overlay = lab.overlays[target.overlay or ""]
    ip = target.ip or ""
    full = overlay.spec.mtu - 28  # ICMP payload filling the overlay MTU (IP 20 + ICMP 8)
    mac = yield overlay.arping(src, ip)
    small = yield overlay.ping(src, ip, size=56)
    big = yield overlay.ping(src, ip, size=full, df=True)
    trace = yield overlay.tracepath(src, ip)
    pmtu = trace.pmtu if trace.reached else None
    found = OverlayProbe(src=src, dst=dst, reachable=bool(small.ok), full_size_ok=bool(big.ok),
                         path_mtu=pmtu, arp_mac=mac, expected_mac=target.mac, at=lab.kernel.now,
                         frag_needed_mtu=big.frag_mtu)
    return CommandResult(
        ok=bool(small.ok), probe=found,
        detail=f"ping {small.reason or 'ok'}; {full}-byte DF ping {big.reason or 'ok'}; "
               f"pmtu {pmtu}; arp {mac}")
