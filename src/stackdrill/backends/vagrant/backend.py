"""The `vagrant` backend: `vagrant up` of the repo's Vagrantfile, then the libvirt backend's
faults and power driver on the very same domains.

Why both: Vagrant is what engineers already use to get KVM guests with a real distribution
(systemd, sshd), while everything stackdrill does to a running lab (destroy, suspend, detach a
disk, link down, commands through the guest agent) is libvirt's business. The Vagrantfile names
domains, networks, MACs and disks exactly as `LabNames` does, so the libvirt lab logic applies
unchanged. Vagrant boxes are full systemd guests: this backend wants KVM (under TCG use the
`libvirt` backend's own image).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from stackdrill.api import Backend, Capabilities, LabOptions
from stackdrill.backends.libvirt.faults import VAGRANT_FAULT_KINDS
from stackdrill.errors import BackendUnavailableError
from stackdrill.topology import Topology

if TYPE_CHECKING:
    from stackdrill.backends.vagrant.lab import VagrantLab

LAB_ROOT = Path("/var/lib/stackdrill/vagrant")


def find_vagrantfile(start: Path | None = None) -> Path:
    """The directory holding the project's Vagrantfile (STACKDRILL_VAGRANT_DIR, or upwards)."""
    env = os.environ.get("STACKDRILL_VAGRANT_DIR")
    if env:
        return Path(env)
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        if (directory / "Vagrantfile").exists():
            return directory
    raise BackendUnavailableError("no Vagrantfile found (set STACKDRILL_VAGRANT_DIR)")


def vagrant_env(topology_file: Path, lab_name: str, workdir: Path) -> dict[str, str]:
    """What the Vagrantfile reads: the topology, the lab name, and a per-lab .vagrant dir."""
    return {
        **os.environ,
        "STACKDRILL_TOPOLOGY": str(topology_file),
        "STACKDRILL_LAB": lab_name,
        "VAGRANT_DOTFILE_PATH": str(workdir / ".vagrant"),
        "VAGRANT_DEFAULT_PROVIDER": "libvirt",
    }


class VagrantBackend(Backend):
    name = "vagrant"
    capabilities = Capabilities(
        faults=VAGRANT_FAULT_KINDS,
        features=frozenset(),
        needs="KVM, vagrant + vagrant-libvirt, python-vagrant, libvirt-python, a Debian box",
    )

    def __init__(self, uri: str = "qemu:///system", lab_root: Path | None = None) -> None:
        self.uri = uri
        self.lab_root = lab_root or LAB_ROOT

    @classmethod
    def available(cls) -> str | None:
        if shutil.which("vagrant") is None:
            return "vagrant is not installed (apt-get install vagrant vagrant-libvirt)"
        try:
            import vagrant  # noqa: F401
        except ImportError:
            return "python-vagrant is not installed (pip install python-vagrant)"
        from stackdrill.backends.libvirt.daemon import kvm_usable

        if not kvm_usable():
            return "no usable KVM: Vagrant boxes are too slow under TCG (use the libvirt backend)"
        return None

    def create(self, topology: Topology, *, lab_name: str, seed: int,
               options: LabOptions | None = None) -> VagrantLab:
        import libvirt
        import vagrant

        from stackdrill.backends.libvirt.daemon import domain_type
        from stackdrill.backends.libvirt.image import GuestImage
        from stackdrill.backends.libvirt.lab import LabSettings
        from stackdrill.backends.vagrant.lab import VagrantLab

        workdir = self.lab_root / lab_name
        workdir.mkdir(parents=True, exist_ok=True)
        topology_file = workdir / "topology.yaml"
        topology_file.write_text(yaml.safe_dump(topology.model_dump(mode="json")))
        env = vagrant_env(topology_file, lab_name, workdir)
        runner = vagrant.Vagrant(str(find_vagrantfile()), env=env,  # type: ignore[no-untyped-call]
                                 quiet_stdout=False)
        conns = {self.uri: libvirt.open(self.uri)}
        settings = LabSettings(domain_type=domain_type(), wait_ready=False)
        lab = VagrantLab(topology, name=lab_name, conns=conns, default_uri=self.uri,
                         image=GuestImage.placeholder(), workdir=workdir, settings=settings)
        lab.vagrant = runner
        try:
            runner.up(provider="libvirt")  # type: ignore[no-untyped-call]
        except BaseException:
            lab.destroy()
            raise
        return lab
