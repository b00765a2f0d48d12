"""The topology being built: plain data in the model's shape, every value put with the
place it was read from, so the written YAML can say it field by field."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any

from stackdrill.importer.gather import HostFiles
from stackdrill.importer.result import Notes, Source

NAME = re.compile(r"[a-z][a-z0-9-]{0,30}")


def as_name(text: str) -> str:
    """`text` as a topology name: lower case, other characters as '-', at most 31."""
    out = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    if not out or not out[0].isalpha():
        out = f"n-{out}"
    return out[:31].rstrip("-")


@dataclass
class Draft:
    hosts: dict[str, HostFiles]
    notes: Notes = field(default_factory=Notes)
    data: dict[str, Any] = field(default_factory=dict)
    host_data: dict[str, dict[str, Any]] = field(default_factory=dict)
    roles: dict[str, set[str]] = field(default_factory=dict)
    disks: dict[str, dict[str, tuple[int, Source]]] = field(default_factory=dict)

    def put(self, path: str, target: dict[str, Any], key: str, value: Any,
            source: Source) -> None:
        """target[key] = value, noted as read from `source` (path: the topology's)."""
        target[key] = value
        self.notes.mapped_from(path, source, value)

    def append(self, field_name: str, item: dict[str, Any]) -> tuple[int, str]:
        """Add an item to a topology list; its index and path prefix."""
        items: list[dict[str, Any]] = self.data.setdefault(field_name, [])
        items.append(item)
        return len(items) - 1, f"{field_name}[{len(items) - 1}]"

    def network_of(self, address: str) -> str | None:
        """The name of the network whose cidr holds `address`."""
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return None
        for net in self.data.get("networks", []):
            if ip in ipaddress.ip_network(net["cidr"]):
                return str(net["name"])
        return None

    def host_of(self, address: str) -> str | None:
        for net in self.data.get("networks", []):
            for host, addr in net["addresses"].items():
                if addr == address:
                    return str(host)
        return None

    def add_purpose(self, network: str, purpose: str) -> None:
        for net in self.data.get("networks", []):
            if net["name"] == network and purpose not in net["purposes"]:
                net["purposes"].append(purpose)

    def need_disk(self, host: str, device: str) -> str | None:
        """The disk `device` (/dev/sdb) of `host` as a topology disk name, its size from
        the host's lsblk; None when lsblk does not know it."""
        files = self.hosts.get(host)
        base = device.removeprefix("/dev/").replace("/", "-")
        dm = device.removeprefix("/dev/mapper/")
        if files is None:
            return None
        for dev in files.lsblk:
            if dev.name in (base, dm):
                name = as_name(base)
                self.disks.setdefault(host, {})[name] = (
                    dev.size >> 30, Source(files.lsblk_file, key=f"{dev.name}.size"))
                return name
        return None
