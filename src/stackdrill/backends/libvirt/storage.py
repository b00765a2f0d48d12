"""The recovery engine's storage driver in real guests: drbdadm and lvm through the agent.

Same contract as the simulator's driver: a volume is made usable on a host that holds an
UpToDate replica by promoting it (`drbdadm primary`) and activating the LV exclusively
(`lvchange -aey`, after `vgchange --lock-start` when the VG is shared). DRBD itself refuses a
promotion while the peer is still Primary (single-primary resources), which is exactly the
protection the engine must not work around. Serving a volume to a host without a replica
(iSCSI/NBD) is not available in these guests yet and is refused with UnsupportedError.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import Future
from typing import TYPE_CHECKING

from stackdrill.api import (
    AttachMode,
    DriverError,
    PowerState,
    Replica,
    StorageDriver,
    TransientDriverError,
    VolumePath,
)
from stackdrill.backends.libvirt import drbd
from stackdrill.errors import UnsupportedError
from stackdrill.topology import Locking

if TYPE_CHECKING:
    from stackdrill.backends.libvirt.lab import LibvirtLab


class StorageError(DriverError):
    """A storage step failed; the message is what the guest's tools said."""


class LibvirtStorageDriver(StorageDriver):
    def __init__(self, lab: LibvirtLab) -> None:
        self.lab = lab

    def replicas(self, volume: str) -> list[Replica]:
        topo = self.lab.topology
        pv = topo.volume_group(topo.volume(volume).vg).pv
        if pv.drbd is None:
            assert pv.host is not None
            up = self.lab.drivers.power.state(pv.host) is PowerState.ON
            return [Replica(pv.host, "(local)", "UpToDate" if up else "DUnknown", up)]
        res = topo.drbd_resource(pv.drbd)
        seen = drbd.status(self.lab, res)
        return [
            Replica(host, seen[host].role, seen[host].disk, True) if host in seen
            else Replica(host, "Unknown", "DUnknown", False)
            for host in res.nodes
        ]

    def prepare(self, volume: str, host: str, failed: Iterable[str] = ()) -> Future[VolumePath]:
        failed = set(failed)
        return self.lab.submit(self._prepare, volume, host, failed)

    def _prepare(self, volume: str, host: str, failed: set[str]) -> VolumePath:
        topo = self.lab.topology
        vg = topo.volume_group(topo.volume(volume).vg)
        replicas = self.replicas(volume)
        candidates = [r for r in replicas if r.reachable and r.host not in failed
                      and r.disk_state in ("UpToDate", "(local)")]
        if not any(r.host == host for r in candidates):
            here = next((r for r in replicas if r.host == host), None)
            if here is not None:  # e.g. just booted: Consistent until it has met its peer
                raise TransientDriverError(f"no reachable UpToDate replica of {volume} on "
                                           f"{host} (its replica is {here.disk_state})")
            if candidates:
                raise UnsupportedError(
                    f"{volume}: {host} holds no replica; remote attach (iSCSI/NBD) is not "
                    f"available on the libvirt backend (replicas on "
                    f"{', '.join(r.host for r in candidates)})")
            raise StorageError(f"no reachable UpToDate replica of {volume} on {host}")
        if vg.pv.drbd is not None:
            res = topo.drbd_resource(vg.pv.drbd)
            role = next(r.role for r in replicas if r.host == host)
            if role != "Primary":
                self._check(host, f"drbdadm primary {res.name}")
                self.lab.log("storage-promote", resource=res.name, host=host)
        if vg.locking in (Locking.LVMLOCKD, Locking.CLUSTERED):
            self._check(host, f"vgchange --lock-start {vg.name}")
        self._check(host, f"lvchange -aey {vg.name}/{volume}")
        self.lab.log("storage-activate", volume=volume, host=host)
        return VolumePath(volume, host, AttachMode.LOCAL, host, f"/dev/{vg.name}/{volume}")

    def release(self, volume: str, host: str) -> Future[None]:
        return self.lab.submit(self._release, volume, host)

    def _release(self, volume: str, host: str) -> None:
        topo = self.lab.topology
        vg = topo.volume_group(topo.volume(volume).vg)
        # nothing mapped, nothing to release: after a reboot the LV is not active and, with
        # the DRBD device Secondary there, `lvchange` cannot even find the VG
        mapped = "-".join(part.replace("-", "--") for part in (vg.name, volume))
        self._check(host, f"if dmsetup info {mapped} >/dev/null 2>&1; then "
                          f"lvchange -an {vg.name}/{volume}; fi")
        self.lab.log("storage-release", volume=volume, host=host)

    def _check(self, host: str, command: str) -> None:
        result = self.lab.run(host, command, timeout=120)
        if result.rc != 0:
            raise StorageError(f"{host}: {command}: {result.stderr.strip() or result.stdout}")
