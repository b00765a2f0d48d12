"""Reading a real lab: power, DRBD, quorum and LVM per guest, and the workloads' history.

Everything is read the way an operator would, through the guest agent (/proc/drbd,
corosync-quorumtool, vgs/lvs/dmsetup) or, for the history, from the serial console files
virtlogd keeps on the hypervisor, which survive the guest's power cuts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stackdrill.api import (
    DrbdNodeStatus,
    Observation,
    PowerState,
    QuorumStatus,
    StoredRecord,
    WriteOp,
)
from stackdrill.backends.libvirt import cluster, drbd, lvm, lvread, workload
from stackdrill.backends.libvirt.agent import GuestCommandError
from stackdrill.errors import StackdrillError

if TYPE_CHECKING:
    from stackdrill.backends.libvirt.lab import LibvirtLab


def quiesce(lab: LibvirtLab, resume: bool = False) -> None:
    """Freeze (or thaw) every workload, so that history and stored records are read at
    one consistent point (Jepsen's final read after the clients stop). A write frozen
    between its block and its `ok` line stays `info`, which the checker allows."""
    for host, node in lab.nodes.items():
        if lab.is_test(node.uri) or lab.drivers.power.state(host).value != "on":
            continue  # a test-driver domain has no guest, so no workload to freeze
        try:
            lab.run(host, workload.signal_command("CONT" if resume else "STOP"))
        except GuestCommandError:
            continue
    lab.log("workloads-resumed" if resume else "workloads-frozen")


def history(lab: LibvirtLab) -> list[WriteOp]:
    """Every write the workloads reported on their serial consoles (files on this host),
    timed by the hypervisor's clock: each running guest's clock is sampled once more
    first (a sample late in the boot bounds any drift of the guest's uptime)."""
    real = [h for h, n in lab.nodes.items() if not lab.is_test(n.uri)]
    for host in real:
        if lab.drivers.power.state(host) is PowerState.ON:
            try:
                lab.clocks.sample(host)
            except GuestCommandError:
                continue
    logs = [lab.console_path(h) for h in real]
    return workload.parse_history(
        workload.console_lines(logs),
        lambda host, boot, uptime: lab.clocks.wall_time(host, boot, uptime) - lab.epoch0)


def stored_records(lab: LibvirtLab, volume: str) -> dict[int, StoredRecord]:
    """The records on the volume, read where it is active on a Primary replica, or else
    from an UpToDate replica's backing disk (lvread: both Secondary after a drill); in
    an unresolved split brain, from the replica its last writer wrote to, as the
    simulator reads it."""
    vg = lab.topology.volume(volume).vg
    device = f"/dev/{vg}/{volume}"
    ops = [op for op in history(lab) if op.volume == volume]
    blocks = max((op.seq for op in ops), default=0) + 2
    replicas = [r for r in lab.drivers.storage.replicas(volume) if r.reachable]
    for replica in replicas:
        if replica.role in ("Primary", "(local)"):
            out = _run(lab, replica.host,
                       f"test -b {device} && {workload.read_command(device, blocks)}")
            if out is not None:
                return workload.parse_records(out)
    last_writer = max(ops, key=lambda op: op.invoked).host if ops else ""
    for replica in sorted(replicas, key=lambda r: r.host != last_writer):
        disk = _backing_disk(lab, volume, replica.host)
        if replica.disk_state == "UpToDate" and disk is not None:
            out = _run(lab, replica.host,
                       lvread.backing_read_script(disk, vg, volume, blocks))
            if out is not None:
                return workload.parse_records(out)
    raise StackdrillError(f"{volume} is active on no reachable Primary and no UpToDate "
                          "replica's backing disk could be read")


def _run(lab: LibvirtLab, host: str, script: str) -> str | None:
    """stdout of a read that worked, None when the guest could not do it."""
    try:
        out = lab.run(host, script, timeout=120)
    except GuestCommandError:
        return None
    return out.stdout if out.rc == 0 else None


def _backing_disk(lab: LibvirtLab, volume: str, host: str) -> str | None:
    """The guest's path of the DRBD backing disk under the volume's VG (None: not DRBD)."""
    pv = lab.topology.volume_group(lab.topology.volume(volume).vg).pv
    if pv.drbd is None:
        return None
    res = lab.topology.drbd_resource(pv.drbd)
    return "/dev/" + lab.nodes[host].disks[res.disk].target


def observe(lab: LibvirtLab) -> Observation:
    """Power from libvirt; DRBD, quorum and LVM read in every guest that answers."""
    power = {h: lab.drivers.power.state(h) for h in lab.nodes}
    obs_drbd: dict[str, dict[str, DrbdNodeStatus]] = {}
    quorum: dict[str, dict[str, QuorumStatus]] = {}
    views = []
    running: dict[str, list[str]] = {}
    if not lab.all_test():
        up = [h for h, p in power.items() if p.value == "on"]
        for host in up:
            try:
                listing = lab.run(host, workload.list_command()).stdout
            except GuestCommandError:
                continue
            for line in listing.splitlines():
                name, _, alive = line.partition(" ")
                if alive.strip() == "yes":
                    running.setdefault(name, []).append(host)
        for res in lab.topology.drbd:
            obs_drbd[res.name] = drbd.status(lab, res)
        for spec in lab.topology.clusters:
            quorum[spec.name] = {}
            for host in (h for h in spec.nodes if h in up):
                try:
                    quorum[spec.name][host] = cluster.quorum(lab, host)
                except GuestCommandError:
                    continue
        for host in up:
            try:
                views.extend(lvm.observe(lab, host))
            except GuestCommandError:
                continue
    return Observation(time=lab.clock.now(), running=running, power=power, drbd=obs_drbd,
                       lvm=views, quorum=quorum,
                       bringup_s={**{f"boot {h}": s for h, s in lab.boot_seconds.items()},
                                  **lab.timings})
