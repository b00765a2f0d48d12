"""Operator commands a drill runs on the simulated lab: lvm, drbdadm, disk swaps, probes.

Each command takes simulated time; its outcome (success, or the error the real tool
would print) is recorded under the step's label for expectations and reports.
"""

from __future__ import annotations

from collections.abc import Generator
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
)
from stackdrill.backends.sim.disks import BlockIOError
from stackdrill.backends.sim.drbd import DrbdError
from stackdrill.backends.sim.lvm_meta import LvmError

if TYPE_CHECKING:
    from stackdrill.backends.sim.lab import SimLab


def execute(lab: SimLab, command: Command, label: str) -> None:
    env = lab.kernel.env
    lab.kernel.emit(CommandIssued(label))

    def run() -> Generator[simpy.Event, Any, None]:
        started = env.now
        try:
            outcome = yield from _dispatch(lab, command)
        except (DrbdError, LvmError, BlockIOError, KeyError, ValueError) as exc:  # as the tool says
            outcome = CommandResult(ok=False, detail=f"{type(exc).__name__}: {exc}")
        result = replace(outcome, started=started, finished=env.now)
        lab.results[label] = result
        lab.kernel.emit(CommandFinished(label, result.ok))

    env.process(run())


def _dispatch(lab: SimLab, command: Command) -> Generator[simpy.Event, Any, CommandResult]:
    match command:
        case LvmCommand(host=host, op=op, vg=vg, lv=lv, extents=extents, mode=mode):
            lvm = lab.lvm_hosts[host]
            if op == "lvcreate":
                yield lvm.lvcreate(vg, lv or "", extents or 1)
            elif op == "lvextend":
                yield lvm.lvextend(vg, lv or "", extents or 1)
            elif op == "lvremove":
                yield lvm.lvremove(vg, lv or "")
            elif op == "activate":
                yield lvm.activate(vg, lv or "", mode)
            elif op == "deactivate":
                yield lvm.deactivate(vg, lv or "")
            else:
                yield lvm.refresh(vg)
            return CommandResult(ok=True, detail=f"{op} {vg}/{lv or ''} on {host}")
        case DrbdCommand(host=host, op=op, resource=name, force=force):
            res = lab.drbd[name]
            if op == "primary":
                yield res.promote(host, force=force)
            elif op == "secondary":
                yield res.demote(host)
            elif op == "connect":
                res.connect(host)
            elif op == "discard-my-data":
                res.connect(host, discard_my_data=True)
            elif op == "disconnect":
                res.disconnect(host)
            elif op == "attach":
                res.attach(host)
            else:
                res.detach(host)
            return CommandResult(ok=True, detail=f"drbdadm {op} {name} on {host}")
        case DiskCommand(host=host, disk=disk):
            lab.disks[(host, disk)].replace()
            return CommandResult(ok=True)
        case ClusterCommand(cluster=cluster, victim=victim):
            lab.clusters[cluster].ack_manual_fence(victim)
            return CommandResult(ok=True)
        case ProbeCommand(src=src, dst=dst):
            return (yield from _probe(lab, src, dst))
    raise ValueError(f"unknown command {command!r}")


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
                         path_mtu=pmtu, arp_mac=mac, expected_mac=target.mac, at=lab.kernel.now)
    return CommandResult(
        ok=bool(small.ok), probe=found,
        detail=f"ping {small.reason or 'ok'}; {full}-byte DF ping {big.reason or 'ok'}; "
               f"pmtu {pmtu}; arp {mac}")
