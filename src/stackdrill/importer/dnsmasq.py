"""dnsmasq's `dhcp-host=MAC,IP[,name]` lines (dnsmasq(8)): the fixed addresses an
overlay's DHCP server hands to guests, which is where a plain libvirt guest's IP is
written down (its domain XML has only the MAC)."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from stackdrill.importer.result import Source

MAC = re.compile(r"(?:[0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}")


@dataclass(frozen=True)
class FixedAddress:
    mac: str
    ip: str
    source: Source


def parse_dnsmasq(text: str, file: str) -> tuple[FixedAddress, ...]:
    out: list[FixedAddress] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        key, sep, value = raw.strip().partition("=")
        if key != "dhcp-host" or not sep:
            continue
        parts = value.split(",")
        mac = next((p for p in parts if MAC.fullmatch(p)), None)
        ip = next((p for p in parts if _is_ip(p)), None)
        if mac and ip:
            out.append(FixedAddress(mac.lower(), ip, Source(file, number)))
    return tuple(out)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
