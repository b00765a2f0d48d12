"""The central overlay controller: desired FDB state, reconciled onto each host's VTEP.

As in the seed's overlay (a central service hands out the forwarding data, the data plane
is peer to peer) and as cloud providers require (no multicast), every host's VXLAN device
has learning off and only static unicast FDB entries: one all-zero entry per peer for
flooding (head-end replication of ARP/broadcast), one entry per MAC behind each peer.

The controller keeps the desired state (which MAC is behind which host) and reconciles
each host's FDB against it by diffing a dump. A host whose updates are frozen (the
`overlay_fdb_stale` fault) keeps what it had; healing resyncs it to the desired state.
How a host is reached (netlink in a namespace, a shell in a guest) is the plane's business.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

from stackdrill.overlay.model import ZERO_MAC
from stackdrill.overlay.plane import Entry, FdbPlane, VtepSpec
from stackdrill.topology import Topology
from stackdrill.topology.model import Overlay

log = logging.getLogger(__name__)


@dataclass
class OverlayState:
    """The controller's desired state for one overlay."""

    spec: Overlay
    index: int  # position in the topology's overlays (backends name devices after it)
    members: dict[str, str]  # host -> underlay address (tunnel endpoint)
    host_ips: dict[str, str]  # host -> address of its overlay bridge
    macs: dict[str, str] = field(default_factory=dict)  # mac -> host it is behind
    frozen: set[str] = field(default_factory=set)  # hosts the controller no longer updates


def descending_hosts(cidr: str) -> Iterator[str]:
    """The usable addresses of `cidr` from the highest down, as `reversed(hosts())` gives
    them, without listing a /16's 65534 addresses first (that cost a netns bring-up
    ~7 ms per overlay)."""
    net = ipaddress.ip_network(cidr)
    if net.num_addresses <= 2:  # /31, /32 (and IPv6 /127, /128): hosts() has own rules
        yield from (str(a) for a in reversed(list(net.hosts())))
        return
    # hosts() leaves out the network address, and on IPv4 the broadcast address too
    last = int(net.broadcast_address) - (1 if net.version == 4 else 0)
    make = type(net.network_address)
    yield from (str(make(i)) for i in range(last, int(net.network_address), -1))


def overlay_states(topology: Topology) -> dict[str, OverlayState]:
    """Members and bridge addresses of every overlay, no MAC placed yet.

    Members are the hosts with an address on the overlay's underlay network, in topology
    order; each gets the highest free address of the overlay's range for its bridge.
    """
    hosts = [h.name for h in topology.hosts]
    taken_ips = {i.ip for i in topology.instances if i.ip}
    out: dict[str, OverlayState] = {}
    for o_idx, ov in enumerate(topology.overlays):
        addresses = topology.network(ov.network).addresses
        members = {h: addresses[h] for h in hosts if h in addresses}
        candidates = (a for a in descending_hosts(ov.cidr) if a not in taken_ips)
        out[ov.name] = OverlayState(ov, o_idx, members, {h: next(candidates) for h in members})
    return out


class OverlayController:
    """Creates each member's VTEP and keeps every FDB as the desired state says."""

    def __init__(self, topology: Topology, plane: FdbPlane) -> None:
        self.plane = plane
        self.overlays = overlay_states(topology)
        for name, state in self.overlays.items():
            for host in state.members:  # each bridge's own MAC sits behind its host
                state.macs[plane.devices(host, name).bridge_mac] = host

    # ---------------------------------------------------------------- build

    def build(self) -> None:
        """Create every VTEP first, then program each FDB in one bulk step."""
        hosts = list(dict.fromkeys(h for s in self.overlays.values() for h in s.members))
        for host in hosts:
            self._create(host)
        for host in hosts:
            self._program(host)

    def build_host(self, host: str) -> None:
        """One host's VTEPs from scratch with their whole desired FDB: for a host whose
        kernel state is gone (rebooted) when it comes back."""
        self._create(host)
        self._program(host)

    def _create(self, host: str) -> None:
        for state in self.overlays.values():
            if host in state.members:
                ov = state.spec
                plen = ipaddress.ip_network(ov.cidr).prefixlen
                self.plane.create(host, VtepSpec(ov.name, ov.vni, ov.port,
                                                 state.members[host], ov.mtu,
                                                 state.host_ips[host], plen))

    def _program(self, host: str) -> None:
        for name, state in self.overlays.items():
            if host in state.members:
                self.plane.bulk(host, name, self.desired(name, host))

    # ---------------------------------------------------------------- desired vs kernel

    def desired(self, overlay: str, host: str) -> set[Entry]:
        """A flood entry per peer and an entry per MAC behind a peer (none for its own)."""
        state = self.overlays[overlay]
        out: set[Entry] = set()
        for peer, addr in state.members.items():
            if peer != host:
                out.add((ZERO_MAC, addr))
        for mac, where in state.macs.items():
            if where != host and where in state.members:
                out.add((mac, state.members[where]))
        return out

    def programmed(self, overlay: str, host: str) -> set[Entry]:
        """What the host's VXLAN FDB holds now."""
        return self.plane.dump(host, overlay)

    def sync(self, overlay: str, host: str, force: bool = False) -> tuple[int, int]:
        """Make the host's FDB equal the desired state; returns (added, removed)."""
        state = self.overlays[overlay]
        if host in state.frozen and not force:
            log.info("overlay %s: %s is frozen, not updated", overlay, host)
            return (0, 0)
        want = self.desired(overlay, host)
        have = self.programmed(overlay, host)
        for mac, dst in sorted(have - want):
            self.plane.delete(host, overlay, mac, dst)
        for mac, dst in sorted(want - have):
            self.plane.put(host, overlay, mac, dst)
        return (len(want - have), len(have - want))

    # ---------------------------------------------------------------- controller API

    def locate(self, overlay: str, mac: str, host: str | None) -> None:
        """Record that `mac` now sits behind `host` (None: gone) and push it to every
        member not frozen; a member that already has the new state passes quietly."""
        state = self.overlays[overlay]
        old = state.macs.get(mac)
        if host is None:
            state.macs.pop(mac, None)
        else:
            state.macs[mac] = host
        log.info("overlay %s: %s moves %s -> %s", overlay, mac, old, host)
        for member in state.members:
            if member in state.frozen:
                continue
            if old is not None and old != member:
                self.plane.delete(member, overlay, mac, state.members[old], missing_ok=True)
            if host is not None and host != member:
                self.plane.add(member, overlay, mac, state.members[host], exist_ok=True)

    def freeze(self, overlay: str, host: str) -> None:
        """Stop pushing to `host` (its FDB goes stale)."""
        self.overlays[overlay].frozen.add(host)

    def thaw(self, overlay: str, host: str) -> None:
        """Push to `host` again, starting with whatever it missed."""
        self.overlays[overlay].frozen.discard(host)
        self.sync(overlay, host)

    def forget(self, overlay: str, host: str, mac: str) -> None:
        """Delete the host's entry for `mac` (a missing forwarding entry), desired state kept."""
        for entry_mac, dst in self.programmed(overlay, host):
            if entry_mac == mac:
                self.plane.delete(host, overlay, mac, dst)
        log.info("overlay %s: %s forgot %s (desired %s)", overlay, host, mac,
                 self.overlays[overlay].macs.get(mac))

    def endpoint(self, overlay: str, host: str) -> str:
        """The host's tunnel endpoint (underlay address) on this overlay."""
        return self.overlays[overlay].members[host]
