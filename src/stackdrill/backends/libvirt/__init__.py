"""Real VMs through libvirt (imported only when the `libvirt` backend is chosen).

Only the backend class is imported here: it imports libvirt-python lazily, so that
`stackdrill backends` can say what is missing instead of failing to import.
"""

from __future__ import annotations

from stackdrill.backends.libvirt.backend import LibvirtBackend

__all__ = ["LibvirtBackend"]
