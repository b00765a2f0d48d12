"""The `vagrant` backend: `vagrant up` of the repo's Vagrantfile, then the libvirt backend's
provisioning, faults and power on the very same domains.

Why both: Vagrant is how many engineers get their test machines, and its Vagrantfile is what
they read and change; everything stackdrill does to a running lab (destroy, suspend, detach a
disk, link down, commands through the guest agent) is libvirt's business. The Vagrantfile
names domains, networks, MACs and disks exactly as `LabNames` does, so the libvirt lab logic
applies unchanged. The box is made from the libvirt backend's guest image (box.py), so the
machines are the same whichever backend made them, and boot under KVM or qemu TCG alike.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from stackdrill.api import Backend, Capabilities, LabOptions
from stackdrill.backends import lifetime
from stackdrill.backends.libvirt.backend import LibvirtBackend
from stackdrill.backends.vagrant.sshpath import SshPath, ssh_network
from stackdrill.errors import BackendUnavailableError, UnsupportedError
from stackdrill.topology import Topology

if TYPE_CHECKING:
    from stackdrill.backends.libvirt.image import GuestImage
    from stackdrill.backends.libvirt.lab import LabSettings
    from stackdrill.backends.vagrant.lab import VagrantLab

LAB_ROOT = Path("/var/lib/stackdrill/vagrant")



def find_vagrantfile(start: Path | None = None) -> Path:
    """The project's Vagrantfile: STACKDRILL_VAGRANT_DIR, else upwards from the current
    directory, else upwards from this package (a checkout installed in place)."""
    env = os.environ.get("STACKDRILL_VAGRANT_DIR")
    if env:
        return Path(env) / "Vagrantfile"
    for origin in (start or Path.cwd(), Path(__file__)):
        here = origin.resolve()
        for directory in (here, *here.parents):
            if (directory / "Vagrantfile").is_file():
                return directory / "Vagrantfile"
    raise BackendUnavailableError("no Vagrantfile found (set STACKDRILL_VAGRANT_DIR)")


def vagrant_env(lab_root: Path) -> dict[str, str]:
    """The environment every `vagrant` command of a lab runs in: boxes in stackdrill's own
    VAGRANT_HOME (never the user's ~/.vagrant.d), the libvirt provider."""
    return {**os.environ, "VAGRANT_HOME": str(lab_root / "home"),
            "VAGRANT_DEFAULT_PROVIDER": "libvirt"}


def lab_settings(state: Path, topology: Topology, ssh: SshPath, image: GuestImage,
                 box: str, settings: LabSettings) -> dict[str, str]:
    """What the Vagrantfile reads for one lab (each key also works as an environment
    variable with the repository's Vagrantfile): the libvirt lab's sizes and accelerator,
    so the machines are the libvirt backend's guests."""
    from stackdrill.backends.libvirt.fencing import fenced_hosts

    return {
        "STACKDRILL_TOPOLOGY": str(state / "topology.yaml"),
        "STACKDRILL_LAB": ssh.lab,
        "STACKDRILL_VAGRANT_BOX": box,
        "STACKDRILL_VAGRANT_KEY": str(state / "id_ed25519"),
        "STACKDRILL_VAGRANT_PROXY": ssh.proxy_command(),
        "STACKDRILL_VAGRANT_SSH_NETWORK": ssh_network(topology).name,
        "STACKDRILL_VAGRANT_CONSOLE_DIR": str(state / "pool"),
        "STACKDRILL_VAGRANT_FENCED": ",".join(fenced_hosts(topology)),
        "STACKDRILL_VM_CMDLINE": image.cmdline,
        "STACKDRILL_VM_DRIVER": settings.domain_type,
        "STACKDRILL_VM_RAM_MB": str(settings.memory_cap_mb),
        "STACKDRILL_VM_CPUS": str(settings.vcpus_cap),
        "STACKDRILL_VM_DISK_MB": str(settings.disk_cap_mb),
    }


class VagrantBackend(Backend):
    name = "vagrant"
    # The machines are the libvirt lab's domains under its names (networks, bridges, taps,
    # MACs, disks, the fence channel), driven by the same code: the same declarations.
    capabilities = Capabilities(
        faults=LibvirtBackend.capabilities.faults,
        features=LibvirtBackend.capabilities.features,
        needs="root, vagrant + vagrant-libvirt, python-vagrant, libvirt + qemu (KVM or TCG), "
              "netcat-openbsd, guest image (lab/images/build.py)",
    )

    def __init__(self, uri: str = "qemu:///system", lab_root: Path | None = None) -> None:
        self.uri = uri
        self.lab_root = lab_root or LAB_ROOT

    @classmethod
    def available(cls) -> str | None:
        for binary, package in (("vagrant", "vagrant vagrant-libvirt"),
                                ("nc", "netcat-openbsd")):
            if shutil.which(binary) is None:
                return f"{binary} is not installed (apt-get install {package})"
        try:
            import vagrant  # noqa: F401
        except ImportError:
            return "python-vagrant is not installed (pip install python-vagrant)"

        return LibvirtBackend.available()

    def create(self, topology: Topology, *, lab_name: str, seed: int,
               options: LabOptions | None = None) -> VagrantLab:
        import libvirt

        from stackdrill.backends.libvirt.backend import _silence_libvirt
        from stackdrill.backends.libvirt.daemon import domain_type, ensure_libvirtd
        from stackdrill.backends.libvirt.image import find_image
        from stackdrill.backends.libvirt.lab import LabSettings
        from stackdrill.backends.vagrant.box import ensure_box
        from stackdrill.backends.vagrant.lab import VagrantLab, VagrantRun

        if any(h.libvirt_uri for h in topology.hosts):
            raise UnsupportedError("the vagrant backend runs every machine on one libvirt "
                                   "daemon; hosts[].libvirt_uri is for the libvirt backend")
        ssh = SshPath.for_lab(lab_name, topology)
        _silence_libvirt()
        ensure_libvirtd()
        image = find_image()
        env = vagrant_env(self.lab_root)
        settings = LabSettings(domain_type=domain_type())
        state = self.lab_root / lab_name
        box = ensure_box(image, self.lab_root / "home", env)
        run = VagrantRun(state=state, env=env, vagrantfile=find_vagrantfile(),
                         settings=lab_settings(state, topology, ssh, image, box, settings))
        lab = VagrantLab(topology, name=lab_name, conns={self.uri: libvirt.open(self.uri)},
                         default_uri=self.uri, image=image, workdir=state / "pool",
                         settings=settings, options=options, vagrant=run, ssh=ssh)
        return lab.up()

    @classmethod
    def state_dir(cls, lab_name: str) -> Path:
        """The lab's Vagrant project; a name that would lead elsewhere is refused."""
        state = LAB_ROOT / lab_name
        if state.parent != LAB_ROOT or lab_name in {"home", "", ".", ".."}:
            raise UnsupportedError(f"not a vagrant lab name: {lab_name[:40]!r}")
        return state

    @classmethod
    def teardown(cls, lab_name: str) -> list[str]:
        """`down --lab NAME`: `vagrant destroy` in the lab's project, then the libvirt
        teardown of what is left (found by name and mark), its SSH namespace and its
        state directory."""
        from stackdrill.backends.vagrant.lab import VagrantRun
        from stackdrill.backends.vagrant.sshpath import remove_ssh_path

        state = cls.state_dir(lab_name)
        removed: list[str] = []
        if (state / ".vagrant").is_dir():
            problem = VagrantRun(state=state, env=vagrant_env(LAB_ROOT)).destroy()
            removed.append(problem or f"vagrant machines of {lab_name}")
        removed += LibvirtBackend.teardown(lab_name)
        if remove_ssh_path(lab_name):
            removed.append(f"namespace {SshPath.namespace_of(lab_name)}")
        if state.is_dir():
            shutil.rmtree(state)
            removed.append(f"state {state}")
        return removed

    @classmethod
    def labs(cls) -> dict[str, str]:
        """Every vagrant lab's state directory on this machine: name -> owner."""
        from stackdrill.backends.vagrant.lab import state_owner

        if not LAB_ROOT.is_dir():
            return {}
        return {p.name: state_owner(p) for p in sorted(LAB_ROOT.iterdir())
                if p.is_dir() and p.name != "home"}

    @classmethod
    def cleanup_all(cls) -> list[str]:
        """`down --all`: every vagrant lab whose owner process is gone (written in its state
        directory before anything else is made, so a lab still in `vagrant up` is left
        alone); never a kept lab."""
        return [line for lab, owner in cls.labs().items()
                if owner != lifetime.KEPT and (not owner or lifetime.owner_gone(owner))
                for line in cls.teardown(lab)]

    @classmethod
    def kept_labs(cls) -> list[str]:
        return [lab for lab, owner in cls.labs().items() if owner == lifetime.KEPT]

    @classmethod
    def describe_kept(cls, lab_name: str) -> str | None:
        """How to reach a kept lab's machines: `vagrant ssh` in its project directory."""
        if lab_name not in cls.kept_labs():
            return None
        state = LAB_ROOT / lab_name
        return (f"kept vagrant lab {lab_name!r}: `cd {state} && VAGRANT_HOME={LAB_ROOT / 'home'} "
                "vagrant ssh HOST` (or `vagrant status`); the heartbeat monitor and the "
                "workloads' readers stopped with the run (frozen)")
