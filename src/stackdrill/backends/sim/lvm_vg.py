"""The volume group as a whole: spec, PV geometry, the hosts that see the PV, its lock space.

One VG lives on one PV. On dual-primary DRBD each host has its own device
object for the PV whose writes replicate to the other; on a local disk one host
sees it. What each host believes about the VG lives in its LvmHost (dm tables,
LV locks); what is true on disk is only in the PV blocks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from stackdrill.api import LvmView
from stackdrill.backends.sim.cluster import ClusterSim
from stackdrill.backends.sim.cluster_dlm import LockTable
from stackdrill.backends.sim.disks import BlockDevice, SimDisk
from stackdrill.backends.sim.kernel import Kernel
from stackdrill.backends.sim.lvm_meta import (
    HEADER_BLOCK,
    MdaHeader,
    VgMetadata,
    extent_blocks_for,
    pe_block,
    peek_metadata,
    slot_for,
)
from stackdrill.topology.model import Locking, VolumeGroup

if TYPE_CHECKING:
    from stackdrill.backends.sim.lvm import LvmHost


class VolumeGroupSim:
    def __init__(self, kernel: Kernel, spec: VolumeGroup, pv_devices: dict[str, BlockDevice],
                 pv_extents: int, cluster: ClusterSim | None,
                 lvm_hosts: Mapping[str, LvmHost]) -> None:
        self.kernel = kernel
        self.spec = spec
        self.name = spec.name
        self.locking = spec.locking
        self.pv_devices = dict(pv_devices)
        self.pv_extents = pv_extents
        self.extent_blocks = extent_blocks_for(spec.extent_mb)
        self.cluster = cluster
        self.lvm: dict[str, LvmHost] = {h: lvm_hosts[h] for h in sorted(pv_devices)
                                         if h in lvm_hosts}
        self.sanlock: LockTable | None = None
        if self.locking is Locking.LVMLOCKD and spec.lock_manager == "sanlock":
            self.sanlock = LockTable(kernel, f"sanlock/{self.name}",
                                     lambda h: h in self.lvm and self.lvm[h].host.up,
                                     lambda _h: None)
        for host in self.lvm.values():
            host.attach(self)

    def hosts(self) -> tuple[str, ...]:
        """Hosts that see the PV (and run lvm on it)."""
        return tuple(self.lvm)

    def lock_table(self) -> LockTable | None:
        """Where this VG's cluster-wide locks live (None: no cluster-wide locking)."""
        if self.sanlock is not None:
            return self.sanlock
        if self.locking in (Locking.CLUSTERED, Locking.LVMLOCKD) and self.cluster is not None:
            return self.cluster.dlm
        return None

    def initialise(self, lvs: dict[str, int],
                   active_on: Iterable[str] | Mapping[str, Iterable[str]] | None = None) -> None:
        """vgcreate + lvcreate at lab build, no time: metadata seqno 1, LVs active.

        `active_on`: hosts where every LV is active, or LV -> hosts; default every
        host that sees the PV. An LV active on several hosts holds a shared LV
        lock (clvmd CR, lvmlockd sh), on one host an exclusive one.
        """
        md = VgMetadata(self.name, 1, self.extent_blocks, self.pv_extents,
                        clustered=self.locking is Locking.CLUSTERED,
                        lock_type=self.spec.lock_manager
                        if self.locking is Locking.LVMLOCKD else None)
        for lv, extents in lvs.items():
            md = md.with_lv(lv, md.allocate(extents))
        self._write_now(md)
        self.kernel.log(f"lvm/{self.name}", "vgcreate", seqno=1, pe_count=self.pv_extents,
                        clustered=md.clustered, lock_type=md.lock_type or "none",
                        lvs=md.as_lists())
        where: dict[str, tuple[str, ...]] = {}
        for lv in md.lvs:
            if active_on is None:
                hosts: Iterable[str] = self.lvm
            elif isinstance(active_on, Mapping):
                hosts = active_on.get(lv, ())
            else:
                hosts = active_on
            where[lv] = tuple(sorted(h for h in set(hosts) if h in self.lvm))
        for host in self.lvm.values():
            host.build_state(self, md, where)

    def _write_now(self, md: VgMetadata) -> None:
        """Lab build writes every replica without time: through `poke` where a device has
        one, into the backing SimDisk (a SimDisk, or a DRBD device's node disk: both replicas
        are UpToDate at build), else — last resort — one ordinary timed write."""
        slot = slot_for(md.seqno)
        header = MdaHeader(md.seqno, slot)
        timed: list[BlockDevice] = []
        for device in self.pv_devices.values():
            poke = getattr(device, "poke", None)
            backing = _backing_disk(device)
            if callable(poke):
                poke(slot, md)
                poke(HEADER_BLOCK, header)
            elif backing is not None:
                backing.blocks[slot] = md
                backing.blocks[HEADER_BLOCK] = header
            else:
                timed.append(device)
        if timed and len(timed) == len(self.pv_devices):
            timed[0].write(slot, md)
            timed[0].write(HEADER_BLOCK, header)

    def views(self) -> list[LvmView]:
        return [host.view(self.name) for host in self.lvm.values()]

    def read_lv_records(self, lv: str, host: str | None = None) -> dict[int, Any]:
        """LV block -> stored value, read (no time) through the on-disk metadata of `host`'s
        PV device (default: the first running host whose PV shows the VG)."""
        candidates = [host] if host is not None else (
            [h for h in self.lvm if self.lvm[h].host.up] + list(self.pv_devices))
        for name in candidates:
            device = self.pv_devices[name]
            md = peek_metadata(device, self.name)
            if md is None or lv not in md.lvs:
                continue
            out: dict[int, Any] = {}
            disks = _backing_disks(self.pv_devices.values())
            lv_block = 0
            for first, count in md.lvs[lv]:
                start = pe_block(first, self.extent_blocks)
                end = start + count * self.extent_blocks
                for addr in _written(disks, start, end):
                    value = device.peek(addr)
                    if value is not None:
                        out[lv_block + addr - start] = value
                lv_block += count * self.extent_blocks
            return out
        return {}


def _backing_disks(devices: Iterable[BlockDevice]) -> list[SimDisk]:
    """The distinct disks under the PV's devices (a diskless DRBD node has none)."""
    disks: dict[int, SimDisk] = {}
    for device in devices:
        disk = _backing_disk(device)
        if disk is not None:
            disks.setdefault(id(disk), disk)
    return list(disks.values())


def _written(disks: list[SimDisk], start: int, end: int) -> list[int]:
    """Addresses in [start, end) written on any of the disks, ascending: a block one replica
    lacks may still be read through the device from the other."""
    if len(disks) == 1:
        return disks[0].blocks.addresses(start, end)
    return sorted({addr for disk in disks for addr in disk.blocks.addresses(start, end)})


def _backing_disk(device: BlockDevice) -> SimDisk | None:
    if isinstance(device, SimDisk):
        return device
    disk = getattr(getattr(device, "node", None), "disk", None)
    return disk if isinstance(disk, SimDisk) else None
