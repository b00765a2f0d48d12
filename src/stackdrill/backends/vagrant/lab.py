"""The Vagrant lab: domains made by Vagrant, faults and power through the libvirt lab."""

from __future__ import annotations

from typing import Any

from stackdrill.backends.libvirt.faults import VAGRANT_HANDLERS
from stackdrill.backends.libvirt.lab import LibvirtLab


class VagrantLab(LibvirtLab):
    """A lab whose domains Vagrant made: faults and power as libvirt; teardown by Vagrant."""

    backend = "vagrant"
    vagrant: Any = None
    # Vagrant picks its own tap names, so bridge-port faults (partition, loss, rate) are out.
    fault_handlers = VAGRANT_HANDLERS

    def configure_network(self, host: str) -> None:
        """The box configures its own addresses (the Vagrantfile's private networks)."""

    def destroy(self) -> None:
        if self.vagrant is not None:
            self.vagrant.destroy()
        self.log("vagrant-destroy")
