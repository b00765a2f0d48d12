"""Operator commands from a drill, run for real in the guests: lvm, drbdadm, fence acks,
overlay probes.

Each becomes the command line an operator would type (`lvcreate -l N -n LV VG`,
`drbdadm -- --discard-my-data connect r0`); its exit status and output are the result.
Sizes shrink with the lab's capped disks as provisioning shrinks them: a drill asks for
extents of the topology's VG, and the guest's VG is smaller by the same factor, so the
count is scaled and the result says so. A manual fence acknowledgement is
`dlm_tool fence_ack` on a running member; the cluster stack starts and stops on its node
(cluster.stack_command); lvmlockd lockspaces are `vgchange --lock-start/--lock-stop`.
Disk swaps have no real counterpart here yet; they are recorded as failed commands, never
as passes.
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

from stackdrill.api import CommandResult, PowerState
from stackdrill.api.commands import (
    ClusterCommand,
    Command,
    DrbdCommand,
    LvmCommand,
    ProbeCommand,
    ThroughputCommand,
)
from stackdrill.backends.libvirt import cluster
from stackdrill.backends.libvirt.agent import GuestCommandError
from stackdrill.backends.libvirt.lvm import scaled_extents
from stackdrill.errors import UnsupportedError

if TYPE_CHECKING:
    from stackdrill.backends.libvirt.lab import LibvirtLab

ACTIVATE = {"ex": "-aey", "sh": "-asy", "local": "-ay"}
DRBD_OPS = {
    "primary": "primary", "secondary": "secondary", "connect": "connect",
    "disconnect": "disconnect", "attach": "attach", "detach": "detach",
    "discard-my-data": "-- --discard-my-data connect", "outdate": "outdate",
    "verify": "verify", "invalidate": "invalidate", "invalidate-remote": "invalidate-remote",
    "suspend-io": "suspend-io", "resume-io": "resume-io", "pause-sync": "pause-sync",
    "resume-sync": "resume-sync",
}


def run_command(lab: LibvirtLab, command: Command) -> CommandResult:
    """One operator command, run in its host's guest; an overlay probe's result carries
    what the probe found (see overlay/probes.py). A guest that cannot run it because the
    drill took it away (powered off, hung, still booting) is a failed command; one that
    runs but whose agent is gone raises LabNotReadyError from `lab.run` (no verdict)."""
    if isinstance(command, ProbeCommand | ThroughputCommand):
        try:
            if isinstance(command, ThroughputCommand):
                return lab.overlay.throughput(command.src, command.dst, command.seconds)
            return lab.overlay.probe(command.src, command.dst)
        except GuestCommandError as exc:
            return CommandResult(ok=False, detail=f"GuestCommandError: {exc}")
    try:
        host, line, note = command_line(lab, command)
    except UnsupportedError as exc:
        return CommandResult(ok=False, detail=f"UnsupportedError: {exc}")
    try:
        result = lab.run(host, line, timeout=120)
    except GuestCommandError as exc:
        return CommandResult(ok=False, detail=f"GuestCommandError: {exc}", command=line)
    output = (result.stderr.strip() or result.stdout.strip())[-400:]
    detail = f"{line} on {host}: " + ("ok" if result.rc == 0 else f"exit {result.rc}: {output}")
    return CommandResult(ok=result.rc == 0, detail=detail + note, command=line)


def command_line(lab: LibvirtLab, command: Command) -> tuple[str, str, str]:
    """(host, shell line, note) for a command; UnsupportedError when it has no real form."""
    match command:
        case LvmCommand(host=host, op=op, vg=vg, lv=lv, extents=extents, mode=mode):
            target = shlex.quote(f"{vg}/{lv}" if lv else vg)
            note = ""
            count = 1
            if extents is not None:
                count = scaled_extents(lab, host, vg, extents)
                if count != extents:
                    note = f" ({extents} extents of the topology's VG = {count} of the lab's)"
            lines = {
                "lvcreate": f"lvcreate -y -l {count} -n {shlex.quote(lv or '')} {shlex.quote(vg)}",
                "lvextend": f"lvextend -l +{count} {target}",
                "lvremove": f"lvremove -y {target}",
                "activate": f"lvchange {ACTIVATE[mode]} {target}",
                "deactivate": f"lvchange -an {target}",
                "refresh": f"vgchange --refresh {shlex.quote(vg)}",
                "lock-start": f"vgchange --lock-start {shlex.quote(vg)}",
                "lock-stop": f"vgchange --lock-stop {shlex.quote(vg)}",
            }
            return host, lines[op], note
        case DrbdCommand(host=host, op=op, resource=res, force=force):
            flag = " --force" if force and op in ("primary", "detach", "disconnect") else ""
            return host, f"drbdadm {DRBD_OPS[op]}{flag} {shlex.quote(res)}", ""
        case ClusterCommand(cluster=name, op="start" | "stop" as op, host=str(node)):
            spec = next(c for c in lab.topology.clusters if c.name == name)
            return node, cluster.stack_command(spec, op), ""
        case ClusterCommand(cluster=name, victim=str(victim)):
            spec = next(c for c in lab.topology.clusters if c.name == name)
            survivors = [h for h in spec.nodes if h != victim
                         and lab.drivers.power.state(h) is PowerState.ON]
            if not survivors:
                raise UnsupportedError(f"no running member of cluster {name} to acknowledge on")
            return survivors[0], cluster.fence_ack_command(spec, victim), ""
    raise UnsupportedError(f"the libvirt backend has no real form of {command.tool} "
                           f"{command.op} yet")
