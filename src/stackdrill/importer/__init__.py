"""`stackdrill import`: the operator's real configuration files (DRBD, LVM, corosync,
systemd-networkd, libvirt domain XML, a Nova export) as a topology, with where each
field came from and what could not be mapped."""

from __future__ import annotations

from stackdrill.importer.assemble import import_config
from stackdrill.importer.files import ConfigError
from stackdrill.importer.result import ImportResult, Mapped, Source, Unmapped, UnmappedKind

__all__ = ["ConfigError", "ImportResult", "Mapped", "Source", "Unmapped", "UnmappedKind",
           "import_config"]
