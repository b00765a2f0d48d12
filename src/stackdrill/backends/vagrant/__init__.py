"""Vagrant VMs (libvirt provider) for engineers with KVM; faults through the libvirt backend."""

from __future__ import annotations

from stackdrill.backends.vagrant.backend import VagrantBackend

__all__ = ["VagrantBackend"]
