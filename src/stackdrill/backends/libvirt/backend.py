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
        Finds the lab's objects in libvirt by name and mark; touches nothing else."""
        import libvirt

        from stackdrill.backends.libvirt import netfaults
        from stackdrill.backends.libvirt.teardown import teardown_lab

        _silence_libvirt()
        removed: list[str] = []
        problems: list[str] = []
        for uri in uris or (cls().default_uri,):
            conn = libvirt.open(uri)
            try:
                report = teardown_lab(conn, lab_name)
            finally:
                conn.close()
            removed += [f"{uri}: {r}" for r in report.removed]
            problems += [f"{uri}: {p}" for p in report.problems]
            if not uri.startswith("test:"):
                netfaults.remove_table(lab_name)
        if problems:
            raise BackendUnavailableError("teardown incomplete: " + "; ".join(problems))
        return removed

    @classmethod
    def cleanup_all(cls) -> list[str]:
        """`stackdrill down --all`: every lab whose domains carry stackdrill's mark on the
        default URI and whose owner process is gone (left by a killed run); never a lab
        another process still runs, never one kept by `run --keep`, nothing unmarked."""
        owners = cls._lab_owners()
        return [line for lab, found in sorted(owners.items())
                if all(lifetime.owner_gone(o) or not o for o in found)
                for line in cls.teardown(lab, (cls().default_uri,))]

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
        """Lab name -> the owners marked on its domains on the default URI."""
        try:
            import libvirt
        except ImportError:
            return {}
        from stackdrill.backends.libvirt.teardown import domain_mark, domain_owner

        _silence_libvirt()
        try:
            conn = libvirt.open(cls().default_uri)
        except libvirt.libvirtError:
            return {}  # no daemon: nothing of ours can be running
        owners: dict[str, set[str]] = {}
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
        from stackdrill.backends.libvirt.image import GuestImage, find_image
        from stackdrill.backends.libvirt.lab import LabSettings, LibvirtLab

        _silence_libvirt()
        uris = sorted({h.libvirt_uri or self.default_uri for h in topology.hosts})
        real = [u for u in uris if not u.startswith("test:")]
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

