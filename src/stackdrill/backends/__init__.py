"""Backends bring a topology to life. Resolved by name, imported lazily (testinfra's pattern),
so the simulator never needs pyroute2 or libvirt."""

from __future__ import annotations

import importlib

from stackdrill.api import Backend, Capabilities, Lab
from stackdrill.errors import UnsupportedError

REGISTRY: dict[str, str] = {
    "sim": "stackdrill.backends.sim:SimBackend",
    "netns": "stackdrill.backends.netns:NetnsBackend",
    "libvirt": "stackdrill.backends.libvirt:LibvirtBackend",
    "vagrant": "stackdrill.backends.vagrant:VagrantBackend",
}


def backend_class(name: str) -> type[Backend]:
    """The backend class registered under `name` (imports its module on first use)."""
    try:
        target = REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise UnsupportedError(f"unknown backend {name!r} (known: {known})") from None
    module, _, attr = target.partition(":")
    cls: type[Backend] = getattr(importlib.import_module(module), attr)
    return cls


__all__ = ["REGISTRY", "Backend", "Capabilities", "Lab", "backend_class"]
