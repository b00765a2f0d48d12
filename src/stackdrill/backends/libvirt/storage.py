"""The recovery engine's storage driver in real guests: drbdadm and lvm through the agent.

Same contract as the simulator's driver: a volume is made usable on a host that holds an
UpToDate replica by promoting it (`drbdadm primary`) and activating the LV exclusively
(`lvchange -aey`, after `vgchange --lock-start` when the VG is shared). DRBD itself refuses a
promotion while the peer is still Primary (single-primary resources), which is exactly the
protection the engine must not work around. A host without a replica gets the volume over
iSCSI (iscsi.py) from the replica that serves it: the Primary, else a promoted UpToDate
one, as the simulator's driver chooses.
"""

from __future__ import annotations

import threading
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
from stackdrill.backends.libvirt import drbd, iscsi
from stackdrill.topology import Locking

if TYPE_CHECKING:
    from stackdrill.backends.libvirt.lab import LibvirtLab


class StorageError(DriverError):
    """A storage step failed; the message is what the guest's tools said."""


class LibvirtStorageDriver(StorageDriver):
    def __init__(self, lab: LibvirtLab) -> None:
        self.lab = lab
        self._promotions: dict[tuple[str, str], threading.Lock] = {}

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
        return self.lab.submit(self.prepare_now, volume, host, set(failed))

    def prepare_now(self, volume: str, host: str, failed: set[str] | None = None) -> VolumePath:
        """`prepare`, in the calling thread (a boot sequence already runs in the lab's pool)."""
        failed = failed or set()
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
            if not candidates:
                raise StorageError(f"no reachable UpToDate replica of {volume} on {host}")
            server = next((r for r in candidates if r.role == "Primary"), candidates[0])
            self._activate(volume, server)
            return self._attach_remote(volume, host, server.host)
        self._activate(volume, next(r for r in replicas if r.host == host))
        return VolumePath(volume, host, AttachMode.LOCAL, host, f"/dev/{vg.name}/{volume}")

    def _activate(self, volume: str, replica: Replica) -> None:
        """The volume's LV active (exclusively) on the replica's host, promoted first."""
        topo = self.lab.topology
        vg = topo.volume_group(topo.volume(volume).vg)
        host = replica.host
        if vg.pv.drbd is not None and replica.role != "Primary":
            self._promote(topo.drbd_resource(vg.pv.drbd).name, host)
        if vg.locking in (Locking.LVMLOCKD, Locking.CLUSTERED):
            self._check(host, f"vgchange --lock-start {vg.name}")
        self._check(host, f"lvchange -aey {vg.name}/{volume}")
        self.lab.log("storage-activate", volume=volume, host=host)

    def _promote(self, resource: str, host: str) -> None:
        """`drbdadm primary`, once per resource and host at a time: the volumes of one
        resource are prepared in parallel after a failover, and a second drbdadm on the
        same minor fails at once ("lock on /var/lock/drbd-147-0 currently held", exit
        20) where the first promotes for both. Under the lock the role is read again."""
        with self._promotions.setdefault((resource, host), threading.Lock()):
            now = drbd.status(self.lab, self.lab.topology.drbd_resource(resource)).get(host)
            if now is not None and now.role == "Primary":
                return
            self._check(host, f"drbdadm primary {resource}")
            self.lab.log("storage-promote", resource=resource, host=host)

    def _attach_remote(self, volume: str, host: str, server: str) -> VolumePath:
        """Export the volume from `server` and log `host` in to it over their storage
        network: the device path on `host`."""
        topo = self.lab.topology
        vg = topo.volume(volume).vg
        try:
            address = topo.storage_network(host, server).addresses[server]
        except KeyError as exc:
            raise StorageError(f"{volume}: {exc.args[0]}") from None
        self._check(server, iscsi.export_script(vg, volume, address))
        self.lab.log("iscsi-export", volume=volume, server=server, portal=address)
        login = iscsi.login_script(host, volume, address, topo.iscsi)
        result = self.lab.run(host, login, timeout=120)
        said = result.stdout.split()
        if result.rc != 0 or not said or not said[-1].startswith("/dev/"):
            raise StorageError(f"{host}: iscsiadm login to {server} for {volume}: "
                               f"{result.stderr.strip() or result.stdout.strip()}")
        device = said[-1]
        self.lab.log("iscsi-login", volume=volume, host=host, server=server, device=device)
        return VolumePath(volume, host, AttachMode.REMOTE, server, device)

    def release(self, volume: str, host: str) -> Future[None]:
        return self.lab.submit(self._release, volume, host)

    def _release(self, volume: str, host: str) -> None:
        topo = self.lab.topology
        if host not in topo.replica_hosts(volume):  # an initiator: end its session
            self._check(host, iscsi.logout_script(volume))
            self.lab.log("iscsi-logout", volume=volume, host=host)
            return
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
