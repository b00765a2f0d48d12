"""Reading a real lab: power, DRBD, quorum and LVM per guest, and the workloads' history.

Everything is read the way an operator would, through the guest agent (/proc/drbd,
corosync-quorumtool, vgs/lvs/dmsetup) or, for the history, from the serial console files
virtlogd keeps on the hypervisor, which survive the guest's power cuts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stackdrill.api import DrbdNodeStatus, Observation, QuorumStatus, StoredRecord, WriteOp
from stackdrill.backends.libvirt import cluster, drbd, lvm, workload
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
    """Every write the workloads reported on their serial consoles (files on this host)."""
    logs = [lab.workdir / f"{h}.console" for h, n in lab.nodes.items()
            if not lab.is_test(n.uri)]
    return workload.parse_history(workload.console_lines(logs), lab.epoch0)


def stored_records(lab: LibvirtLab, volume: str) -> dict[int, StoredRecord]:
    """The records on the volume, read where it is active on a Primary replica."""
    vg = lab.topology.volume(volume).vg
    device = f"/dev/{vg}/{volume}"
    last = max((op.seq for op in history(lab) if op.volume == volume), default=0)
    for replica in lab.drivers.storage.replicas(volume):
        if not replica.reachable or replica.role not in ("Primary", "(local)"):
            continue
        try:
            read = workload.read_command(device, last + 2)
            out = lab.run(replica.host, f"test -b {device} && {read}", timeout=120)
        except GuestCommandError:
            continue
        if out.rc == 0:
            return workload.parse_records(out.stdout)
    raise StackdrillError(f"{volume} is not active on any reachable Primary replica")


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
