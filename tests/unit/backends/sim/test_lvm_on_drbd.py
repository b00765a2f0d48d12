"""LVM on the real simulated dual-primary DRBD resource (the seed's clustered-LVM setup)."""

from __future__ import annotations

from typing import Any

import simpy

from stackdrill.backends.sim.cluster import ClusterSim
from stackdrill.backends.sim.disks import SimDisk
from stackdrill.backends.sim.drbd import DrbdResourceSim
from stackdrill.backends.sim.hosts import SimHost
from stackdrill.backends.sim.kernel import Kernel
from stackdrill.backends.sim.lvm import LvmHost, VolumeGroupSim
from stackdrill.backends.sim.network import Underlay
from stackdrill.topology.model import (
    ClusterFencing,
    ClusterSpec,
    Disk,
    DrbdResource,
    Host,
    Locking,
    Network,
    NetworkPurpose,
    PhysicalVolume,
    Role,
    Topology,
    VolumeGroup,
)

NODES = ("alice", "bob")


def build(locking: Locking) -> tuple[Kernel, dict[str, LvmHost]]:
    kernel = Kernel(5)
    specs = tuple(Host(name=n, roles=(Role.STORAGE,), disks=(Disk(name="sdb", size_gb=2),))
                  for n in NODES)
    net = Network(name="eth1", purposes=(NetworkPurpose.REPLICATION, NetworkPurpose.CLUSTER),
                  cidr="10.60.0.0/30", addresses={"alice": "10.60.0.1", "bob": "10.60.0.2"})
    res = DrbdResource(name="r0", nodes=NODES, disk="sdb", size_gb=1, network="eth1",
                       allow_two_primaries=True, primary=NODES)
    topo = Topology(name="t", hosts=specs, networks=(net,), drbd=(res,))
    hosts = {h.name: SimHost(kernel, h) for h in specs}
    underlay = Underlay(kernel, topo, hosts)
    cluster = ClusterSim(kernel, ClusterSpec(name="pair", nodes=NODES, network="eth1",
                                             two_node=True, expected_votes=1,
                                             fencing=ClusterFencing.MANUAL),
                         hosts, underlay, power_off=None)
    disks = {n: SimDisk(kernel, n, "sdb", 2) for n in NODES}
    drbd = DrbdResourceSim(kernel, res, hosts, disks, underlay, stonith=cluster.stonith)
    lvm = {n: LvmHost(kernel, n, hosts[n]) for n in NODES}
    vg = VolumeGroupSim(kernel, VolumeGroup(name="vg", pv=PhysicalVolume(drbd="r0"),
                                            locking=locking),
                        {n: drbd.device(n) for n in NODES}, 200, cluster, lvm)
    vg.initialise({"lv-vm1": 20})
    return kernel, lvm


def finish(kernel: Kernel, event: simpy.Event) -> Any:
    while not event.triggered and kernel.env.peek() < 100:
        kernel.env.step()
    assert event.triggered and event.ok, getattr(event, "value", None)
    return event.value


def overlapping_lvs(lvm: dict[str, LvmHost]) -> set[tuple[str, str]]:
    """Pairs of (host:LV, host:LV) whose active dm tables or on-disk metadata share extents."""
    maps: dict[str, set[int]] = {}
    for name, host in lvm.items():
        view = host.view("vg")
        for where, lvs in (("dm", view.active_lvs), ("md", view.metadata_lvs)):
            for lv, segs in lvs.items():
                maps[f"{name}:{where}:{lv}"] = {pe for f, n in segs for pe in range(f, f + n)}
    return {(a, b) for a in maps for b in maps
            if a < b and a.rsplit(":", 1)[1] != b.rsplit(":", 1)[1] and maps[a] & maps[b]}


def test_local_locking_on_dual_primary_drbd_corrupts_and_clustered_does_not() -> None:
    """The seed: locking_type 1 on both DRBD primaries corrupts the VG under concurrent
    metadata changes; locking_type 3 (clvmd, cman two_node, manual fencing) serialises them
    and activates new LVs on both nodes."""
    kernel, lvm = build(Locking.LOCAL)
    a, b = lvm["alice"].lvcreate("vg", "data-a", 10), lvm["bob"].lvcreate("vg", "data-b", 10)
    finish(kernel, a)
    finish(kernel, b)
    assert overlapping_lvs(lvm), "two different LVs share extents somewhere"

    kernel, lvm = build(Locking.CLUSTERED)
    a, b = lvm["alice"].lvcreate("vg", "data-a", 10), lvm["bob"].lvcreate("vg", "data-b", 10)
    finish(kernel, a)
    finish(kernel, b)
    assert not overlapping_lvs(lvm)
    va, vb = lvm["alice"].view("vg"), lvm["bob"].view("vg")
    assert va.metadata_seqno == vb.metadata_seqno == 3
    assert va.active_lvs == vb.active_lvs == va.metadata_lvs
