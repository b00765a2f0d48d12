"""The data plane the overlay controller programs: one VTEP per (host, overlay).

The controller decides *what* each host's VXLAN FDB must hold; a plane knows *how* to
reach a host's kernel (netlink sockets into namespaces, or shell commands in a guest) and
what the backend named its devices. Keeping this interface small is what lets one
controller drive namespaces and real guests alike.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from stackdrill.errors import StackdrillError
from stackdrill.overlay.model import ZERO_MAC

Entry = tuple[str, str]  # (mac, underlay dst): one static FDB entry on a VXLAN device
Verb = Literal["add", "append", "del"]
Tolerated = Literal["exists", "missing"]  # the two failures a push may meet harmlessly


class PlaneError(StackdrillError):
    """A VTEP could not be created or its FDB not read or changed."""


@dataclass(frozen=True)
class VtepDevices:
    """What the backend calls one host's end of one overlay; the plane alone uses it."""

    vxlan: str  # the VXLAN device (learning off, static FDB only)
    bridge: str  # the overlay bridge instance ports and the VXLAN device sit on
    underlay: str  # the underlay device the VXLAN device sends from
    bridge_mac: str  # the bridge's fixed MAC, which the controller advertises to peers


VtepNaming = Callable[[str, str], VtepDevices]  # (host, overlay name) -> its devices


@dataclass(frozen=True)
class VtepSpec:
    """One host's VTEP as the controller wants it (device names come from the plane)."""

    overlay: str
    vni: int
    port: int  # UDP destination port
    local: str  # this host's underlay address: the tunnel endpoint
    mtu: int  # of the VXLAN device and the bridge
    address: str  # the bridge's own address on the overlay
    prefixlen: int


class FdbPlane(ABC):
    """Creates VTEPs and reads/changes their static FDB on behalf of the controller.

    Changes are strict by default (a duplicate add or a missing delete is an error, which
    `sync` relies on to notice drift); `exist_ok`/`missing_ok` let a push that may race a
    state the host already has (a move seen twice) pass quietly.
    """

    def __init__(self, naming: VtepNaming) -> None:
        self.naming = naming

    def devices(self, host: str, overlay: str) -> VtepDevices:
        return self.naming(host, overlay)

    @abstractmethod
    def create(self, host: str, spec: VtepSpec) -> None:
        """VXLAN device (vni, port, local, underlay device, no learning, mtu) enslaved to a
        bridge (fixed MAC, mtu, address), both up."""

    @abstractmethod
    def dump(self, host: str, overlay: str) -> set[Entry]:
        """The static unicast entries (those with a dst) on the host's VXLAN device now."""

    @abstractmethod
    def change(self, host: str, overlay: str, verb: Verb, mac: str, dst: str,
               ok_if: Tolerated | None = None) -> None:
        """`bridge fdb <verb> mac dev VX dst D` on the host; a failure only because the
        entry already exists (`ok_if="exists"`) or is already gone (`"missing"`) passes."""

    def add(self, host: str, overlay: str, mac: str, dst: str, *,
            exist_ok: bool = False) -> None:
        """A unicast entry: `mac` sits behind the VTEP at `dst`."""
        self.change(host, overlay, "add", mac, dst, "exists" if exist_ok else None)

    def append(self, host: str, overlay: str, mac: str, dst: str) -> None:
        """One more remote for `mac` (the zero MAC's flood list: one per peer)."""
        self.change(host, overlay, "append", mac, dst)

    def delete(self, host: str, overlay: str, mac: str, dst: str, *,
               missing_ok: bool = False) -> None:
        """Remove the entry (mac, dst)."""
        self.change(host, overlay, "del", mac, dst, "missing" if missing_ok else None)

    @abstractmethod
    def bulk(self, host: str, overlay: str, entries: Iterable[Entry]) -> None:
        """Program a fresh VTEP with every entry at once (a full mesh has hosts² of them)."""

    def put(self, host: str, overlay: str, mac: str, dst: str) -> None:
        """Add `(mac, dst)` the way its kind needs: flood entries append, others add."""
        if mac == ZERO_MAC:
            self.append(host, overlay, mac, dst)
        else:
            self.add(host, overlay, mac, dst)


def fdb_line(verb: str, mac: str, vxlan: str, dst: str) -> str:
    """One `bridge` FDB command without the program name (also a `bridge -batch` line)."""
    return f"fdb {verb} {mac} dev {vxlan} dst {dst}"


def batch(vxlan: str, entries: Iterable[Entry]) -> str:
    """`bridge -batch` input programming `entries` on a fresh device, sorted for a stable
    order; flood entries are appended (several remotes share the zero MAC)."""
    return "".join(fdb_line("append" if mac == ZERO_MAC else "add", mac, vxlan, dst) + "\n"
                   for mac, dst in sorted(entries))
