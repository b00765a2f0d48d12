"""Names of everything a lab creates in libvirt, and the mark that proves a lab created it.

Every domain, network and pool is named `sd_<lab>_...`. Topology names never contain `_`, so
one lab's prefix can never match another lab's objects (`sd_a_` is not a prefix of `sd_a-b_`).
Domains also carry a metadata element naming their lab and host: teardown removes a domain only
when both the name and the mark agree, so a foreign domain that happens to share the prefix is
left alone.
"""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

METADATA_NS = "https://stackdrill.dev/xmlns/libvirt/1"
METADATA_KEY = "stackdrill"
PREFIX = "sd_"
BRIDGE_MAX = 15  # IFNAMSIZ - 1
# Interface names start `sdv` ('v' is not a hex digit): the netns backend owns the names
# `sd` + four hex digits + a kind letter, and removes strays of those (a libvirt bridge
# once called `sdbc12e...` matched that pattern and was deleted under a running lab).
IFACE_PREFIX = "sdv"


@dataclass(frozen=True)
class LabNames:
    """Deterministic libvirt names for one lab."""

    lab: str

    @property
    def prefix(self) -> str:
        return f"{PREFIX}{self.lab}_"

    def domain(self, host: str) -> str:
        return f"{self.prefix}{host}"

    def network(self, network: str) -> str:
        return f"{self.prefix}{network}"

    def pool(self) -> str:
        return f"{PREFIX}{self.lab}"

    def bridge(self, network: str) -> str:
        """A bridge name under 16 characters that is unique per lab and network."""
        digest = hashlib.sha256(f"{self.lab}/{network}".encode()).hexdigest()
        return f"{IFACE_PREFIX}b{digest[:10]}"[:BRIDGE_MAX]

    def tap(self, host: str, network: str) -> str:
        """A stable tap name per NIC, so bridge-port faults survive the guest's power cycles
        (libvirt would otherwise pick a new vnetN at every start)."""
        digest = hashlib.sha256(f"{self.lab}/{host}/{network}/tap".encode()).hexdigest()
        return f"{IFACE_PREFIX}t{digest[:10]}"[:BRIDGE_MAX]

    def vxlan(self, network: str) -> str:
        """The network's VXLAN port on each hypervisor's bridge (a lab across daemons)."""
        digest = hashlib.sha256(f"{self.lab}/{network}/vxlan".encode()).hexdigest()
        return f"{IFACE_PREFIX}x{digest[:10]}"[:BRIDGE_MAX]

    def vni(self, network: str) -> int:
        """A VXLAN id per lab and network (24 bits, never 0); two labs on one underlay
        collide with odds of 1 in 16 million per pair of networks."""
        digest = hashlib.sha256(f"{self.lab}/{network}/vni".encode()).digest()
        return int.from_bytes(digest[:4], "big") % 0xFFFFFE + 1

    def mac(self, host: str, network: str) -> str:
        """A stable locally-administered MAC (QEMU's 52:54:00 OUI) per host and network."""
        digest = hashlib.sha256(f"{self.lab}/{host}/{network}".encode()).digest()
        return "52:54:00:" + ":".join(f"{b:02x}" for b in digest[:3])

    def host_of(self, domain_name: str) -> str | None:
        """The host part of one of this lab's domain names, else None."""
        if domain_name.startswith(self.prefix):
            return domain_name[len(self.prefix):]
        return None


def metadata_xml(lab: str, host: str, owner: str) -> str:
    """The element stored under METADATA_NS in each domain this lab defines; `owner` is
    the process that runs the lab (`lifetime.owner_token`) or `lifetime.KEPT`."""
    elem = ET.Element(f"{METADATA_KEY}:lab", {f"xmlns:{METADATA_KEY}": METADATA_NS})
    elem.set("name", lab)
    elem.set("host", host)
    elem.set("owner", owner)
    return ET.tostring(elem, encoding="unicode")


def set_mark(dom: Any, lab: str, host: str, owner: str) -> None:
    """Rewrite a domain's mark, in its definition and, while it runs, live (libvirt adds
    the namespace itself here: the element must come without one)."""
    import libvirt

    flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG
    if dom.isActive():
        flags |= libvirt.VIR_DOMAIN_AFFECT_LIVE
    bare = ET.tostring(ET.Element("lab", {"name": lab, "host": host, "owner": owner}),
                       encoding="unicode")
    dom.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, bare, METADATA_KEY, METADATA_NS,
                    flags)


def parse_owner(metadata: str) -> str:
    """The owner written in a domain's mark; "" for a mark without one (an older version's:
    its owner is unknown, as for any leftover)."""
    try:
        return ET.fromstring(metadata).get("owner", "")
    except ET.ParseError:
        return ""


def parse_mark(metadata: str) -> tuple[str, str] | None:
    """(lab, host) from a domain's stackdrill metadata element, None if it is not ours."""
    try:
        elem = ET.fromstring(metadata)
    except ET.ParseError:
        return None
    name, host = elem.get("name"), elem.get("host")
    if elem.tag.rpartition("}")[2] != "lab" or not name or not host:
        return None
    return name, host
