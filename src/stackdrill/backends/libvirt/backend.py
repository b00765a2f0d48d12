"""The `libvirt` backend: real guests (KVM where usable, qemu TCG otherwise) through libvirt.

A topology host may name its hypervisor (`libvirt_uri`); hosts without one use the backend's
default URI (STACKDRILL_LIBVIRT_URI, else qemu:///system). `test:///default` runs the same
logic in-process against libvirt's test driver, which is how the unit tests exercise it.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from stackdrill.api import Backend, Capabilities, LabOptions
from stackdrill.backends import lifetime
from stackdrill.backends.libvirt.faults import FAULT_KINDS
from stackdrill.backends.libvirt.naming import LabNames
from stackdrill.errors import BackendUnavailableError
from stackdrill.topology import Topology

if TYPE_CHECKING:
    from stackdrill.backends.libvirt.lab import LibvirtLab

log = logging.getLogger(__name__)
DEFAULT_URI = "qemu:///system"
LAB_ROOT = Path("/var/lib/stackdrill/labs")


def _silence_libvirt() -> None:
    """libvirt prints every error to stderr by default; we raise them as exceptions instead."""
    import libvirt

    def handler(_ctx: object, err: object) -> None:
        log.debug("libvirt: %s", err)

    libvirt.registerErrorHandler(handler, None)


class LibvirtBackend(Backend):
    name = "libvirt"
    capabilities = Capabilities(
        faults=FAULT_KINDS,
        features=frozenset({"drbd", "lvm", "clustered-lvm", "cluster", "instances", "overlay",
                            "throughput-under-loss", "network-volumes",
                            "cluster-power-fencing", "iscsi-timeouts"}),
        needs="root, libvirt + qemu-system-x86 (KVM or TCG), guest image (lab/images/build.py)",
    )

    def __init__(
        self,
        default_uri: str | None = None,
        *,
        image_dir: Path | None = None,
        lab_root: Path | None = None,
        wait_ready: bool = True,
        disk_cap_mb: int = 256,
        provision: bool = True,
    ) -> None:
        self.default_uri = default_uri or os.environ.get("STACKDRILL_LIBVIRT_URI", DEFAULT_URI)
        self.image_dir = image_dir
        self.lab_root = lab_root or LAB_ROOT
        self.wait_ready = wait_ready
        self.disk_cap_mb = disk_cap_mb
        self.provision = provision

    @classmethod
    def available(cls) -> str | None:
        try:
            import libvirt  # noqa: F401
        except ImportError:
            return "libvirt-python is not installed (pip install libvirt-python)"
        if shutil.which("qemu-system-x86_64") is None:
            return "qemu-system-x86_64 not found (install scripts/system-packages-vm.txt)"
        if shutil.which("libvirtd") is None and not Path("/run/libvirt/libvirt-sock").exists():
            return "no libvirt daemon (install scripts/system-packages-vm.txt)"
        if os.geteuid() != 0:
            return "the libvirt backend needs root (qemu:///system, bridges)"
        from stackdrill.backends.libvirt.image import find_image

        try:
            find_image()
        except BackendUnavailableError as exc:
            return str(exc)
        return None

    @classmethod
    def teardown(cls, lab_name: str, uris: tuple[str, ...] = ()) -> list[str]:
        """Remove a lab by name from another process (`stackdrill down`): what was removed.
        Finds the lab's objects in libvirt by name and mark, on every URI it used (see
        records.py), and its VXLAN ports and fault tables on those hypervisors' hosts;
        touches nothing else."""
        from stackdrill.backends.libvirt import records, underlay

        _silence_libvirt()
        targets = uris or cls._known_uris(lab_name)
        removed, problems = underlay.disconnect(lab_name, targets)
        for uri in targets:
            done, failed = cls._teardown_on(uri, lab_name)
            removed += done
            problems += failed
        if problems:
            raise BackendUnavailableError("teardown incomplete: " + "; ".join(problems))
        if not uris:
            records.forget(lab_name)
        return removed

    @classmethod
    def _teardown_on(cls, uri: str, lab_name: str) -> tuple[list[str], list[str]]:
        import libvirt

        from stackdrill.backends.libvirt.teardown import teardown_lab
        from stackdrill.backends.libvirt.underlay import daemon_runs

        if not daemon_runs(uri):
            return [], []  # that daemon was stopped: its domains, bridges and pools with it
        try:
            conn = libvirt.open(uri)
        except libvirt.libvirtError as exc:
            return [], [f"{uri}: cannot open: {exc}"]
        try:
            report = teardown_lab(conn, lab_name)
        finally:
            conn.close()
        return ([f"{uri}: {r}" for r in report.removed],
                [f"{uri}: {p}" for p in report.problems])

    @classmethod
    def _known_uris(cls, lab_name: str | None = None) -> tuple[str, ...]:
        """Where a lab may have left something: the default URI, the URIs recorded for it
        (or for every lab), and every second local daemon that runs."""
        from stackdrill.backends.libvirt import records

        labs = [lab_name] if lab_name is not None else records.recorded_labs()
        recorded = [u for lab in labs for u in records.read(lab)[0]]
        return tuple(dict.fromkeys([cls().default_uri, *recorded, *records.local_daemons()]))

    @classmethod
    def cleanup_all(cls) -> list[str]:
        """`stackdrill down --all`: every lab whose domains carry stackdrill's mark on any
        URI a lab used (or whose record says it used some) and whose owner process is gone
        (left by a killed run); never a lab another process still runs, never one kept by
        `run --keep`, nothing unmarked."""
        owners = cls._lab_owners()
        return [line for lab, found in sorted(owners.items())
                if all(lifetime.owner_gone(o) or not o for o in found)
                for line in cls.teardown(lab)]

    @classmethod
    def kept_labs(cls) -> list[str]:
        return sorted(lab for lab, found in cls._lab_owners().items() if lifetime.KEPT in found)

    @classmethod
    def describe_kept(cls, lab_name: str) -> str | None:
        """Its domains, and how to reach them (`virsh console`, the guest agent)."""
        if lab_name not in cls.kept_labs():
            return None
        uri = cls().default_uri
        domains = LabNames(lab_name).prefix + "*"
        return (f"kept libvirt lab {lab_name!r} on {uri}: domains {domains} keep running "
                f"(`virsh -c {uri} list`, `virsh -c {uri} console DOMAIN`); the heartbeat "
                "monitor and the workloads' readers stopped with the run (frozen)")

    @classmethod
    def _lab_owners(cls) -> dict[str, set[str]]:
        """Lab name -> the owners marked on its domains on every known URI, and the owner
        in its URI record."""
        try:
            import libvirt
        except ImportError:
            return {}
        from stackdrill.backends.libvirt import records
        from stackdrill.backends.libvirt.teardown import domain_mark, domain_owner

        _silence_libvirt()
        owners: dict[str, set[str]] = {lab: {records.read(lab)[1]}
                                       for lab in records.recorded_labs()}
        for uri in cls._known_uris():
            try:
                conn = libvirt.open(uri)
            except libvirt.libvirtError:
                continue  # no daemon: nothing of ours can be running there
            try:
                for dom in conn.listAllDomains():
                    mark = domain_mark(dom)
                    if mark is not None:
                        owners.setdefault(mark[0], set()).add(domain_owner(dom))
            finally:
                conn.close()
        return owners

    def create(self, topology: Topology, *, lab_name: str, seed: int,
               options: LabOptions | None = None) -> LibvirtLab:
        """Define and start the lab's guests; `seed` and `options` matter once workloads run."""
        import libvirt

        from stackdrill.backends.libvirt.daemon import domain_type, ensure_libvirtd
        from stackdrill.backends.libvirt.hvaccess import check_hv_dir
        from stackdrill.backends.libvirt.image import GuestImage, find_image
        from stackdrill.backends.libvirt.lab import LabSettings, LibvirtLab
        from stackdrill.topology.libvirt_uri import local_hypervisor

        _silence_libvirt()
        uris = sorted({h.libvirt_uri or self.default_uri for h in topology.hosts})
        real = [u for u in uris if not u.startswith("test:")]
        if any(local_hypervisor(u) for u in uris):
            check_hv_dir()  # before connecting to a socket a topology named
        _refuse_remote_fencing(topology, self.default_uri)
        if any(u.startswith("qemu:///system") for u in real):
            ensure_libvirtd()
        conns: dict[str, libvirt.virConnect] = {}
        try:
            for uri in uris:
                conns[uri] = libvirt.open(uri)
        except libvirt.libvirtError as exc:
            for conn in conns.values():
                conn.close()
            raise BackendUnavailableError(f"cannot open libvirt {uri}: {exc}") from exc
        image = find_image(self.image_dir) if real else GuestImage.placeholder()
        settings = LabSettings(domain_type=domain_type() if real else "qemu",
                               wait_ready=self.wait_ready, disk_cap_mb=self.disk_cap_mb,
                               provision=self.provision)
        lab = LibvirtLab(topology, name=lab_name, conns=conns, default_uri=self.default_uri,
                         image=image, workdir=self.lab_root / lab_name, settings=settings,
                         options=options)
        log.info("lab %s: %d hosts on %s (seed %d unused: real VMs)", lab_name,
                 len(topology.hosts), ", ".join(uris), seed)
        return lab.up()


def _refuse_remote_fencing(topology: Topology, default_uri: str) -> None:
    """A power-fenced cluster's guests reach the lab's fence device through a socket on
    their hypervisor (fencing.py): on a remote one, this machine cannot connect to it."""
    from stackdrill.backends.libvirt.fencing import fenced_hosts
    from stackdrill.backends.libvirt.hvaccess import local_path
    from stackdrill.errors import UnsupportedError

    for host in fenced_hosts(topology):
        uri = topology.host(host).libvirt_uri or default_uri
        if local_path(uri, "/") is None:
            raise UnsupportedError(
                f"{host} is in a cluster fenced by power and runs on {uri}: its fence "
                "channel is a socket on that hypervisor, which stackdrill cannot reach")
