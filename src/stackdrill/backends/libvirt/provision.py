"""Bring the topology's storage and cluster stack up inside freshly booted guests.

Order matters and mirrors what an operator does: DRBD resources (and their initial sync),
then the cluster stack where a VG needs cluster locking, then volume groups on the DRBD
devices (or local disks), then one LV per topology volume. Sizes shrink to the capped lab
disks: each volume gets an equal share of its VG.
"""

from __future__ import annotations

import time
from functools import partial
from typing import TYPE_CHECKING

from stackdrill.backends.libvirt import cluster, drbd
from stackdrill.backends.libvirt.lvm import scaled_extents
from stackdrill.topology import Locking, VolumeGroup
from stackdrill.waiting import wait_until

if TYPE_CHECKING:
    from stackdrill.backends.libvirt.lab import LibvirtLab

CLUSTERED = (Locking.CLUSTERED, Locking.LVMLOCKD)


def drbd_in_sync(lab: LibvirtLab, name: str) -> bool:
    res = lab.topology.drbd_resource(name)
    st = drbd.status(lab, res)
    return len(st) == len(res.nodes) and all(
        s.connection == "Connected" and s.disk == "UpToDate" and s.peer_disk == "UpToDate"
        for s in st.values())


def quorate(lab: LibvirtLab, host: str) -> bool:
    return cluster.quorum(lab, host).quorate


def pv_and_nodes(lab: LibvirtLab, vg: VolumeGroup) -> tuple[str, tuple[str, ...]]:
    """The PV device in the guests and the hosts that may open it (DRBD primaries)."""
    if vg.pv.drbd is not None:
        res = lab.topology.drbd_resource(vg.pv.drbd)
        return f"/dev/drbd{res.minor}", res.primary or res.nodes[:1]
    assert vg.pv.host is not None and vg.pv.disk is not None
    return "/dev/" + lab.nodes[vg.pv.host].disks[vg.pv.disk].target, (vg.pv.host,)


def local_filter(lab: LibvirtLab, host: str) -> None:
    """Accept the host's local PV disks too (the image's filter accepts only /dev/drbd*)."""
    local = [lab.nodes[host].disks[vg.pv.disk].target for vg in lab.topology.volume_groups
             if vg.pv.host == host and vg.pv.disk is not None]
    if local:
        accept = ", ".join(f'"a|^/dev/{t}$|"' for t in local)
        lab.run(host, "sed -i 's#global_filter = \\[#global_filter = [ " + accept.replace(
            "|", "\\|") + ",#' /etc/lvm/lvm.conf").check()


def activated_elsewhere(vg: VolumeGroup, nodes: tuple[str, ...]) -> tuple[str, ...]:
    """The hosts besides the creating one where a VG under local locking is activated:
    every other host that may open its PV (each Primary of a dual-primary resource), as
    each such node's boot activates the VGs it sees (lvm2's autoactivation,
    `vgchange -aay`) and as the simulator builds the lab (SimLab._initial_active_hosts).
    `lvcreate` activates only where it runs. Shared VGs are activated where used."""
    return () if vg.locking in CLUSTERED else nodes[1:]


def volume_sizes(lab: LibvirtLab, vg: VolumeGroup, host: str) -> list[tuple[str, str]]:
    """(volume, `lvcreate -l` size) for the VG's volumes: the topology's share of its VG,
    in the guest's smaller VG (as drill commands are scaled), so the extents a drill
    allocates later are free on the guest as in the topology; an equal share of the VG
    each when the topology does not say how big the VG is."""
    volumes = [v for v in lab.topology.volumes if v.vg == vg.name]
    if not lab.topology.vg_size_gb(vg.name):
        share = max(1, 100 // (len(volumes) + 1))
        return [(v.name, f"{share}%VG") for v in volumes]
    return [(v.name, str(scaled_extents(lab, host, vg.name, (v.size_gb << 10) // vg.extent_mb)))
            for v in volumes]


def provision(lab: LibvirtLab, sync_timeout: float = 300.0) -> dict[str, float]:
    """Provision everything; returns the seconds each stage took (for bench results)."""
    took: dict[str, float] = {}
    start = time.monotonic()
    for res in lab.topology.drbd:
        drbd.provision(lab, res)
    for res in lab.topology.drbd:
        wait_until(partial(drbd_in_sync, lab, res.name), timeout=sync_timeout, interval=0.5,
                   what=f"DRBD {res.name} initial sync")
        drbd.promote_other_primaries(lab, res)
    took["drbd_s"] = time.monotonic() - start
    if cluster.stack_needed(lab.topology):
        start = time.monotonic()
        for spec in lab.topology.clusters:
            cluster.start_stack(lab, spec)
        for spec in lab.topology.clusters:
            for host in spec.nodes:
                wait_until(partial(quorate, lab, host), timeout=60, interval=0.5,
                           what=f"quorum on {host}")
            cluster.wait_usable(lab, spec)
        took["cluster_s"] = time.monotonic() - start
    start = time.monotonic()
    for host in lab.nodes:
        local_filter(lab, host)
    for vg in lab.topology.volume_groups:
        pv, nodes = pv_and_nodes(lab, vg)
        if vg.locking in CLUSTERED:
            cluster.create_shared_vg(lab, vg, pv, nodes)
        else:
            lab.run(nodes[0], f"pvcreate -ff -y {pv} && vgcreate -s {vg.extent_mb}M {vg.name} {pv}",
                    timeout=120).check()
        inactive = "-an -Zn " if vg.locking in CLUSTERED else ""  # activated where used
        sizes = volume_sizes(lab, vg, nodes[0])
        for vol, size in sizes:
            lab.run(nodes[0], f"lvcreate -y {inactive}-l {size} -n {vol} {vg.name}",
                    timeout=120).check()
        for host in activated_elsewhere(vg, nodes):
            lab.run(host, f"vgchange -ay {vg.name}", timeout=120).check()
        lab.log("vg-up", vg=vg.name, pv=pv, volumes=len(sizes))
    took["lvm_s"] = time.monotonic() - start
    for host in lab.nodes:  # see durable()
        durable(lab, host)
    return took


def durable(lab: LibvirtLab, host: str) -> None:
    """Flush what the build wrote to the guest's disk (/etc/drbd.d, lvm.conf, corosync.conf).
    A real node's configuration was written long before a drill cuts its power; the lab's
    was written seconds before, and a power cut then lost it (a returning guest whose
    `drbdadm up` found no r0, seen on a conformance recording)."""
    lab.run(host, "sync", timeout=120).check()
