"""The Vagrant lab: Vagrant makes and boots the machines; the libvirt lab does the rest.

Bring-up: the lab's isolated networks and its (empty) pool come first, made as the libvirt
backend makes them, then the SSH namespace (sshpath.py), then `vagrant up` of the project's
Vagrantfile, which defines the domains, their disks and NICs under the libvirt backend's
names and boots them. From there on it is the libvirt lab: the same readiness wait,
provisioning (DRBD, LVM, cluster stack), workloads, faults, power and observation.
Teardown is `vagrant destroy`, then the libvirt lab's certain teardown of whatever is left
(the box's copy in the pool, the networks), then the namespace and the state directory.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import yaml

from stackdrill.backends import lifetime
from stackdrill.backends.libvirt import realize
from stackdrill.backends.libvirt.lab import LibvirtLab
from stackdrill.backends.libvirt.naming import set_mark
from stackdrill.backends.vagrant.sshpath import SshPath
from stackdrill.errors import LabNotReadyError
from stackdrill.topology import Topology

SETTINGS = "stackdrill-lab.json"  # read by the Vagrantfile beside it
OWNER = "owner"  # the lab's owner process, or lifetime.KEPT
LOG_TAIL_LINES = 8  # of vagrant.log, in the error of a failed `vagrant up`


def state_owner(state: Path) -> str:
    """The owner written in a lab's state directory; "" when there is none."""
    try:
        return (state / OWNER).read_text().strip()
    except OSError:
        return ""


@dataclass(frozen=True)
class VagrantRun:
    """One lab's Vagrant project: its state directory (the Vagrantfile's copy and settings,
    the topology, the key, `.vagrant`, the log) and the environment `vagrant` runs in."""

    state: Path
    env: dict[str, str]
    vagrantfile: Path | None = None  # the project's, copied into `state` by `prepare`
    settings: dict[str, str] = field(default_factory=dict)  # what the Vagrantfile reads

    def prepare(self, topology: Topology) -> None:
        """The state directory as a Vagrant project of its own: the Vagrantfile, its
        settings, the topology and the lab's SSH key. What an earlier lab of this name left
        here goes: one that still exists was refused before (`_refuse_existing`)."""
        assert self.vagrantfile is not None
        shutil.rmtree(self.state, ignore_errors=True)
        self.state.mkdir(parents=True)
        self.set_owner(lifetime.owner_token())  # first: `down --all` must see it is alive
        shutil.copy2(self.vagrantfile, self.state / "Vagrantfile")
        (self.state / SETTINGS).write_text(json.dumps(self.settings, indent=2) + "\n")
        (self.state / "topology.yaml").write_text(
            yaml.safe_dump(topology.model_dump(mode="json")))
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C",
                        f"stackdrill-{self.state.name}", "-f",
                        self.settings["STACKDRILL_VAGRANT_KEY"]],
                       check=True, timeout=30, capture_output=True)

    def set_owner(self, owner: str) -> None:
        """Who runs the lab (`lifetime.owner_token`) or `lifetime.KEPT`: `down --all` leaves
        the lab while that process lives, and always when kept. The domains carry the same
        mark only once `vagrant up` has made them; this file covers the bring-up."""
        (self.state / OWNER).write_text(owner + "\n")

    @property
    def log_file(self) -> Path:
        return self.state / "vagrant.log"

    def _vagrant(self) -> Any:
        import vagrant

        @contextlib.contextmanager
        def to_log() -> Iterator[IO[str]]:
            with self.log_file.open("a") as fh:
                yield fh

        return vagrant.Vagrant(str(self.state), env=self.env,  # type: ignore[no-untyped-call]
                               out_cm=to_log, err_cm=to_log)

    def up(self, progress: Callable[[str], None]) -> None:
        """`vagrant up --provider=libvirt`, its lines forwarded as progress. Bounded by the
        Vagrantfile's boot_timeout (Vagrant gives up on a machine that never answers)."""
        try:
            for line in self._vagrant().up(provider="libvirt", stream_output=True):
                text = line.strip()
                with self.log_file.open("a") as fh:
                    fh.write(line)
                if text.startswith("==>"):
                    progress(f"vagrant: {text[4:]}")
        except subprocess.CalledProcessError as exc:
            raise LabNotReadyError(f"vagrant up failed (exit {exc.returncode}); "
                                   f"{self.log_file}:\n{self.tail()}") from exc

    def destroy(self) -> str | None:
        """`vagrant destroy -f`; what went wrong, if anything (teardown goes on after it)."""
        if not (self.state / ".vagrant").exists():
            return None
        try:
            self._vagrant().destroy()
        except (subprocess.CalledProcessError, OSError) as exc:
            return f"vagrant destroy: {exc}; {self.log_file}:\n{self.tail()}"
        return None

    def tail(self) -> str:
        try:
            lines = self.log_file.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-LOG_TAIL_LINES:])


class VagrantLab(LibvirtLab):
    """A lab whose machines Vagrant made: everything after `vagrant up` is the libvirt lab's."""

    backend = "vagrant"

    def __init__(self, *args: Any, vagrant: VagrantRun, ssh: SshPath, **kwargs: Any) -> None:
        self.vagrant = vagrant  # before the libvirt lab registers its teardown
        self.ssh = ssh
        super().__init__(*args, **kwargs)

    def create_guests(self) -> dict[str, float]:
        """Networks and pool as the libvirt lab makes them, the SSH path, `vagrant up`,
        and the lab's mark on each domain (so `down` and the refusal of a second lab of the
        same name find them)."""
        self.vagrant.prepare(self.topology)
        for uri, conn in self.conns.items():
            realize.up_networks(self, uri, conn)
            realize.up_pool(self, uri, conn)
        self.ssh.create()
        self.log("ssh-path", namespace=self.ssh.namespace, address=str(self.ssh.address))
        self.progress(f"vagrant up: {len(self.nodes)} machines ({self.settings.domain_type})")
        started = {h: time.monotonic() for h in self.nodes}
        self.vagrant.up(self.progress)
        for host in self.nodes:
            set_mark(self.domain(host), self.name, host, lifetime.owner_token())
            self.log("domain-start", host=host, domain=self.nodes[host].domain, by="vagrant")
        return started

    def keep(self) -> None:
        """Kept as a libvirt lab is (the domains' marks), and in the state directory."""
        super().keep()
        self.vagrant.set_owner(lifetime.KEPT)

    def configure_network(self, host: str) -> None:
        """Nothing to do: the guest named and addressed its NICs from its kernel command
        line (the Vagrantfile's sd.net=...), at this boot as at every other."""

    def remove_objects(self) -> None:
        """`vagrant destroy`, then whatever it left (the pool with the box's copy, the
        networks) by the libvirt lab's teardown, then the SSH namespace and Vagrant's
        state. A failed `vagrant destroy` does not stop the rest."""
        problem = self.vagrant.destroy()
        if problem:
            self.log("vagrant-destroy-failed", error=problem.splitlines()[0])
        self.log("vagrant-destroy")
        try:
            super().remove_objects()
        finally:
            self.ssh.remove()
            shutil.rmtree(self.vagrant.state, ignore_errors=True)
