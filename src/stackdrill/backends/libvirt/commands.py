"""Operator commands from a drill, run for real in the guests: lvm, drbdadm, fence acks,
overlay probes.

Each becomes the command line an operator would type (`lvcreate -l N -n LV VG`,
`drbdadm -- --discard-my-data connect r0`); its exit status and output are the result.
Sizes shrink with the lab's capped disks as provisioning shrinks them: a drill asks for
extents of the topology's VG, and the guest's VG is smaller by the same factor, so the
count is scaled and the result says so. A manual fence acknowledgement is
`dlm_tool fence_ack` on a running member; the cluster stack starts and stops on its node
(cluster.stack_command); lvmlockd lockspaces are `vgchange --lock-start/--lock-stop`.
A disk's `save` and `restore` are `dd` of the whole backing disk to a file in the guest and
back, refused while DRBD has the disk attached; a disk swap has no real counterpart here
yet: it is recorded as a failed command, never as a pass.
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

from stackdrill.api import CommandResult, PowerState
from stackdrill.api.commands import (
    ClusterCommand,
    Command,
    DiskCommand,
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
        case DiskCommand(host=host, op="save" | "restore" as op, disk=disk):
            return host, disk_copy_line(lab, host, disk, op), ""
        case ClusterCommand(cluster=name, op="start" | "stop" as op, host=str(node)):
            spec = next(c for c in lab.topology.clusters if c.name == name)
            return node, cluster.stack_command(spec, op, cluster.needs_lvmlockd(lab.topology)), ""
        case ClusterCommand(cluster=name, victim=str(victim)):
            spec = next(c for c in lab.topology.clusters if c.name == name)
            survivors = [h for h in spec.nodes if h != victim
                         and lab.drivers.power.state(h) is PowerState.ON]
            if not survivors:
                raise UnsupportedError(f"no running member of cluster {name} to acknowledge on")
            return survivors[0], cluster.fence_ack_command(spec, victim), ""
    raise UnsupportedError(f"the libvirt backend has no real form of {command.tool} "
                           f"{command.op} yet")


COPIES = "/var/lib/stackdrill/copies"  # in the guest: whole-disk copies (`disk save`)


def disk_copy_line(lab: LibvirtLab, host: str, disk: str, op: str) -> str:
    """`dd` of the whole backing disk to a sparse file in the guest (`save`) or back over
    the disk (`restore`), O_DIRECT as DRBD reads and writes it. Refused, with the
    simulator's words, while a DRBD resource has the disk attached (`drbdadm dstate`
    neither Diskless nor Unconfigured): a copy of a disk in use is fuzzy, and writing one
    back under a running DRBD is corruption."""
    device = f"/dev/{lab.nodes[host].disks[disk].target}"
    copy = shlex.quote(f"{COPIES}/{disk}.img")
    guards = []
    for res in (r.name for r in lab.topology.drbd if r.disk == disk and host in r.nodes):
        refusal = shlex.quote(f"{res}: {host}'s backing disk is attached: detach it first")
        guards.append(f"case $(drbdadm dstate {shlex.quote(res)} 2>/dev/null) in "
                      f"Diskless*|Unconfigured*|'') ;; *) echo {refusal} >&2; exit 1;; esac")
    if op == "save":
        action = (f"mkdir -p {COPIES} && dd if={device} of={copy} bs=1M iflag=direct "
                  "conv=sparse status=none")
    else:
        missing = shlex.quote(f"{host}/{disk}: no copy of this disk was saved")
        action = (f"{{ test -f {copy} || {{ echo {missing} >&2; exit 1; }}; }} && "
                  f"dd if={copy} of={device} bs=1M oflag=direct conv=notrunc,fsync "
                  "status=none")
    return "; ".join([*guards, action])
